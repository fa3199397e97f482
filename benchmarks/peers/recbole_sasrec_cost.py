"""Why one RecBole SASRec epoch costs so much more than one of zenrec's: counts, arithmetic and a
profile of one training step of each, on zenrec's ML-100K loo-full split, one thread.

Run from the repository root with zenrec's interpreter (RecBole's from
``ZENREC_PEER_PYTHON_RECBOLE``), on a split folder that ``recbole_sasrec.py --state`` wrote:

    .venv/bin/python benchmarks/peers/recbole_sasrec_cost.py --state runs/recbole-sasrec-long \
        --out /tmp/recbole-sasrec-cost.json

1. Rows and positions per epoch. RecBole reads pre-augmented prefixes: one row per training
   target, its history padded to ``max_len`` tokens, the loss at the last position only. zenrec
   reads ``training_windows`` (``max_len + 1`` items a row) with the loss at every non-padded
   position. Both score every training target once per epoch against the whole catalogue.
2. Multiply-adds per token of each network, forward (backward is about twice that, for both).
3. ``torch.profiler`` on ``--steps`` training steps of each after one warm-up step: the top
   operators by self CPU time; and the process CPU seconds per step (the same steps, measured
   without the profiler), times the steps of an epoch (RecBole: ceil(rows / 2048); zenrec:
   ceil(windows / 128)). RecBole's steps are
   measured as it runs them (autograd anomaly detection on: looking up a sequential model
   imports ``sine.py``, which runs ``torch.autograd.set_detect_anomaly(True)``) and again
   with it off.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

RECBOLE_PART = r"""
import json, os, sys, time
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
import torch
from torch.profiler import ProfilerActivity, profile
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, init_seed
data_dir, steps = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
os.chdir(data_dir)
cfg = {"data_path": data_dir, "benchmark_filename": ["train", "valid", "test"],
       "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
       "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "MAX_ITEM_LIST_LENGTH": 50,
       "eval_args": {"group_by": "user", "order": "TO", "mode": "full"},
       "train_neg_sample_args": None, "loss_type": "CE", "device": "cpu", "use_gpu": False,
       "seed": 2020, "reproducibility": True, "worker": 0, "log_wandb": False,
       "show_progress": False}
config = Config(model="SASRec", dataset="seq", config_dict=cfg)
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
model = get_model("SASRec")(config, train._dataset)
model.train()
opt = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
it = iter(train)
batches = [next(it) for _ in range(steps + 1)]
seq = batches[0]["item_id_list"]
real = int((seq > 0).sum())

def step(b):
    opt.zero_grad()
    loss = model.calculate_loss(b)
    loss.backward()
    opt.step()

step(batches[0])
# importing RecBole's sequential models runs sine.py's module-level
# torch.autograd.set_detect_anomaly(True): every backward output is then checked for NaN
anomaly = torch.is_anomaly_enabled()

def cpu_per_step():
    c0 = time.process_time()
    for b in batches[1:]:
        step(b)
    return (time.process_time() - c0) / steps

cpu = cpu_per_step()
torch.autograd.set_detect_anomaly(False)
cpu_no_anomaly = cpu_per_step()
torch.autograd.set_detect_anomaly(anomaly)
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for b in batches[1:]:
        step(b)
# the data loader's own cost (building Interaction batches)
c1 = time.process_time()
for _ in range(steps):
    next(it)
load = (time.process_time() - c1) / steps
print(json.dumps({"batch_rows": int(seq.shape[0]), "batch_tokens": int(seq.numel()),
                  "batch_real_tokens": real, "cpu_s_per_step": cpu, "loader_cpu_s_per_step": load,
                  "anomaly_detection_on": anomaly, "cpu_s_per_step_anomaly_off": cpu_no_anomaly,
                  "self_cpu_by_op": {e.key: e.self_cpu_time_total / 1e6 / steps
                                     for e in prof.key_averages()},
                  "n_params": sum(p.numel() for p in model.parameters()),
                  "top_ops": prof.key_averages().table(sort_by="self_cpu_time_total",
                                                       row_limit=15)}))
