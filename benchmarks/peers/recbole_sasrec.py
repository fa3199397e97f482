"""RecBole 1.2.1's SASRec next to zenrec's sasrec on exactly zenrec's loo-full split.

Run from the repository root with zenrec's interpreter; RecBole runs with the interpreter that
``ZENREC_PEER_PYTHON_RECBOLE`` names (``benchmarks/peers/setup_peers.sh recbole`` creates it):

    .venv/bin/python benchmarks/peers/recbole_sasrec.py \
        --dataset ml-100k --epochs 2 --out /tmp/seqres/recbole-sasrec-ml100k.json

zenrec's loo-full split (filters, leave-one-out by time, ties by file order) is written as
RecBole's pre-augmented sequential benchmark files: every training item with the (up to 50)
training items before it; the validation item with the user's training history; the test item
with training + validation history. RecBole then trains SASRec (CE loss, its defaults: 2 layers,
2 heads, hidden 64, inner 256, dropout 0.5, lr 1e-3, batch 2048) for ``--epochs`` epochs,
validating every epoch, and scores the test part by full ranking. Note: RecBole's full ranking of
sequential models does not remove the user's history items from the ranking (zenrec's loo-full
does), which can only lower RecBole's figures slightly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from zenrec import ConfigError
from zenrec.runs.peers import peer_python

RUNNER = r"""
import json, os, sys, time
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_seed
data_dir, out, epochs, max_len = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
os.chdir(data_dir)
cfg = {"data_path": data_dir, "benchmark_filename": ["train", "valid", "test"],
       "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
       "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "MAX_ITEM_LIST_LENGTH": max_len,
       "eval_args": {"group_by": "user", "order": "TO", "mode": "full"},
       "train_neg_sample_args": None,
       "loss_type": "CE", "epochs": epochs, "eval_step": 1, "stopping_step": 10,
       "metrics": ["Hit", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10",
       "device": "cpu", "use_gpu": False, "show_progress": False,
       "checkpoint_dir": data_dir + "/saved",
       "seed": 2020, "reproducibility": True, "worker": 0, "log_wandb": False}
config = Config(model="SASRec", dataset="seq", config_dict=cfg)
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
model = get_model("SASRec")(config, train._dataset).to("cpu")
trainer = get_trainer(config["MODEL_TYPE"], "SASRec")(config, model)
t0 = time.perf_counter()
best, _ = trainer.fit(train, valid, saved=True, show_progress=False)
fit_s = time.perf_counter() - t0
res = trainer.evaluate(test, load_best_model=True, show_progress=False)
json.dump({"library": "recbole", "model": "SASRec", "epochs_run": epochs,
           "metrics": {k.lower(): float(v) for k, v in dict(res).items()},
           "fit_seconds": fit_s, "torch_threads": torch.get_num_threads(),
           "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1)},
          open(out, "w"), indent=2)
"""


def write_files(dataset: str, d: Path, max_len: int) -> dict[str, int]:
    from zenrec.data import Dataset, load_dataset
    from zenrec.data.sequences import chronological_order
    from zenrec.evaluation.protocols import get_protocol, prepare_dataset

    proto = get_protocol("loo-full")
    data = prepare_dataset(load_dataset(dataset), proto)
    split = proto.splits(data, proto.default_seed)[0]
    (d / "seq").mkdir(parents=True)
    iv, uv = data.item_vocab, data.user_vocab

    def seqs(part: Dataset) -> dict[int, list[int]]:
        o = chronological_order(part)
        out: dict[int, list[int]] = {}
        for u, i in zip(part.users[o].tolist(), part.items[o].tolist()):
            out.setdefault(u, []).append(i)
        return out

    tr, va, te = seqs(split.train), seqs(split.valid), seqs(split.test)
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"

    def line(u: int, hist: list[int], target: int) -> str:
        h = " ".join(str(x) for x in iv.decode(np.asarray(hist[-max_len:], np.int64)).tolist())
        return f"{uv.decode([u])[0]}\t{h}\t{iv.decode([target])[0]}\n"

    counts = {"train": 0, "valid": 0, "test": 0}
    with open(d / "seq" / "seq.train.inter", "w") as f:
        f.write(head)
        for u, s in tr.items():
            for t in range(1, len(s)):
                f.write(line(u, s[:t], s[t]))
                counts["train"] += 1
    with open(d / "seq" / "seq.valid.inter", "w") as f:
        f.write(head)
        for u, s in va.items():
            f.write(line(u, tr[u], s[0]))
            counts["valid"] += 1
    with open(d / "seq" / "seq.test.inter", "w") as f:
        f.write(head)
        for u, s in te.items():
            f.write(line(u, tr[u] + va.get(u, []), s[0]))
            counts["test"] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        recbole_python = peer_python("recbole")
    except ConfigError as exc:
        sys.exit(str(exc))
    tmp = Path(tempfile.mkdtemp(prefix="recbole-sasrec-"))
    counts = write_files(args.dataset, tmp, args.max_len)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
    }
    out = Path(args.out).resolve()
    subprocess.run(
        [
            str(recbole_python),
            "-c",
            RUNNER,
            str(tmp),
            str(out),
            str(args.epochs),
            str(args.max_len),
        ],
        check=True,
        env=env,
        cwd=tmp,
    )
    rec = json.loads(out.read_text())
    rec.update(dataset=args.dataset, split="zenrec loo-full", rows=counts)
    out.write_text(json.dumps(rec, indent=2))
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
