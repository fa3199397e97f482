"""Run one RecBole 1.2.1 model on a fixed split (executed by RecBole's own interpreter).

Shipped with zenrec as package data and run by path with the interpreter that
``ZENREC_PEER_PYTHON_RECBOLE`` names (``zenrec.runs.peers`` does this; it never imports it):
    $ZENREC_PEER_PYTHON_RECBOLE recbole_run.py \
        --split-dir ../shared/data/golden/ml-1m-recbole-split --model EASE --out result.json

The split's train/valid/test files become RecBole atomic files
(``name.{train,valid,test}.inter``, loaded through ``benchmark_filename``), so RecBole sees
exactly the interactions zenrec sees. Prints and writes one JSON record.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # RecBole reloads its checkpoints


def write_atomic_files(split_dir: Path, out: Path, name: str) -> None:
    (out / name).mkdir(parents=True, exist_ok=True)
    for part in ("train", "valid", "test"):
        src = split_dir / f"{part}.tsv"
        opener = open
        if not src.exists():
            src, opener = split_dir / f"{part}.tsv.gz", gzip.open
        with opener(src, "rt") as fh, open(out / name / f"{name}.{part}.inter", "w") as dst:
            header = fh.readline().rstrip("\n").split("\t")
            dst.write("user_id:token\titem_id:token\trating:float\n")
            iu, ii, ir = header.index("user_id"), header.index("item_id"), header.index("rating")
            for line in fh:
                f = line.rstrip("\n").split("\t")
                dst.write(f"{f[iu]}\t{f[ii]}\t{f[ir]}\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split-dir", required=True)
    ap.add_argument(
        "--model", required=True, help="RecBole model name, e.g. Pop, ItemKNN, EASE, BPR, NeuMF"
    )
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--set", action="append", default=[], help="extra RecBole config key=value (JSON values)"
    )
    args = ap.parse_args()

    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    split_dir, out_path = Path(args.split_dir).resolve(), Path(args.out).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="recbole-"))
    os.chdir(tmp)  # RecBole writes log/ and log_tensorboard/ into the working directory
    name = "goldensplit"
    write_atomic_files(split_dir, tmp, name)
    cfg = {
        "data_path": str(tmp),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id", "rating"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "RATING_FIELD": "rating",
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
        "metrics": ["Recall", "MRR", "NDCG", "Hit", "Precision"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": str(tmp / "saved"),
        "seed": 2020,
        "reproducibility": True,
        "worker": 0,
        "log_wandb": False,
    }
    for kv in args.set:
        k, v = kv.split("=", 1)
        try:
            cfg[k] = json.loads(v)
        except json.JSONDecodeError:
            cfg[k] = v
    config = Config(model=args.model, dataset=name, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    # RecBole's traditional models (EASE, SLIMElastic, ItemKNN, ADMMSLIM...) do their whole fit
    # in the model's constructor, so the clock starts before it, not at trainer.fit
    t0 = time.perf_counter()
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    best_valid_score, best_valid = trainer.fit(
        train_data, valid_data, saved=True, show_progress=False
    )
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    eval_s = time.perf_counter() - t0
    record = {
        "library": "recbole",
        "model": args.model,
        "metrics": {k.lower(): float(v) for k, v in dict(test).items()},
        # RecBole's own validation figures of the kept (best) epoch: what a tuner selects on
        "valid_metrics": {k.lower(): float(v) for k, v in dict(best_valid or {}).items()},
        "best_valid_score": None if best_valid_score is None else float(best_valid_score),
        "fit_seconds": fit_s,
        "eval_seconds": eval_s,
        "users": int(dataset.user_num - 1),
        "items": int(dataset.item_num - 1),
        "torch_threads": torch.get_num_threads(),
        "config": {k: cfg[k] for k in args.set and [s.split("=", 1)[0] for s in args.set]}
        if args.set
        else {},
    }
    out_path.write_text(json.dumps(record, indent=2))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
