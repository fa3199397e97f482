"""Test metrics of an unfinished SASRec run: the best weights of its latest checkpoint.

For a ``zenrec train ... --model sasrec --output DIR`` run stopped before its last epoch (the
deadline of a shared machine): rebuild the model on the same protocol split, load the
checkpoint's best-so-far weights (``best.*``, the weights early stopping would restore), and
score the test part under loo-full and loo-uni100.

    .venv/bin/python benchmarks/sasrec_checkpoint_eval.py DATASET DIR/checkpoints OUT.json
"""

from __future__ import annotations

import glob
import json
import sys

import torch
from safetensors.numpy import load_file

from zenrec.data import load_dataset
from zenrec.evaluation.protocols import get_protocol, prepare_dataset
from zenrec.models.neural.features import build_feature_encoder
from zenrec.models.neural.trainer import resolve_device
from zenrec.models.registry import create_model


def main() -> None:
    name, ckdir, out = sys.argv[1:4]
    with open(f"{ckdir}/checkpoint.json") as fh:
        meta = json.load(fh)
    state = load_file(sorted(glob.glob(f"{ckdir}/state-*.safetensors"))[-1])
    cfg = dict(meta["config"])
    full = get_protocol("loo-full")
    data = prepare_dataset(load_dataset(name), full)
    split = full.splits(data, full.default_seed)[0]
    m = create_model("sasrec", **cfg)
    train = split.train
    # what Recommender.fit sets before training, then the trained weights instead of training
    m.user_vocab, m.item_vocab, m.seen_ = train.user_vocab, train.item_vocab, train.csr()
    m.item_popularity_ = m.seen_.sum(axis=0).A1.astype("float32")
    m.device_ = resolve_device("cpu")
    m.encoder_ = build_feature_encoder(train)
    module = m._new_module()
    module.load_state_dict(
        {k[5:]: torch.as_tensor(v) for k, v in state.items() if k.startswith("best.")}
    )
    m.module_ = module.eval()
    m._after_fit(train, split.valid)  # histories from train + valid, as after a finished fit
    res = {
        "dataset": name,
        "checkpoint_epoch": meta["epoch"],
        "best_epoch": meta["best_epoch"],
        "best_valid": meta["best_score"],
        "seconds_to_best": meta["seconds_to_best"],
        "history": meta["history"],
    }
    for p in ("loo-full", "loo-uni100"):
        proto = get_protocol(p)
        res[p] = proto.evaluate(m, split, "test", seed=proto.default_seed).metrics
    with open(out, "w") as fh:
        json.dump(res, fh, indent=2)
    print(json.dumps({k: v for k, v in res.items() if k != "history"}))


if __name__ == "__main__":
    main()
