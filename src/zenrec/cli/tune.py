"""``zenrec tune``: Optuna search on validation data, then one test run of the best config."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from zenrec.cli._common import (
    add_dataset_args,
    add_filter_args,
    add_split_args,
    data_spec,
    invocation,
    load_spec,
    protocol_from_args,
)
from zenrec.models.registry import model_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="tune a model's hyperparameters on validation data (Optuna), then test the best once",
        description=(
            "Search MODEL's hyperparameters with Optuna (seeded TPE) on the protocol's validation "
            "data (carved out of train for protocols without one), pruning iterative models per "
            "epoch; refit the best configuration on train and evaluate it once on test. Processes "
            "sharing --storage and --study cooperate; rerunning continues an interrupted study."
        ),
        epilog=(
            "Examples:\n"
            "  zenrec tune --dataset ml-100k --protocol msrec --model ials --trials 40\n"
            "  zenrec tune --dataset ml-1m --protocol recbole --model ease --trials 15 "
            "--timeout 900\n"
            "  # two or more processes (or machines) on one study:\n"
            "  zenrec tune --dataset ml-100k --protocol msrec --model ials --trials 60 \\\n"
            "      --storage journal:/shared/ials.log --study ials-msrec &\n"
            "  zenrec tune --dataset log.csv --protocol temporal --model ease --trials 20\n"
            "  zenrec tune --dataset ml-100k --protocol recbole --model ease --trials 20 \\\n"
            "      --split-dir ../shared/data/golden/ml-100k-recbole-split\n"
            "Search spaces: src/zenrec/tuning/spaces/MODEL.toml (schema in docs/tuning.md)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_args(p)
    add_filter_args(p)
    add_split_args(p)
    p.add_argument(
        "--split-dir",
        metavar="DIR",
        help="tune and test on a fixed split (train/valid/test .tsv) instead of the protocol's",
    )
    p.add_argument("--model", required=True, help="model name: " + ", ".join(model_names()))
    p.add_argument(
        "--trials",
        type=int,
        required=True,
        metavar="N",
        help="target number of finished trials in the study (shared by cooperating processes)",
    )
    p.add_argument(
        "--timeout", type=float, metavar="S", help="stop starting trials after S seconds"
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage: sqlite:///f.db, postgresql://..., or a journal file "
        "(journal:PATH or PATH.log); default: SQLite in the run directory",
    )
    p.add_argument(
        "--study", metavar="NAME", help="study name (default MODEL-DATASET-PROTOCOL-sSEED)"
    )
    p.add_argument(
        "--space", metavar="FILE.toml", help="search space (default: the one shipped for MODEL)"
    )
    p.add_argument("--metric", help="validation metric to optimise (default: the space's)")
    p.add_argument(
        "--pruner",
        choices=["median", "hyperband", "none"],
        default="median",
        help="pruner of iterative models (default median)",
    )
    p.add_argument("--seed", type=int, help="split seed (default: the protocol's published seed)")
    p.add_argument("--sampler-seed", type=int, help="TPE seed (default: the split seed)")
    p.add_argument("--output-dir", metavar="DIR", help="run directory (default runs/tune/STUDY)")
    p.add_argument(
        "--no-refit", action="store_true", help="skip the final refit and test evaluation"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


@contextlib.contextmanager
def _graceful_sigint(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C: finish the running trial and stop; second: abort it now. Restored after."""

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        sys.stderr.write(
            "zenrec tune: stopping after the running trial (Ctrl-C again to abort it)\n"
        )

    old = (
        signal.signal(signal.SIGINT, on_sigint)
        if threading.current_thread() is threading.main_thread()
        else None
    )
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    import optuna

    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from zenrec._errors import ConfigError
    from zenrec.tuning.space import load_space
    from zenrec.tuning.tuner import tune

    protocol = protocol_from_args(args)
    space = load_space(args.space, model=args.model)
    if args.trials < 1:
        raise ConfigError(f"--trials must be an int >= 1; got {args.trials}")
    if args.timeout is not None and args.timeout <= 0:
        raise ConfigError(f"--timeout must be > 0 seconds; got {args.timeout}")
    console = Console(stderr=True)
    spec = data_spec(args)
    with console.status(f"loading {args.dataset}"):
        ds = load_spec(spec)
    seed = protocol.default_seed if args.seed is None else args.seed
    study = args.study or f"{args.model}-{ds.name}-{protocol.name}-s{seed}"
    run_dir = Path(args.output_dir or Path("runs") / "tune" / study)
    stop = threading.Event()
    with _quiet_optuna(), _graceful_sigint(stop):
        res = tune(
            ds,
            protocol,
            args.model,
            space=space,
            n_trials=args.trials,
            timeout=args.timeout,
            storage=args.storage,
            study_name=study,
            run_dir=run_dir,
            seed=seed,
            sampler_seed=args.sampler_seed,
            pruner=args.pruner,
            metric=args.metric,
            data=spec,
            refit=not args.no_refit,
            progress=not args.quiet,
            stop=stop,
            invocation=invocation(),
        )
    out = Console()
    s = res.summary
    dv = "-" if res.default_value is None else f"{res.default_value:.4f}"
    out.print(
        f"study {res.study_name} ({res.storage}): {res.n_finished} finished trials "
        f"({s['n_trials_this_process']} started here), states {s['states']}",
        highlight=False,
    )
    out.print(
        f"best trial #{res.best_trial}: valid {res.metric} = {res.best_value:.4f} "
        f"(default config: {dv}); params {res.best_params}",
        highlight=False,
    )
    if res.test_record is not None:
        m = res.test_record.metrics
        shown = {
            k: round(v, 4)
            for k, v in m.items()
            if k == res.metric or k in ("ndcg@10", "recall@10", "rmse", "mae")
        }
        out.print(
            f"test (once): {shown}  fit {res.test_record.fit_seconds or 0:.2f} s", highlight=False
        )
        if res.summary.get("default_test"):
            d = res.summary["default_test"].get(res.metric)
            if d is not None:
                out.print(f"test of the default configuration: {res.metric} = {d:.4f}")
        if res.summary.get("reproduce"):
            out.print(f"re-run: {res.summary['reproduce']}", highlight=False)
        else:
            out.print(f"re-run: none ({res.summary.get('reproduce_note')})", highlight=False)
    for remark in res.summary.get("remarks") or []:
        out.print(f"note: {remark}", highlight=False)
    out.print(f"wrote {run_dir / 'tune.json'} and {run_dir / 'trials.csv'}", highlight=False)
    return 0