"""


def recbole_counts(seq_dir: Path, max_len: int) -> dict[str, int]:
    rows = tokens_real = 0
    with open(seq_dir / "seq.train.inter") as f:
        next(f)
        for line in f:
            hist = line.split("\t")[1].split()
            rows += 1
            tokens_real += min(len(hist), max_len)
    return {"rows": rows, "tokens": rows * max_len, "real_tokens": tokens_real, "targets": rows}


def zenrec_counts(dataset: str, max_len: int) -> tuple[dict[str, int], object]:
    import numpy as np

    from zenrec.data import load_dataset
    from zenrec.evaluation.protocols import get_protocol, prepare_dataset
    from zenrec.models.neural.sequential import training_windows

    proto = get_protocol("loo-full")
    data = prepare_dataset(load_dataset(dataset), proto)
    split = proto.splits(data, proto.default_seed)[0]
    w = training_windows(split.train, max_len)
    seq, tgt = w[:, :-1], w[:, 1:]
    targets = int(((tgt > 0) & (seq > 0)).sum())
    counts = {
        "rows": int(w.shape[0]),
        "tokens": int(seq.size),
        "real_tokens": int((seq > 0).sum()),
        "targets": targets,
        "n_items": int(split.train.n_items),
    }
    return counts, (w, np.int64)


def macs_per_token(dim: int, ffn: int, blocks: int, t: int) -> int:
    """Forward multiply-adds of one token through the blocks: Q, K, V, O projections, the
    attention scores and weighted sum over t keys (the full t x t product, as both compute it),
    and the two FFN matrices."""
    return blocks * (4 * dim * dim + 2 * t * dim + 2 * dim * ffn)


def zenrec_profile(windows, n_items: int, steps: int) -> dict[str, object]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from zenrec.models.neural.losses import linear_cross_entropy
    from zenrec.models.neural.nn_seq import SASRecNet

    torch.set_num_threads(1)
    torch.manual_seed(0)
    module = SASRecNet(n_items, 64, 50, 2, 1, 0.2)
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=2e-3)
    seqs = torch.as_tensor(windows)
    perm = torch.randperm(seqs.shape[0], generator=torch.Generator().manual_seed(0))

    def step(i: int) -> None:
        s = seqs[perm[i * 128 : (i + 1) * 128]]  # (B, T+1)
        seq, tgt = s[:, :-1], s[:, 1:]
        valid = (tgt > 0) & (seq > 0)
        opt.zero_grad()
        h = module(seq)  # (B, T, D)
        loss = linear_cross_entropy(h[valid], module.item_weights(), tgt[valid] - 1)
        loss.backward()
        opt.step()

    step(0)
    c0 = time.process_time()
    for i in range(1, steps + 1):
        step(i)
    cpu = (time.process_time() - c0) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(1, steps + 1):
            step(i)
    return {
        "batch_rows": 128,
        "cpu_s_per_step": cpu,
        "self_cpu_by_op": {e.key: e.self_cpu_time_total / 1e6 / steps for e in prof.key_averages()},
        "n_params": sum(p.numel() for p in module.parameters()),
        "top_ops": prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15),
    }


CATEGORIES = {
    "matrix products": ("aten::mm", "aten::bmm", "aten::addmm", "aten::addmm_"),
    "NaN checks of anomaly mode": ("aten::ne", "aten::any"),
    "dropout masks": ("aten::bernoulli_", "aten::uniform_", "aten::ge_"),
}


def by_category(ops: dict[str, float]) -> dict[str, float]:
    """Share of the profiled self CPU time per category of operator (wall-clock based, so
    comparable within one profile only)."""
    total = sum(ops.values())
    out = {k: sum(ops.get(n, 0.0) for n in names) / total for k, names in CATEGORIES.items()}
    out["everything else"] = 1.0 - sum(out.values())
    return {k: round(v, 3) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True, help="a recbole_sasrec.py --state folder")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    state = Path(args.state).resolve()
    dataset = json.loads((state / "rows.json").read_text())["dataset"]
    rb = recbole_counts(state / "data" / "seq", 50)
    zc, (windows, _) = zenrec_counts(dataset, 50)
    n_out = zc["n_items"] + 1
    rb_tok = macs_per_token(64, 256, 2, 50)
    zr_tok = macs_per_token(64, 64, 2, 50)
    rb_fwd = rb["tokens"] * rb_tok + rb["targets"] * 64 * n_out
    zr_fwd = zc["tokens"] * zr_tok + zc["targets"] * 64 * n_out
    arith = {
        "recbole_macs_per_token": rb_tok,
        "zenrec_macs_per_token": zr_tok,
        "output_macs_per_target": 64 * n_out,
        "recbole_forward_macs_per_epoch": rb_fwd,
        "zenrec_forward_macs_per_epoch": zr_fwd,
        "expected_ratio": rb_fwd / zr_fwd,
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    py = os.environ.get("ZENREC_PEER_PYTHON_RECBOLE")
    if not py:
        sys.exit("Set ZENREC_PEER_PYTHON_RECBOLE to RecBole's interpreter (setup_peers.sh).")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"recbole-sasrec-cost-{os.getpid()}"
    (tmp / "seq").mkdir(parents=True)
    for part in ("train", "valid", "test"):
        name = f"seq.{part}.inter"
        (tmp / "seq" / name).write_bytes((state / "data" / "seq" / name).read_bytes())
    proc = subprocess.run(
        [py, "-c", RECBOLE_PART, str(tmp), str(args.steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp,
    )
    rprof = json.loads(proc.stdout.strip().splitlines()[-1])
    zprof = zenrec_profile(windows, zc["n_items"], args.steps)
    rb_steps, zr_steps = math.ceil(rb["rows"] / 2048), math.ceil(zc["rows"] / 128)
    rb_epoch = rb_steps * (rprof["cpu_s_per_step"] + rprof["loader_cpu_s_per_step"])
    rb_epoch_off = rb_steps * (rprof["cpu_s_per_step_anomaly_off"] + rprof["loader_cpu_s_per_step"])
    rprof["share_by_category"] = by_category(rprof.pop("self_cpu_by_op"))
    zprof["share_by_category"] = by_category(zprof.pop("self_cpu_by_op"))
    zr_epoch = zr_steps * zprof["cpu_s_per_step"]
    rec = {
        "dataset": dataset,
        "recbole": {
            **rb,
            "steps_per_epoch": rb_steps,
            "epoch_cpu_s_est": rb_epoch,
            "epoch_cpu_s_est_anomaly_off": rb_epoch_off,
            **rprof,
        },
        "zenrec": {**zc, "steps_per_epoch": zr_steps, "epoch_cpu_s_est": zr_epoch, **zprof},
        "arithmetic": arith,
        "measured_ratio_cpu": rb_epoch / zr_epoch,
        "measured_ratio_cpu_anomaly_off": rb_epoch_off / zr_epoch,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    Path(args.out).write_text(json.dumps(rec, indent=2))
    for k in ("recbole", "zenrec"):
        print(f"== {k}: top ops by self CPU ({args.steps} steps)\n{rec[k]['top_ops']}")
    short = {k: v for k, v in rec.items() if k not in ("recbole", "zenrec")}
    for k in ("recbole", "zenrec"):
        short[k] = {x: y for x, y in rec[k].items() if x != "top_ops"}
    print(json.dumps(short, indent=2))


if __name__ == "__main__":
    main()
