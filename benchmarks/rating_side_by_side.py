"""Rating prediction: zenrec BiasedMF vs Surprise SVD on the same 5 folds (surprise-cv5).

zenrec's ``surprise-cv5`` folds (seed 0) are written to files and given to Surprise through
``PredefinedKFold``, so both libraries see identical train/test parts. Surprise runs in its
own venv (``bash benchmarks/peers/setup_peers.sh surprise``). Total seconds cover fitting and
predicting all 5 folds; medians of ``--repeats`` runs, one library after the other.

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
from _common import RESULTS, ROOT, machine, median, run_json, write_json, write_text

from zenrec.data import load_dataset
from zenrec.evaluation import evaluate_rating, get_protocol
from zenrec.models import create_model


def write_folds(splits, d: Path) -> None:
    for j, s in enumerate(splits):
        for part, ds in (("train", s.train), ("test", s.test)):
            u = ds.user_vocab.decode(ds.users)
            i = ds.item_vocab.decode(ds.items)
            with open(d / f"fold{j}.{part}.tsv", "w") as fh:
                fh.writelines(f"{a}\t{b}\t{r:g}\n" for a, b, r in zip(u, i, ds.ratings))


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
    py = ROOT / "benchmarks" / ".venv-surprise" / "bin" / "python"
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
        if py.exists():
            with tempfile.TemporaryDirectory() as tmp:
                write_folds(splits, Path(tmp))
                ps = [
                    run_json(
                        [
                            str(py),
                            "benchmarks/peers/surprise_run.py",
                            tmp,
                            str(Path(tmp) / "o.json"),
                        ]
                    )
                    for _ in range(args.repeats)
                ]
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
        "command": f"ZENREC_DATA=../shared/data .venv/bin/python benchmarks/rating_side_by_side.py --repeats {args.repeats}",
    }
    write_json(RESULTS / "rating.json", payload)
    lines = [
        "# Rating prediction: zenrec BiasedMF and Surprise SVD on the same 5 folds",
        "",
        f"Command: `{payload['command']}`  ",
        f"Machine: {payload['machine']['cpu_count']} cores, {payload['machine']['platform']}. "
        f"Seconds: fit + predict of all 5 folds, median of {args.repeats} runs, run one after the other.",
        "",
        "| dataset | library | model | RMSE | MAE | total s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['library']} | {r['model']} | {r['rmse']:.4f} | {r['mae']:.4f} | {r['total_seconds']:.2f} |"
        )
    lines += [
        "",
        "Published (Surprise README, its own machine): SVD 0.934 / 0.873 RMSE on ML-100K / ML-1M.",
    ]
    write_text(RESULTS / "rating.md", "\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'rating.md'}")


if __name__ == "__main__":
    main()
