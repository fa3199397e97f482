"""``zenrec report``: Markdown and self-contained HTML report of a benchmark or tuning run."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a Markdown and a self-contained HTML report of a benchmark or tuning run",
        description=(
            "Read RUN_DIR (written by 'zenrec benchmark' or 'zenrec tune') and write report.md, "
            "report.html (figures inlined, no network references) and figures/*.png: metric bars "
            "with confidence intervals, accuracy vs training time, learning curves, "
            "tuning history, parameter importance, popularity bias and catalog coverage, "
            "significance tests."
        ),
        epilog=(
            "Examples:\n"
            "  zenrec report runs/msrec-ml100k\n"
            "  zenrec report runs/tune/ials-ml-100k-msrec-s42 --output-dir /tmp/ials-report"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="directory of a benchmark or tuning run")
    p.add_argument(
        "--output-dir", metavar="DIR", help="where to write the report (default RUN_DIR)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from zenrec._errors import DataError
    from zenrec.reports.report import build_report

    if not Path(args.run_dir).is_dir():
        raise DataError(
            f"{args.run_dir} is not a directory; pass a run directory of 'zenrec benchmark' "
            "or 'zenrec tune'"
        )
    md, html_path = build_report(args.run_dir, args.output_dir)
    print(f"wrote {md} and {html_path}")
    return 0
