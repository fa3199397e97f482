"""Default vs tuned NDCG@10 of every model on four datasets (issue 9, "defaults that transfer").

For each (dataset, model) cell: the model with its default config (data-dependent defaults
resolved at fit time) is fitted on the protocol's train part and tested once; then ``tune``
searches the shipped space on validation data only and tests the best config once. Cells are
written one JSON file each (resumable: finished cells are skipped) and summarised in
``OUT/defaults.md``. The default run of a cell is kept in ``default-DATASET-MODEL.json`` as soon
as it is done, so a cell interrupted in its search resumes there (the search resumes from its
Optuna study in ``tune-DATASET-MODEL/``).

Datasets (name -> protocol):
  ml-100k             msrec   (Microsoft Recommenders' 75/25 per-user split)
  ml-1m               recbole (ratings >= 3, per-user 8:1:1)
  ml-latest-small     recbole (items with >= 5 ratings kept, so item-item models fit in memory/time)
  sparse-synthetic    recbole (synthetic_dataset(20000 users, 4000 items, >= 3 per user): density
                               under 0.1%, most users with under 5 interactions)

Run (accuracy only; fit seconds are indicative on a shared machine):
  OPENBLAS_NUM_THREADS=1 ZENREC_DATA=/work/shared/data .venv/bin/python \
      benchmarks/defaults_transfer.py --out runs/defaults --trials 12 \
      --datasets ml-100k,sparse-synthetic --models ease,edlae,rp3beta,ials
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from _common import write_json, write_text

PROTOCOL = {
    "ml-100k": "msrec",
    "ml-1m": "recbole",
    "ml-latest-small": "recbole",
    "sparse-synthetic": "recbole",
}
FILTERS: dict[str, dict[str, Any]] = {"ml-latest-small": {"min_item_count": 5}}


def load(name: str) -> Any:
    from zenrec.data import load_dataset, synthetic_dataset

    if name == "sparse-synthetic":
        ds = synthetic_dataset(n_users=20_000, n_items=4_000, interactions_per_user=3, seed=0)
        ds.name = "sparse-synthetic"
        return ds
    return load_dataset(name)


def describe(ds: Any) -> dict[str, Any]:
    import numpy as np

    per_user = np.bincount(ds.users, minlength=ds.n_users)
    return {
        "users": int(ds.n_users),
        "items": int(ds.n_items),
        "interactions": len(ds),
        "density": len(ds) / (ds.n_users * ds.n_items),
        "share_users_under_5": float((per_user < 5).mean()),
    }


def run_default(ds: Any, dname: str, model: str) -> dict[str, Any]:
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.runs.evaluate import evaluate_model

    record, _ = evaluate_model(
        ds, get_protocol(PROTOCOL[dname]), model, {}, user_filters=FILTERS.get(dname)
    )
    return {"ndcg@10": record.metrics["ndcg@10"], "fit_seconds": record.fit_seconds}


def run_cell(
    ds: Any, dname: str, model: str, trials: int, out: Path, fixed: dict[str, Any] | None = None
) -> dict[str, Any]:
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.tuning.space import load_space
    from zenrec.tuning.tuner import tune

    protocol = get_protocol(PROTOCOL[dname])
    filters = FILTERS.get(dname)
    t0 = time.perf_counter()
    cached = out / f"default-{dname}-{model}.json"  # an interrupted cell keeps its default run
    if cached.exists():
        default = json.loads(cached.read_text())
    else:
        default = run_default(ds, dname, model)
        write_json(cached, default)
    space = load_space(model=model)
    if fixed:  # a smaller budget than the shipped space's (stated in the cell)
        space = space.model_copy(update={"fixed": {**space.fixed, **fixed}})
    res = tune(
        ds,
        protocol,
        model,
        space=space,
        n_trials=trials,
        run_dir=out / f"tune-{dname}-{model}",
        user_filters=filters,
        progress=False,
    )
    assert res.test_record is not None
    tuned = {
        "ndcg@10": res.test_record.metrics["ndcg@10"],
        "best_params": res.best_params,
        "best_valid": res.best_value,
        "default_valid": res.default_value,
        "finished_trials": res.n_finished,
    }
    return {
        "dataset": dname,
        "protocol": protocol.name,
        "filters": filters,
        "model": model,
        "space_fixed_override": fixed or {},
        "default": default,
        "tuned": tuned,
        "trials": trials,
        "ratio": default["ndcg@10"] / tuned["ndcg@10"] if tuned["ndcg@10"] else None,
        "seconds": time.perf_counter() - t0,
    }


def summarise(out: Path) -> str:
    rows = [
        r for p in sorted(out.glob("cell-*.json")) if "dataset" in (r := json.loads(p.read_text()))
    ]
    lines = [
        "# How close does each model's default come to its tuned NDCG@10?",
        "",
        f"Command: `python benchmarks/defaults_transfer.py --out {out}`  ",
        f"Written: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from {len(rows)} cells "
        "(each cell's JSON holds its own date and settings).",
        "",
        "| dataset | protocol | model | default ndcg@10 | tuned ndcg@10 | default / tuned "
        "| trials | best params |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['protocol']} | {r['model']} | {r['default']['ndcg@10']:.4f} | "
            f"{r['tuned']['ndcg@10']:.4f} | {r['ratio']:.1%} | {r['tuned']['finished_trials']} | "
            f"`{json.dumps(r['tuned']['best_params'], default=str)}` |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default="runs/defaults")
    ap.add_argument("--datasets", default="ml-100k,sparse-synthetic,ml-latest-small,ml-1m")
    ap.add_argument("--models", default="ease,edlae,rp3beta,slim,ials,itemknn")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument(
        "--fixed",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a [fixed] value of the shipped search space (e.g. epochs=20: a "
        "smaller budget per trial), recorded in the cell",
    )
    ap.add_argument(
        "--refresh-defaults",
        action="store_true",
        help="re-evaluate only the default configs of finished cells (after a change of defaults)",
    )
    args = ap.parse_args()
    out = Path(args.out)
    from zenrec.cli._common import parse_sets

    fixed = parse_sets(args.fixed)
    out.mkdir(parents=True, exist_ok=True)
    for dname in args.datasets.split(","):
        ds = load(dname)
        write_json(out / f"data-{dname}.json", describe(ds))
        for model in args.models.split(","):
            cell = out / f"cell-{dname}-{model}.json"
            if cell.exists():
                if args.refresh_defaults:
                    r = json.loads(cell.read_text())
                    r["default"] = run_default(ds, dname, model)
                    write_json(out / f"default-{dname}-{model}.json", r["default"])
                    r["ratio"] = r["default"]["ndcg@10"] / r["tuned"]["ndcg@10"]
                    write_json(cell, r)
                continue
            print(f"{dname} {model} ...", flush=True)
            write_json(cell, run_cell(ds, dname, model, args.trials, out, fixed))
            write_text(out / "defaults.md", summarise(out))
    write_text(out / "defaults.md", summarise(out))
    print((out / "defaults.md").read_text())


if __name__ == "__main__":
    main()
