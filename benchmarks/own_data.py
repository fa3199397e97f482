"""What do the models score on a time-ordered log, over all, warm and cold test users?

Runs ``zenrec.compare`` of every classic top-K model and BPR-MF (default settings) under the
``temporal`` and ``temporal-user`` presets on ml-latest-small and ML-100K, and checks that
Python (``run_protocol``) and the CLI (``zenrec evaluate``) give the same numbers on every
preset. Writes docs/results/own-data.md (and .json beside it).

    ZENREC_DATA=../shared/data .venv/bin/python benchmarks/own_data.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import zenrec
from zenrec._io import atomic_write_text
from zenrec._threads import set_threads
from zenrec.evaluation import PROTOCOLS, run_protocol
from zenrec.reports.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("ml-latest-small", "ml-100k")
PROTOS = ("temporal", "temporal-user")
MODELS = ("pop", "itemknn", "userknn", "ease", "edlae", "rp3beta", "slim", "ials", "bprmf")
# the model each preset's parity check runs (a rating or multi-task preset needs a rating model)
PARITY_MODEL = {
    "surprise-cv5": ("biasedmf", {}),
    "multitask": ("biasedmf", {}),
    "ctr": ("ease", {}),
}


def leaderboards(models: tuple[str, ...]) -> list[dict]:
    rows = []
    for dname in DATASETS:
        ds = zenrec.load_dataset(dname)
        for pname in PROTOS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", zenrec.ColdStartWarning)
                board = zenrec.compare(list(models), pname, dataset=ds, backend="polars")
            for r in board.iter_rows(named=True):
                rows.append({"dataset": dname, "protocol": pname, **r})
            print(board, flush=True)
    return rows


def parity(dataset: str) -> list[dict]:
    """Largest metric difference between run_protocol and `zenrec evaluate`, per preset."""
    ds = zenrec.load_dataset(dataset)
    out = []
    env = {**os.environ, "ZENREC_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        for name in PROTOCOLS:
            model, params = PARITY_MODEL.get(name, ("itemknn", {}))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", zenrec.ColdStartWarning)
                run = run_protocol(lambda m=model, p=params: zenrec.create_model(m, **p), ds, name)
            path = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, "-m", "zenrec", "evaluate", "--dataset", dataset]
            cmd += ["--protocol", name, "--model", model, "--output", str(path)]
            subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            rec = json.loads(path.read_text())
            diffs = [abs(rec["metrics"][k] - v) for k, v in run.metrics.items()]
            for group in ("metrics_warm", "metrics_cold"):
                want = getattr(run, group)
                diffs += [abs(rec[group][k] - v) for k, v in want.items()]
            out.append(
                {"preset": name, "model": model, "metrics": len(diffs), "max_diff": max(diffs)}
            )
            print(out[-1], flush=True)
    return out


def render(rows: list[dict], par: list[dict], command: str, date: str, load: float) -> str:
    lines = [
        "# What do the models score on a time-ordered log, warm and cold users apart?",
        "",
        f"Command: `{command}` ({date}; 2 cores, one thread, load average {load:.1f} at the",
        "end: fit seconds are wall time on a machine that may have been busy, not timings).",
        "Every model at its defaults; NDCG@10 over all test users (the protocol's figure), over",
        "warm users (at least one training interaction) and cold users (none: they get the",
        "popularity list).",
        "",
    ]
    for dname in DATASETS:
        for pname in PROTOS:
            sub = [r for r in rows if r["dataset"] == dname and r["protocol"] == pname]
            if not sub:
                continue
            share = sub[0]["cold_share"]
            lines.append(f"**{dname}, `{pname}`** (cold users: {share:.1%} of test users)")
            lines.append("")
            body = [
                [
                    r["model"],
                    f"{r['ndcg@10']:.4f}",
                    f"{r['ndcg@10 (warm)']:.4f}",
                    "-" if math.isnan(r["ndcg@10 (cold)"]) else f"{r['ndcg@10 (cold)']:.4f}",
                    f"{r['fit_seconds']:.1f}",
                ]
                for r in sub
            ]
            header = ["model", "NDCG@10 all", "warm", "cold", "fit s"]
            lines += [markdown_table(header, body), ""]
    if par:
        lines += [
            "## Do Python and the CLI agree on every preset?",
            "",
            "`run_protocol` against `zenrec evaluate --output` on ML-100K, every metric (all,",
            "warm and cold users): the largest absolute difference per preset.",
            "",
            markdown_table(
                ["preset", "model", "metrics compared", "largest difference"],
                [[p["preset"], p["model"], p["metrics"], f"{p['max_diff']:.1e}"] for p in par],
            ),
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-parity", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "own-data.md"))
    args = ap.parse_args()
    set_threads(args.threads)
    t0 = time.time()
    rows = leaderboards(tuple(args.models.split(",")))
    par = [] if args.no_parity else parity("ml-100k")
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    command = "ZENREC_DATA=../shared/data .venv/bin/python benchmarks/own_data.py --threads 1"
    out = Path(args.out)
    atomic_write_text(out, render(rows, par, command, date, os.getloadavg()[0]))
    payload = {"date": date, "seconds": time.time() - t0, "rows": rows, "parity": par}
    atomic_write_text(out.with_suffix(".json"), json.dumps(payload, indent=2, default=str))
    print(f"wrote {out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
