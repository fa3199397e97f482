"""Planted-structure check of GMF and BPR-MF on CUDA vs CPU, by precision and seed.

Usage: python benchmarks/gpu_planted.py   (prints one JSON line per run)
"""

from __future__ import annotations

import json

import numpy as np
import torch

from zenrec.models import create_model
from zenrec.testing import planted_blocks

FAST = {"batch_size": 64, "weight_decay": 1e-3, "progress": False, "num_threads": 1}


def main() -> None:
    p = planted_blocks()
    users = list(p.withheld)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for name, kw in [
        ("gmf", {"factors": 4, "epochs": 40, "lr": 0.05}),
        ("bprmf", {"factors": 8, "epochs": 40}),
    ]:
        for device in devices:
            for precision in ["fp32"] if device == "cpu" else ["fp32", "bf16"]:
                for seed in range(3):
                    m = create_model(
                        name, **FAST, **kw, seed=seed, device=device, precision=precision
                    ).fit(p.train)
                    r = m.recommend(users, k=1)
                    rate = float(
                        np.mean([r.item_lists[j][0] == p.withheld[u] for j, u in enumerate(users)])
                    )
                    print(
                        json.dumps(
                            {
                                "model": name,
                                "device": device,
                                "precision": precision,
                                "seed": seed,
                                "planted_hit_rate": round(rate, 3),
                            }
                        ),
                        flush=True,
                    )


if __name__ == "__main__":
    main()
