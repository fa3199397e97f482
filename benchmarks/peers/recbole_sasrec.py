"""RecBole 1.2.1's SASRec next to zenrec's sasrec on exactly zenrec's loo-full split.

Run from the repository root with zenrec's interpreter; RecBole runs with the interpreter that
``ZENREC_PEER_PYTHON_RECBOLE`` names (``benchmarks/peers/setup_peers.sh recbole`` creates it):

    .venv/bin/python benchmarks/peers/recbole_sasrec.py \
        --dataset ml-100k --epochs 2 --out /tmp/seqres/recbole-sasrec-ml100k.json

zenrec's loo-full split (filters, leave-one-out by time, ties by file order) is written as
RecBole's pre-augmented sequential benchmark files: every training item with the (up to 50)
training items before it; the validation item with the user's training history; the test item
with training + validation history. RecBole then trains SASRec (CE loss, its defaults: 2 layers,
2 heads, hidden 64, inner 256, dropout 0.5, lr 1e-3, batch 2048) for at most ``--epochs``
epochs, validating every epoch and stopping after ``--stopping-step`` validations without a gain
(RecBole's rule), and scores the test part by full ranking.

A long run: ``--state DIR`` keeps the split, ``epochs.jsonl`` (one line per epoch) and the
training state in DIR (``recbole_sasrec_runner.py``, copied there as ``runner.py``); the same
command, or ``$ZENREC_PEER_PYTHON_RECBOLE DIR/runner.py --state DIR --epochs N`` without the
checkout, resumes where the last finished epoch left off:

    .venv/bin/python benchmarks/peers/recbole_sasrec.py --dataset ml-100k --epochs 300 \
        --state runs/recbole-sasrec-long --out runs/recbole-sasrec-long.json

Note: RecBole's full ranking of
sequential models does not remove the user's history items from the ranking (zenrec's loo-full
does), which can only lower RecBole's figures slightly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from zenrec import ConfigError
from zenrec.data import Dataset
from zenrec.runs.peers import peer_python

RUNNER = Path(__file__).with_name("recbole_sasrec_runner.py")


def write_files(dataset: str | Dataset, d: Path, max_len: int) -> dict[str, int]:
    """Write zenrec's loo-full split of ``dataset`` (a name or a Dataset) as RecBole files."""
    from zenrec.data import load_dataset
    from zenrec.data.sequences import chronological_order
    from zenrec.evaluation.protocols import get_protocol, prepare_dataset

    proto = get_protocol("loo-full")
    raw = load_dataset(dataset) if isinstance(dataset, str) else dataset
    data = prepare_dataset(raw, proto)
    split = proto.splits(data, proto.default_seed)[0]
    (d / "seq").mkdir(parents=True, exist_ok=True)
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
    ap.add_argument("--epochs", type=int, default=2, help="at most this many epochs (RecBole: 300)")
    ap.add_argument(
        "--stopping-step", type=int, default=10, help="RecBole's early-stopping patience"
    )
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--state",
        help="run folder that keeps the split, per-epoch log and checkpoints; a second call with "
        "the same folder resumes (default: a new temporary folder)",
    )
    ap.add_argument(
        "--session-epochs", type=int, default=0, help="stop after this many epochs (0: no limit)"
    )
    ap.add_argument("--out", help="also write the final result JSON here")
    args = ap.parse_args()
    try:
        recbole_python = peer_python("recbole")
    except ConfigError as exc:
        sys.exit(str(exc))
    state = Path(args.state or tempfile.mkdtemp(prefix="recbole-sasrec-")).resolve()
    state.mkdir(parents=True, exist_ok=True)
    rows_file = state / "rows.json"
    if not rows_file.exists():
        counts = write_files(args.dataset, state / "data", args.max_len)
        rows_file.write_text(json.dumps({"dataset": args.dataset, "rows": counts}))
    meta = json.loads(rows_file.read_text())
    if meta["dataset"] != args.dataset:
        sys.exit(
            f"{state} holds a run on {meta['dataset']}, not {args.dataset}; use a new --state."
        )
    shutil.copyfile(RUNNER, state / "runner.py")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
    }
    cmd = [str(recbole_python), str(state / "runner.py"), "--state", str(state)]
    cmd += ["--epochs", str(args.epochs), "--stopping-step", str(args.stopping_step)]
    cmd += ["--max-len", str(args.max_len), "--threads", str(args.threads)]
    cmd += ["--session-epochs", str(args.session_epochs)]
    rc = subprocess.run(cmd, env=env, cwd=state).returncode
    if rc:
        sys.exit(f"RecBole's runner stopped with exit status {rc} (its message is above).")
    result = state / "result.json"
    if not result.exists():
        print(f"not finished; resume with the same command and --state {state}")
        return
    rec = json.loads(result.read_text())
    rec.update(dataset=args.dataset, split="zenrec loo-full", rows=meta["rows"])
    if args.out:
        Path(args.out).write_text(json.dumps(rec, indent=2))
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
