"""``zenrec evaluate``: fit a model under a protocol preset and report its metrics."""

from __future__ import annotations

import argparse

from zenrec.cli._common import (
    add_dataset_args,
    add_filter_args,
    add_split_args,
    data_spec,
    invocation,
    load_spec,
    parse_sets,
    protocol_from_args,
)
from zenrec.models.registry import model_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="fit a model under a protocol preset and report metrics",
        description="Fit MODEL on the protocol's training part and evaluate it once on test.",
        epilog=(
            "Examples:\n"
            "  zenrec evaluate --dataset ml-100k --protocol msrec --model ease --set l2=300\n"
            "  zenrec evaluate --dataset ml-1m --protocol recbole --model ials --output ials.json\n"
            "  zenrec evaluate --dataset ml-100k --protocol recbole --model ease \\\n"
            "      --split-dir ../shared/data/golden/ml-100k-recbole-split\n"
            "  zenrec evaluate --dataset ml-100k --protocol temporal --test-start 1998-03-01 \\\n"
            "      --model pop\n"
            "Protocols: recbole, msrec, surprise-cv5, loo-full, loo-uni100 (sampled), ctr,\n"
            "multitask, temporal (one global time cutoff), temporal-user (per user by time)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_args(p)
    add_filter_args(p)
    add_split_args(p)
    p.add_argument("--model", required=True, help="model name: " + ", ".join(model_names()))
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="model hyperparameter (repeatable)"
    )
    p.add_argument("--seed", type=int, help="split seed (default: the protocol's published seed)")
    p.add_argument(
        "--split-dir", metavar="DIR", help="use a fixed split (train/valid/test .tsv) instead"
    )
    p.add_argument("--output", metavar="FILE.json", help="write the full result record as JSON")
    p.add_argument(
        "--save-bundle", metavar="DIR", help="save the fitted model (first fold) as a bundle"
    )
    p.set_defaults(func=run)


def print_metrics(record: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in record["metrics"].items():
        t.add_row(k, f"{v:.4f}")
    console.print(t)
    console.print(
        f"[dim]protocol {record['protocol']['name']}: {record['protocol']['description']}[/dim]"
    )
    console.print(
        f"[dim]filters: {'; '.join(record['filters']) or 'none'} "
        f"| split: {record['split']['description']} "
        f"| users evaluated: {record['n_users_evaluated']} "
        f"| mode: {record['evaluation_mode']}[/dim]"
    )
    line = warm_cold_line(record)
    if line:
        console.print(line, highlight=False)
    console.print(f"fit {record['fit_seconds']:.2f} s, eval {record['eval_seconds']:.2f} s")


def warm_cold_line(record: dict) -> str | None:
    """One line: the main metric over warm and cold test users, and the test coverage."""
    cov = record.get("test_coverage") or {}
    if not cov:
        return None
    main = record["protocol"].get("main_metric", "")
    warm, cold = (
        "-" if v is None else f"{v:.4f}"
        for v in ((record.get(f"metrics_{g}") or {}).get(main) for g in ("warm", "cold"))
    )
    return (
        f"{main}: warm users {warm}, cold users {cold} | cold users "
        f"{cov['cold_users']:,} of {cov['test_users']:,}; test interactions on items unseen "
        f"in training {cov['unreachable_interactions']:,} of {cov['test_interactions']:,}"
    )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from zenrec.models.registry import create_model
    from zenrec.runs.evaluate import evaluate_model

    protocol = protocol_from_args(args)
    params = parse_sets(args.set)
    create_model(args.model, **params)  # fail on bad parameters before loading data
    console = Console(stderr=True)
    spec = data_spec(args)
    with console.status(f"loading {args.dataset}"):
        ds = load_spec(spec)
    with console.status(f"fitting and evaluating {args.model} under {protocol.name}") as status:
        record, run_ = evaluate_model(
            ds,
            protocol,
            args.model,
            params,
            seed=args.seed,
            spec=spec,
            invocation=invocation(),
            on_fold=lambda j, n: status.update(f"{args.model}: fold {j}/{n} done"),
        )
    print_metrics(record.to_json(), f"{args.model} on {ds.name} ({protocol.name})")
    if args.output:
        record.write(args.output)
        console.print(f"wrote {args.output}")
    if args.save_bundle:
        run_.models[0].save(
            args.save_bundle,
            metrics=record.metrics,
            extra={"protocol": record.protocol, "dataset": ds.name},
        )
        console.print(f"saved bundle {args.save_bundle}")
    return 0
