"""Classic models: zenrec vs RecBole on RecBole's own splits, plus zenrec's protocol presets.

Runs, one after the other (never concurrently), for ML-100K and ML-1M:
  * zenrec Pop, ItemKNN, EASE, iALS on RecBole's golden split (``--split-dir``);
  * RecBole 1.2.1 Pop, ItemKNN, EASE on the same split, through zenrec's RecBole runner
    (``zenrec.runs.peers``) with the interpreter ``ZENREC_PEER_PYTHON_RECBOLE`` names
    (``bash benchmarks/peers/setup_peers.sh recbole`` creates it; ``make bench`` sets it);
  * zenrec's ``recbole`` preset (its own split, seed 2020) and ML-100K ``msrec``.
Each timing is the median of ``--repeats`` runs. Writes docs/results/classic.{md,json}.

Usage:
    ZENREC_DATA=../shared/data .venv/bin/python benchmarks/classic_side_by_side.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, machine, median, page_head, peer_record, write_json, write_text

from zenrec.data import load_dataset
from zenrec.evaluation.protocols import get_protocol
from zenrec.runs import evaluate_model

ZENREC_MODELS = {"pop": {}, "itemknn": {}, "ease": {}, "ials": {}}
RECBOLE_MODELS = {"pop": "Pop", "itemknn": "ItemKNN", "ease": "EASE"}
KEYS = ("ndcg@10", "recall@10", "mrr@10", "hit@10", "precision@10")


def zenrec_runs(ds, protocol, model, params, repeats, split_dir=None):
    recs = [
        evaluate_model(ds, protocol, model, params, split_dir=split_dir)[0].to_json()
        for _ in range(repeats)
    ]
    out = dict(recs[0])
    out["fit_seconds"] = median([r["fit_seconds"] for r in recs])
    out["eval_seconds"] = median([r["eval_seconds"] for r in recs])
    out["fit_seconds_all"] = [r["fit_seconds"] for r in recs]
    return out


def recbole_runs(split_dir, model, repeats):
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    recs = [peer_record("recbole", model, split_dir, env=env) for _ in range(repeats)]
    if not all(recs):
        return None
    out = dict(recs[0])
    out["fit_seconds"] = median([r["fit_seconds"] for r in recs])
    out["eval_seconds"] = median([r["eval_seconds"] for r in recs])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-1m"])
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    rows = []
    recbole = get_protocol("recbole")
    t_start = time.time()
    for name in args.datasets:
        ds = load_dataset(name)
        golden = DATA / "golden" / f"{name}-recbole-split"
        for model, params in ZENREC_MODELS.items():
            r = zenrec_runs(ds, recbole, model, params, args.repeats, split_dir=golden)
            rows.append(
                {
                    **r,
                    "dataset": name,
                    "setting": "RecBole golden split",
                    "library": "zenrec",
                    "model": model,
                }
            )
            print(
                name,
                "golden zenrec",
                model,
                {k: round(r["metrics"][k], 4) for k in KEYS},
                f"fit {r['fit_seconds']:.2f}",
            )
            if model in RECBOLE_MODELS and not args.no_peer:
                p = recbole_runs(golden, RECBOLE_MODELS[model], args.repeats)
                if p is not None:
                    rows.append(
                        {**p, "dataset": name, "setting": "RecBole golden split", "model": model}
                    )
                    print(
                        name,
                        "golden recbole",
                        model,
                        {k: round(p["metrics"].get(k, float("nan")), 4) for k in KEYS},
                        f"fit {p['fit_seconds']:.2f}",
                    )
        for model, params in ZENREC_MODELS.items():
            r = zenrec_runs(ds, recbole, model, params, args.repeats)
            rows.append(
                {
                    **r,
                    "dataset": name,
                    "setting": "zenrec recbole preset (seed 2020)",
                    "library": "zenrec",
                    "model": model,
                }
            )
        if name == "ml-100k":
            msrec = get_protocol("msrec")
            for model, params in ZENREC_MODELS.items():
                r = zenrec_runs(ds, msrec, model, params, args.repeats)
                rows.append(
                    {
                        **r,
                        "dataset": name,
                        "setting": "zenrec msrec preset",
                        "library": "zenrec",
                        "model": model,
                    }
                )
    payload = {
        "machine": machine(),
        "repeats": args.repeats,
        "rows": rows,
        "command": "ZENREC_DATA=../shared/data .venv/bin/python benchmarks/classic_side_by_side.py "
        f"--repeats {args.repeats}",
        "seconds": time.time() - t_start,
    }
    write_json(RESULTS / "classic.json", payload)
    write_text(RESULTS / "classic.md", render(payload))
    print(f"wrote {RESULTS / 'classic.md'}")


def render(payload) -> str:
    m = payload["machine"]
    lines = page_head(
        "Do zenrec's classic models match RecBole's accuracy on the same split, and how fast?",
        payload["command"],
        m,
        f"Timings are medians of {payload['repeats']} runs, measured one after the other (never "
        "concurrently); RecBole 1.2.1 runs on the very files of RecBole's golden split.",
    )
    groups: dict = {}
    for r in payload["rows"]:
        groups.setdefault((r["dataset"], r["setting"]), []).append(r)
    for (ds, split), rows in groups.items():
        lines += [
            f"## {ds}, {split}",
            "",
            "| library | model | NDCG@10 | Recall@10 | MRR@10 | Hit@10 | P@10 | fit s | eval s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            mm = r["metrics"]
            vals = " | ".join(f"{mm.get(k, float('nan')):.4f}" for k in KEYS)
            lines.append(
                f"| {r['library']} | {r['model']} | {vals} | {r['fit_seconds']:.2f} "
                f"| {r['eval_seconds']:.2f} |"
            )
        zen = {r["model"]: r for r in rows if r["library"] == "zenrec"}
        peer = {r["model"]: r for r in rows if r["library"] == "recbole"}
        common = [k for k in zen if k in peer]
        if common:
            lines += ["", "Ratios zenrec / RecBole (accuracy: NDCG@10; time: fit + eval):", ""]
            for k in common:
                a = zen[k]["metrics"]["ndcg@10"] / max(1e-12, peer[k]["metrics"]["ndcg@10"])
                t = (zen[k]["fit_seconds"] + zen[k]["eval_seconds"]) / max(
                    1e-12, peer[k]["fit_seconds"] + peer[k]["eval_seconds"]
                )
                lines.append(f"- {k}: accuracy x{a:.3f}, time x{t:.3f}")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
