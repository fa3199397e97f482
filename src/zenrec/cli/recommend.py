"""``zenrec recommend``: top-k items for a user from a saved bundle."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recommend",
        help="top-k items for users from a model bundle",
        description="Recommend items (raw ids, scores and titles) for one or more users.",
        epilog="Example:\n  zenrec recommend --bundle runs/quickstart/best-model --user 196 -k 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", required=True, metavar="DIR", help="bundle directory")
    p.add_argument(
        "--user", required=True, action="append", metavar="ID", help="raw user id (repeatable)"
    )
    p.add_argument("-k", type=int, default=10, help="list length (default 10)")
    p.add_argument(
        "--include-seen", action="store_true", help="do not drop the user's training items"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--explain",
        action="store_true",
        help="attention models (sasrec, din): list, per recommended item, the history "
        "items with the highest attention weight",
    )
    p.add_argument(
        "--explain-top",
        type=int,
        default=3,
        metavar="N",
        help="history items listed per recommendation with --explain (default 3)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from zenrec._errors import ConfigError
    from zenrec.models.registry import load_model

    if args.k < 1:
        raise ConfigError(f"-k must be >= 1; got {args.k}")
    if args.explain_top < 1:
        raise ConfigError(f"--explain-top must be >= 1; got {args.explain_top}")
    model = load_model(args.bundle)
    recs = model.recommend(args.user, k=args.k, exclude_seen=not args.include_seen)
    if args.explain:
        from zenrec.models.neural.sequential import Explainable  # imports torch: only when asked

        if not isinstance(model, Explainable):
            raise ConfigError(
                f"--explain needs an attention model (sasrec, din); the bundle holds '{model.name}'"
            )
        recs = model.explain(recs, top=args.explain_top)
    titles = model.item_meta.get("title")
    records = recs.to_records()
    if titles is not None:
        assert model.item_vocab is not None
        for r in records:
            idx = model.item_vocab.encode(r["items"])
            r["titles"] = [titles[i] for i in idx]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    console = Console()
    for r in records:
        note = " (no training history: popularity fallback)" if r["fallback"] else ""
        t = Table(title=f"user {r['user']}{note} - {model.name}")
        t.add_column("#", justify="right")
        t.add_column("item")
        t.add_column("score", justify="right")
        if "titles" in r:
            t.add_column("title")
        if "explanation" in r:
            t.add_column("because of (attention weight)")
        for j, (item, score) in enumerate(zip(r["items"], r["scores"]), 1):
            row = [str(j), str(item), f"{score:.4f}"]
            if "titles" in r:
                row.append(r["titles"][j - 1])
            if "explanation" in r:
                row.append(
                    "; ".join(
                        f"{e['title'] or e['item']} ({e['weight']:.2f})"
                        for e in r["explanation"][j - 1]
                    )
                )
            t.add_row(*row)
        console.print(t)
    return 0
