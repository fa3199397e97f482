"""``python -m zenrec`` (and ``torchrun -m zenrec``) runs the CLI."""

from zenrec.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
