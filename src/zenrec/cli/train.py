"""``zenrec train``: train a model under a protocol preset with checkpoints, and write a bundle.

Works the same under ``torchrun --nproc_per_node=N -m zenrec train ...`` (data-parallel
training; rank 0 evaluates and writes the outputs).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from zenrec._errors import ConfigError
from zenrec.cli._common import (
    add_dataset_args,
    add_filter_args,
    add_split_args,
    load_from_args,
    parse_sets,
    protocol_from_args,
    user_filters,
)
from zenrec.models.registry import model_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (checkpoints, --resume, torchrun) and write a bundle",
        description=(
            "Fit MODEL on the protocol's training part (early stopping on its validation part), "
            "evaluate on test, and write OUTPUT/bundle, OUTPUT/result.json and checkpoints."
        ),
        epilog=(
            "Examples:\n"
            "  zenrec train --dataset ml-1m --protocol recbole --model bprmf --output runs/bpr\n"
            "  zenrec train --dataset ml-1m --protocol recbole --model bprmf --output runs/bpr "
            "--resume\n"
            "  torchrun --nproc_per_node=2 -m zenrec train --dataset ml-100k "
            "--protocol recbole \\\n"
            "      --model twotower --set epochs=20 --output runs/tt"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_args(p)
    add_filter_args(p)
    add_split_args(p)  # a k-fold preset's first fold is used
    p.add_argument("--model", required=True, help="model name: " + ", ".join(model_names()))
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="model hyperparameter (repeatable)"
    )
    p.add_argument("--seed", type=int, help="training seed (the model's 'seed' parameter)")
    p.add_argument(
        "--split-seed", type=int, help="split seed (default: the protocol's published seed)"
    )
    p.add_argument(
        "--split-dir", metavar="DIR", help="use a fixed split (train/valid/test .tsv) instead"
    )
    p.add_argument(
        "--output", metavar="DIR", help="output directory (default runs/MODEL-DATASET-PROTOCOL)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in OUTPUT")
    p.add_argument(
        "--stop-after-epoch", type=int, help=argparse.SUPPRESS
    )  # test hook: simulate a kill
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from zenrec._io import atomic_write_text, versions
    from zenrec.evaluation.protocols import prepare_dataset
    from zenrec.models.registry import create_model
    from zenrec.splits import fixed_split

    protocol = protocol_from_args(args)
    params = parse_sets(args.set)
    if args.seed is not None:
        params["seed"] = args.seed
    model = create_model(args.model, **params)  # fail on bad parameters before loading data
    # only neural models have run options (and creating one has imported torch already)
    if not hasattr(model, "set_run_options"):
        raise ConfigError(
            f"'zenrec train' trains neural models; '{args.model}' is not one. "
            f"Use 'zenrec evaluate --model {args.model}' instead"
        )
    from zenrec.models.neural.base import NeuralRecommender

    if not isinstance(model, NeuralRecommender):
        raise ConfigError(
            f"'zenrec train' trains neural models; '{args.model}' is not a NeuralRecommender"
        )
    out = Path(args.output or f"runs/{args.model}-{Path(args.dataset).stem}-{protocol.name}")
    ckpt = out / "checkpoints"
    if (ckpt / "checkpoint.json").exists() and not args.resume:
        raise ConfigError(
            f"--output {out} already holds a checkpoint; pass --resume to continue it "
            "or choose another --output"
        )
    from zenrec.models.neural.distributed import finalize_distributed, init_distributed

    dist = init_distributed(os.environ)
    console = Console(stderr=True, quiet=not dist.is_main)
    try:
        with console.status(f"loading {args.dataset}"):
            ds = load_from_args(args)
            if args.split_dir:
                split, _ = fixed_split(args.split_dir, base=ds)
            else:
                data = prepare_dataset(ds, protocol, user_filters(args))
                seed = protocol.default_seed if args.split_seed is None else args.split_seed
                split = protocol.splits(data, seed)[0]
        model.set_run_options(
            checkpoint_dir=ckpt, resume=args.resume, stop_after_epoch=args.stop_after_epoch
        )
        t0 = time.perf_counter()
        model.fit(split.train, split.valid)
        fit_s = time.perf_counter() - t0
        if not dist.is_main:
            return 0
        res = protocol.evaluate(model, split, "test")
        r = model.train_result_
        assert r is not None  # fit sets it
        record = {
            "model": args.model,
            "hyperparameters": model.params(),
            "dataset": ds.name,
            "protocol": protocol.summary(ds.name),
            "split": {"description": split.description, "sizes": list(split.sizes())},
            "metrics": res.metrics,
            "metrics_warm": res.metrics_warm,
            "metrics_cold": res.metrics_cold,
            "test_coverage": res.test_coverage,
            "fit_seconds": fit_s,
            "eval_seconds": res.seconds,
            "best_epoch": r.best_epoch,
            "best_valid": r.best_score,
            "seconds_to_best": r.seconds_to_best,
            "resumed_from_epoch": r.resumed_from,
            "holdout": model.holdout_,
            "resolved": model.resolved_params_,
            "world_size": dist.world_size,
            "history": model.history_,
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        out.mkdir(parents=True, exist_ok=True)
        model.save(
            out / "bundle",
            metrics=res.metrics,
            extra={"protocol": record["protocol"], "dataset": ds.name},
        )
        atomic_write_text(out / "result.json", json.dumps(record, indent=2, default=str))
        from zenrec.cli.evaluate import print_metrics

        table = {
            "metrics": res.metrics,
            "metrics_warm": res.metrics_warm,
            "metrics_cold": res.metrics_cold,
            "test_coverage": res.test_coverage,
            "protocol": record["protocol"],
            "filters": [],
            "split": {"description": split.description},
            "n_users_evaluated": res.n_users,
            "evaluation_mode": res.mode,
            "fit_seconds": fit_s,
            "eval_seconds": res.seconds,
        }
        print_metrics(table, f"{args.model} on {ds.name} ({protocol.name})")
        if model.holdout_:
            h = model.holdout_
            console.print(
                f"no validation data: {h['best_epoch']} epochs, chosen by early stopping on "
                f"{h['share']:.0%} of each user's training interactions "
                f"({h['interactions']} held out; refit on all)"
            )
        console.print(
            f"best epoch {r.best_epoch} ({r.seconds_to_best or 0:.1f} s); "
            f"wrote {out / 'bundle'} and {out / 'result.json'}"
        )
        return 0
    finally:
        finalize_distributed()
