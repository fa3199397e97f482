"""Entry point of the ``zenrec`` command.

Each sub-command lives in its own module under ``zenrec.cli`` and exposes
``register(subparsers)``; heavy imports stay inside the command's run function so
``zenrec --help`` is fast. User errors (:class:`zenrec.ZenrecError`) end with one line on
stderr and exit code 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from zenrec._errors import ZenrecError, ZenrecWarning
from zenrec._version import __version__

# Explicit registry of command modules (no scanning); order is the order in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "zenrec.cli.quickstart",
    "zenrec.cli.data",
    "zenrec.cli.evaluate",
    "zenrec.cli.train",
    "zenrec.cli.recommend",
    "zenrec.cli.tune",
    "zenrec.cli.benchmark",
    "zenrec.cli.report",
    "zenrec.cli.traffic",
    "zenrec.cli.serve",
    "zenrec.cli.refresh",
    "zenrec.cli.loadtest",
    "zenrec.cli.perf",
)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line naming the command and the fix."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"zenrec: error: {self.prog}: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="zenrec",
        description="zenrec: recommender systems from raw logs to a tuned model served online.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Example:\n  zenrec quickstart\n"
            "  zenrec evaluate --dataset ml-100k --protocol msrec --model ease"
        ),
    )
    parser.add_argument("--version", action="version", version=f"zenrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command whose module is not shipped yet
            if exc.name == name:
                continue
            raise
        module.register(sub)
    for leaf in _leaf_commands(parser):
        own = leaf.get_default("default_threads")  # a command's own default (serve: 1)
        leaf.add_argument(
            "--threads",
            type=_threads_arg,
            default=None,
            metavar="N",
            help="CPU threads for BLAS, torch, implicit and polars (default: $ZENREC_THREADS, "
            f"else {own or 'all cores'}; see docs/user-guide.md#threads)",
        )
    return parser


_KEYWORD_FLAGS = {
    "user_col": "--user-col",
    "item_col": "--item-col",
    "rating_col": "--rating-col",
    "time_col": "--time-col",
    "context_cols": "--context-col",
    "sep": "--sep",
    "encoding": "--encoding",
    "min_rating": "--min-rating",
    "min_user_count": "--min-user-count",
    "min_item_count": "--min-item-count",
    "start": "--start",
    "end": "--end",
    "duplicates": "--duplicates",
    "n_trials": "--trials",
    "timeout": "--timeout",
    "storage": "--storage",
    "metric": "--metric",
    "pruner": "--pruner",
    "study_name": "--study",
    "space": "--space",
}


def cli_words(message: str) -> str:
    """Library errors name keyword arguments (``user_col=``); on the command line, the flags."""
    message = message.replace("header=False", "--no-header")
    return re.sub(
        r"\b(" + "|".join(_KEYWORD_FLAGS) + r")=",
        lambda m: _KEYWORD_FLAGS[m.group(1)] + " ",
        message,
    ).replace("  ", " ")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """zenrec's own warnings as one line on stderr; others as Python prints them."""
    if issubclass(category, ZenrecWarning):
        sys.stderr.write(f"zenrec: warning: {cli_words(str(message))}\n")
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _threads_arg(raw: str) -> int:
    if not raw.isdigit():
        raise argparse.ArgumentTypeError(
            f"--threads expects a whole number >= 0 (0: all cores); got {raw!r}"
        )
    return int(raw)


def _leaf_commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every command parser without sub-commands of its own (each gets ``--threads``)."""
    out: list[argparse.ArgumentParser] = []
    seen: set[int] = set()

    def walk(p: argparse.ArgumentParser, top: bool) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            if not top and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
            return
        for action in subs:
            for child in action.choices.values():
                walk(child, False)

    walk(parser, True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2 if args.command is None else 0
    try:
        # The one place the thread policy is applied (zenrec._threads), before heavy imports.
        from zenrec._threads import set_threads

        set_threads(getattr(args, "threads", None), getattr(args, "default_threads", None))
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            result = args.func(args)
    except ZenrecError as exc:
        msg = cli_words(str(exc)).strip().splitlines()
        sys.stderr.write(f"zenrec: error: {' '.join(m.strip() for m in msg)}\n")
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("zenrec: interrupted; finished results were kept.\n")
        return 130
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
