"""Rating prediction: zenrec BiasedMF vs Surprise SVD on the same 5 folds (surprise-cv5).

zenrec's ``surprise-cv5`` folds (seed 0) are written to files and given to Surprise through
``PredefinedKFold``, so both libraries see identical train/test parts. Surprise runs through
zenrec's runner with the interpreter ``ZENREC_PEER_PYTHON_SURPRISE`` names
(``bash benchmarks/peers/setup_peers.sh surprise`` creates it; ``make bench`` sets it). Total
seconds cover fitting and predicting all 5 folds; medians of ``--repeats`` runs, one library after
the other.

Usage:
    ZENREC_DATA=../shared/data .venv/bin/python benchmarks/rating_side_by_side.py --repeats 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, median, page_head, peer_record, write_json, write_text

from zenrec.data import load_dataset
from zenrec.evaluation import evaluate_rating, get_protocol
from zenrec.models import create_model
from zenrec.runs.peers import export_split


def zenrec_cv(splits) -> dict:
    t0 = time.perf_counter()
    rmses, maes = [], []
    for s in splits:
        m = create_model("biasedmf").fit(s.train)
        res = evaluate_rating(m, s.test)
        rmses.append(res.metrics["rmse"])
        maes.append(res.metrics["mae"])
    return {
        "library": "zenrec",
        "model": "biasedmf",
        "rmse": sum(rmses) / len(rmses),
        "mae": sum(maes) / len(maes),
        "total_seconds": time.perf_counter() - t0,
        "params": create_model("biasedmf").params(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-1m"])
    args = ap.parse_args()
    proto = get_protocol("surprise-cv5")
    rows = []
    for name in args.datasets:
        ds = load_dataset(name)
        splits = proto.splits(ds, proto.default_seed)
        zs = [zenrec_cv(splits) for _ in range(args.repeats)]
        z = dict(
            zs[0],
            total_seconds=median([r["total_seconds"] for r in zs]),
            total_seconds_all=[r["total_seconds"] for r in zs],
        )
        rows.append({"dataset": name, **z})
        print(name, z)
        with tempfile.TemporaryDirectory() as tmp:
            for j, sp in enumerate(splits):
                export_split(sp, tmp, fold=j)
            ps = [peer_record("surprise", "SVD", Path(tmp)) for _ in range(args.repeats)]
        if all(ps):
            p = dict(
                ps[0],
                total_seconds=median([r["total_seconds"] for r in ps]),
                total_seconds_all=[r["total_seconds"] for r in ps],
            )
            rows.append({"dataset": name, **p})
            print(name, p)
    payload = {
        "machine": machine(),
        "repeats": args.repeats,
        "rows": rows,
        "command": "ZENREC_DATA=../shared/data .venv/bin/python benchmarks/rating_side_by_side.py "
        f"--repeats {args.repeats}",
    }
    write_json(RESULTS / "rating.json", payload)
    lines = page_head(
        "Does zenrec's BiasedMF predict ratings as well as Surprise's SVD, and how fast?",
        payload["command"],
        payload["machine"],
        "Both libraries on the same 5 folds of surprise-cv5 (seed 0). Seconds: fit + predict of "
        f"all 5 folds, median of {args.repeats} runs, one library after the other.",
    )
    lines += [
        "| dataset | library | model | RMSE | MAE | total s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['library']} | {r['model']} | {r['rmse']:.4f} | {r['mae']:.4f} "
            f"| {r['total_seconds']:.2f} |"
        )
    lines += [
        "",
        "Published (Surprise README, its own machine): SVD 0.934 / 0.873 RMSE on ML-100K / ML-1M.",
    ]
    write_text(RESULTS / "rating.md", "\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'rating.md'}")


if __name__ == "__main__":
    main()
