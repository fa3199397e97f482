"""``zenrec quickstart``: the main job on MovieLens-100K, end to end in about a minute."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

QUICKSTART_MODELS: list[tuple[str, dict]] = [
    ("pop", {}),
    ("itemknn", {}),
    ("userknn", {}),
    ("ease", {}),
    ("ials", {}),
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="compare models on MovieLens-100K, show recommendations, save the best",
        description=(
            "Run the msrec protocol on MovieLens-100K over several models, print a leaderboard, "
            "show the top-10 of a sample user next to their history, and save the best model."
        ),
        epilog="Example:\n  zenrec quickstart --output runs/quickstart",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="ml-100k", help="dataset (default ml-100k)")
    p.add_argument("--data-dir", metavar="DIR", help="explicit directory of the dataset")
    p.add_argument("--protocol", default="msrec", help="protocol preset (default msrec)")
    p.add_argument(
        "--output", default="runs/quickstart", metavar="DIR", help="where results and the bundle go"
    )
    p.add_argument(
        "--user", help="raw id of the sample user (default: a user with a mid-size history)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from zenrec._io import atomic_write_text
    from zenrec.data import load_dataset
    from zenrec.data.spec import DataSpec
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.runs.evaluate import evaluate_model

    console = Console()
    console.width = max(console.width, 120)
    t_start = time.perf_counter()
    protocol = get_protocol(args.protocol)
    out = Path(args.output)
    with console.status(f"loading {args.dataset}"):
        ds = load_dataset(args.dataset, path=args.data_dir)
    console.print(
        f"[bold]{ds.name}[/bold]: {len(ds):,} interactions, {ds.n_users:,} users, "
        f"{ds.n_items:,} items"
    )
    console.print(f"[dim]protocol {protocol.name}: {protocol.description}[/dim]")
    rows = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("models", total=len(QUICKSTART_MODELS))
        for name, params in QUICKSTART_MODELS:
            progress.update(task, description=f"fitting {name}")
            record, run_ = evaluate_model(
                ds,
                protocol,
                name,
                params,
                spec=DataSpec(source=args.dataset, data_dir=args.data_dir),
            )
            rows.append((record, run_))
            progress.advance(task)
    key = protocol.main_metric
    rows.sort(key=lambda r: -r[0].metrics[key])
    shown = [
        k
        for k in ("ndcg@10", "recall@10", "precision@10", "map@10", "hit@10", "coverage@10")
        if k in rows[0][0].metrics
    ]
    t = Table(title=f"leaderboard: {ds.name}, protocol {protocol.name} (sorted by {key})")
    t.add_column("#", justify="right")
    t.add_column("model")
    for k in shown:
        t.add_column(k, justify="right")
    t.add_column("fit s", justify="right")
    t.add_column("eval s", justify="right")
    for j, (rec, _) in enumerate(rows, 1):
        t.add_row(
            str(j),
            rec.model,
            *(f"{rec.metrics[k]:.4f}" for k in shown),
            f"{rec.fit_seconds or 0:.2f}",
            f"{rec.eval_seconds or 0:.2f}",
        )
    console.print(t)

    best_rec, best_run = rows[0]
    model = best_run.models[0]
    split = best_run.splits[0]
    train = split.train
    counts = train.user_counts()
    if args.user is not None:
        uidx = int(train.user_vocab.encode([args.user])[0])
        if uidx < 0:
            from zenrec._errors import ConfigError

            raise ConfigError(f"--user {args.user}: not a user of {ds.name}")
    else:
        uidx = int(np.argsort(counts)[counts.size // 2])
    raw_user = train.user_vocab.decode([uidx])[0]
    titles = train.item_titles()
    hist_rows = np.flatnonzero(train.users == uidx)
    if train.ratings is not None:
        hist_rows = hist_rows[np.argsort(-train.ratings[hist_rows], kind="stable")]
    recs = model.recommend([raw_user], k=10)
    held_out = set(split.test.items[split.test.users == uidx].tolist())
    ht = Table(title=f"user {raw_user}: history ({hist_rows.size} items, top-rated first)")
    ht.add_column("rating", justify="right")
    ht.add_column("title")
    for r in hist_rows[:10]:
        rating = "" if train.ratings is None else f"{train.ratings[r]:g}"
        ht.add_row(
            rating,
            titles[train.items[r]]
            if titles is not None
            else str(train.item_vocab.ids[train.items[r]]),
        )
    rt = Table(title=f"top-10 from {model.name} (* = in the user's held-out test items)")
    rt.add_column("#", justify="right")
    rt.add_column("title")
    rt.add_column("score", justify="right")
    for j, (item, score) in enumerate(zip(recs.item_lists[0], recs.score_lists[0]), 1):
        iidx = int(train.item_vocab.encode([item])[0])
        mark = " *" if iidx in held_out else ""
        rt.add_row(
            str(j), (titles[iidx] if titles is not None else str(item)) + mark, f"{score:.3f}"
        )
    from rich.columns import Columns

    console.print(Columns([ht, rt]))

    bundle = model.save(
        out / "best-model",
        metrics=best_rec.metrics,
        extra={"protocol": best_rec.protocol, "dataset": ds.name},
    )
    atomic_write_text(
        out / "leaderboard.json", json.dumps([r.to_json() for r, _ in rows], indent=2, default=str)
    )
    console.print(
        f"saved the best model ({model.name}, {key} {best_rec.metrics[key]:.4f}) "
        f"to [bold]{bundle}[/bold]; "
        f"results in {out / 'leaderboard.json'}"
    )
    console.print(f"try: zenrec recommend --bundle {bundle} --user {raw_user} -k 10")
    console.print(f"[dim]done in {time.perf_counter() - t_start:.1f} s[/dim]")
    return 0
