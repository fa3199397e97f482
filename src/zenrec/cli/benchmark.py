"""``zenrec benchmark``: models x datasets x protocols x seeds, with CIs and significance tests."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="compare models: models x datasets x protocols x seeds (optionally tuned), CIs, tests",
        description=(
            "Run every cell of CONFIG.toml (each model tuned first on validation data when the "
            "config has a [tune] budget), then write results, a summary with 95% confidence "
            "intervals over seeds and paired significance tests (Wilcoxon, t-test; Holm) against "
            "the baseline. Finished cells are kept: rerunning continues an interrupted run. "
            "Peers listed in [[peers]] (RecBole, Surprise, or a command) then run on the same "
            "splits, each in its own virtual environment; a missing one is recorded as skipped."
        ),
        epilog=(
            "Examples:\n"
            "  zenrec benchmark msrec-ml100k.toml\n"
            "  zenrec benchmark recbole-ml1m.toml --output-dir runs/recbole-ml1m\n"
            "  zenrec report runs/recbole-ml1m\n"
            "Config schema: docs/tuning.md; the repository's configs are in its benchmarks "
            "folder.\nPeers: ZENREC_PEER_PYTHON_RECBOLE / _SURPRISE name their interpreters.\n"
            "(Performance micro-benchmarks of components are 'zenrec perf'.)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", metavar="CONFIG.toml", help="benchmark config")
    p.add_argument("--output-dir", metavar="DIR", help="run directory (default runs/NAME)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from zenrec.cli._common import invocation
    from zenrec.experiments import load_benchmark_config, run_benchmark
    from zenrec.reports.tables import summary_markdown

    cfg = load_benchmark_config(args.config)
    run_dir = Path(args.output_dir or Path("runs") / cfg.name)
    out = run_benchmark(cfg, run_dir, progress=not args.quiet, invocation=invocation())
    console = Console()
    console.print(
        f"{out['cells']} cells ({out['ran']} run now, {out['skipped']} kept) "
        f"in {out['seconds']:.0f} s",
        highlight=False,
    )
    if out.get("peer_cells"):
        console.print(
            f"{out['peer_cells']} peer cells ({out['peers_ran']} run now, "
            f"{out['peers_kept']} kept, "
            f"{out['peers_not_run']} skipped or failed: see the library column)",
            highlight=False,
        )
    if out.get("summary") is not None:
        print(summary_markdown(out["summary"], out.get("significance"), cfg.baseline_label))
    console.print(
        f"wrote {run_dir}/results.parquet, results.csv, summary.csv, significance.csv; "
        f"next: zenrec report {run_dir}",
        highlight=False,
    )
    return 0
