"""``zenrec refresh``: a fresher bundle from a served bundle and the events recorded since,
compared with it on the newest events, and optionally promoted to a running service."""

from __future__ import annotations

import argparse
import os
import sys

EPILOG = """Examples:
  zenrec refresh --bundle runs/ease --events sqlite:///data/events.db --output runs/ease-2
  ZENREC_ADMIN_KEY=... zenrec refresh --bundle runs/ease --events postgresql://zenrec@db/zenrec \\
      --output runs/ease-2 --promote http://127.0.0.1:8000 --api-key-env ZENREC_ADMIN_KEY

Event mapping: every event of --types (default: all) is one positive (user, item) interaction,
rating events only when value >= --min-rating. The newest --holdout fraction of the events (by
event time) is kept out of the challenger and used to compare it with the bundle; the written
bundle is then refitted on every event. iALS and neural bundles are updated from their factors
or weights (neural: new id rows start at the mean of the old rows, then at most --warm-epochs
epochs); --full fits from scratch. See docs/serving.md#the-events-loop.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "refresh",
        help="update a bundle with the events recorded since it was built; promote it if better",
        description="Fit the bundle's model on its data plus the event store's new events (new "
        "users and items added), compare challenger and champion on the newest events, write "
        "the new bundle with refresh.json and, with --promote, reload the service.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", required=True, metavar="DIR", help="the champion bundle")
    p.add_argument(
        "--events",
        required=True,
        metavar="URL",
        help="event store (sqlite:///... or postgresql://...)",
    )
    p.add_argument("--output", required=True, metavar="DIR", help="the refreshed bundle")
    p.add_argument(
        "--types", metavar="LIST", help="comma-separated event types counted (default: all)"
    )
    p.add_argument("--min-rating", type=float, metavar="X", help="rating events count from X up")
    p.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        metavar="F",
        help="newest fraction of events kept for the comparison (default 0.2)",
    )
    p.add_argument("-k", type=int, default=10, help="list length of the metrics (default 10)")
    p.add_argument(
        "--margin",
        type=float,
        default=0.0,
        metavar="M",
        help="promote when challenger NDCG@k >= champion NDCG@k - M (default 0)",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="iALS and neural models: fit from a random start instead of starting from the "
        "bundle's factors or weights",
    )
    p.add_argument(
        "--warm-epochs",
        type=int,
        default=6,
        metavar="N",
        help="neural models: train at most N epochs from the bundle's weights, early stopping "
        "on held-out new pairs (default 6; capped at the config's epochs)",
    )
    p.add_argument("--promote", metavar="URL", help="service to reload when the challenger wins")
    p.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding the admin API key"
    )
    p.add_argument("--json", action="store_true", help="print refresh.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from zenrec._errors import ConfigError
    from zenrec.runs.refresh import RefreshConfig, promote, refresh_bundle

    key = None
    if args.promote:
        if not args.api_key_env:
            raise ConfigError("--promote needs --api-key-env VAR (the service's admin key)")
        key = os.environ.get(args.api_key_env, "").strip()
        if not key:
            raise ConfigError(
                f"--api-key-env {args.api_key_env}: the environment variable is not set or empty"
            )
    types = None
    if args.types:
        types = tuple(t.strip() for t in args.types.split(",") if t.strip())
    try:
        cfg = RefreshConfig(
            feedback_types=types,
            min_rating=args.min_rating,
            holdout=args.holdout,
            k=args.k,
            margin=args.margin,
            warm=not args.full,
            warm_epochs=args.warm_epochs,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "--" + str(err["loc"][0]).replace("_", "-")
        raise ConfigError(f"{name}: {err['msg']}; got {err.get('input')!r}") from None
    res = refresh_bundle(args.bundle, args.events, args.output, cfg)
    if args.json:
        print(res.model_dump_json(indent=2))
    else:
        m = res.metrics
        print(
            f"refreshed {res.model}: +{res.events['feedback']} events "
            f"({res.data['new_users']} new users, {res.data['new_items']} new items) -> "
            f"{res.output} in {res.seconds['total']:.2f} s"
        )
        for name in ("champion", "champion_session", "challenger"):
            if name in m:
                print(f"  {name:<17} " + "  ".join(f"{k} {v:.4f}" for k, v in m[name].items()))
        if res.warm_start:
            ch, out = res.warm_start["challenger"], res.warm_start["output"]
            print(
                f"  warm start: {ch['holdout_epochs'] or 0} + {ch['epochs']} epochs (challenger), "
                f"{out['epochs']} (output), at most {res.warm_start['max_epochs']} each; "
                f"new rows: {res.warm_start['new_rows']}"
            )
        print(f"  decision: {'promote' if res.decision['promote'] else 'keep'} "
              f"({res.decision['reason']})")  # fmt: skip
    if args.promote:
        if res.decision["promote"]:
            assert key is not None
            answer = promote(args.promote, key, res.output)
            sys.stderr.write(
                f"zenrec refresh: promoted {answer.get('previous_version')} -> "
                f"{answer.get('version')} at {args.promote}\n"
            )
        else:
            sys.stderr.write("zenrec refresh: not promoted (challenger worse beyond the margin)\n")
    return 0
