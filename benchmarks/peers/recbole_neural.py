"""RecBole 1.2.1's BPR and NeuMF next to zenrec's bprmf and neumf on the same fixed split.

Run from the repository root with zenrec's interpreter; RecBole runs with the interpreter that
``ZENREC_PEER_PYTHON_RECBOLE`` names (``benchmarks/peers/setup_peers.sh recbole`` creates it):

    ZENREC_DATA=/work/shared/data .venv/bin/python benchmarks/peers/recbole_neural.py \
        --split-dir /work/shared/data/golden/ml-1m-recbole-split --out benchmarks/out/recbole_neural

Each side runs alone, one after the other (never concurrently), with OMP_NUM_THREADS threads
(default 1). RecBole gets the split as atomic files through zenrec's RecBole runner
(``zenrec.runs.peers.run_peer_script``)
(settings of the golden README: emb 64, batch 4096, 60 epochs for BPR; lr 1e-4 and MLP 32-16-8
for NeuMF); zenrec runs ``zenrec evaluate --split-dir`` with its defaults. The report gives
NDCG@10 / Recall@10, fit seconds, zenrec's seconds to its best epoch, and the ratios.
``--quick`` runs one epoch of everything (to check the script, not to measure).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from zenrec import ConfigError
from zenrec.runs.peers import peer_python, run_peer_script

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [
    (
        "BPR",
        ["epochs=60", "train_batch_size=4096", "embedding_size=64", "stopping_step=10"],
        "bprmf",
        [],
    ),
    (
        "NeuMF",
        [
            "epochs=60",
            "train_batch_size=4096",
            "learning_rate=0.0001",
            "mlp_hidden_size=[32,16,8]",
            "stopping_step=10",
        ],
        "neumf",
        [],
    ),
]


def _value(raw: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _run(cmd: list[str], env: dict[str, str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split-dir", required=True)
    ap.add_argument("--dataset", default="ml-1m", help="zenrec dataset name of the split's source")
    ap.add_argument("--out", default="benchmarks/out/recbole_neural")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="RecBole model names to run (default: BPR NeuMF)")
    ap.add_argument("--skip-recbole", action="store_true", help="reuse RecBole results in --out")
    ap.add_argument("--quick", action="store_true", help="one epoch each: checks the script only")
    args = ap.parse_args()
    if not args.skip_recbole:
        try:
            peer_python("recbole")
        except ConfigError as exc:
            sys.exit(str(exc))
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    threads = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    env = {**os.environ, **threads}
    split = str(Path(args.split_dir).resolve())
    rows = []
    for rb_model, rb_sets, zr_model, zr_sets in PAIRS:
        if args.only and rb_model not in args.only:
            continue
        if args.quick:
            rb_sets = [s for s in rb_sets if not s.startswith("epochs=")] + ["epochs=1"]
            zr_sets = [*zr_sets, "epochs=1"]
        rb_file = out / f"recbole_{rb_model}.json"
        if not args.skip_recbole:
            params = {k: _value(v) for k, v in (kv.split("=", 1) for kv in rb_sets)}
            print("+ RecBole", rb_model, params, flush=True)
            rec = run_peer_script("recbole", rb_model, split, params=params, env=threads)
            rb_file.write_text(json.dumps(rec, indent=2))
        zr_file = out / f"zenrec_{zr_model}.json"
        bundle = out / f"zenrec_{zr_model}_bundle"
        _run(
            [
                sys.executable,
                "-m",
                "zenrec",
                "evaluate",
                "--dataset",
                args.dataset,
                "--protocol",
                "recbole",
                "--model",
                zr_model,
                "--split-dir",
                split,
                "--output",
                str(zr_file),
                "--save-bundle",
                str(bundle),
                *[
                    a
                    for s in [*zr_sets, f"num_threads={args.threads}", "progress=false"]
                    for a in ("--set", s)
                ],
            ],
            env,
        )
        rb = json.loads(rb_file.read_text())
        zr = json.loads(zr_file.read_text())
        state = json.loads((bundle / "bundle.json").read_text()).get("model_state", {})
        row = {
            "pair": f"{rb_model} vs {zr_model}",
            "recbole_ndcg@10": rb["metrics"].get("ndcg@10"),
            "zenrec_ndcg@10": zr["metrics"]["ndcg@10"],
            "recbole_recall@10": rb["metrics"].get("recall@10"),
            "zenrec_recall@10": zr["metrics"]["recall@10"],
            "recbole_fit_s": rb["fit_seconds"],
            "zenrec_fit_s": zr["fit_seconds"],
            "zenrec_s_to_best": state.get("seconds_to_best"),
            "zenrec_best_epoch": state.get("best_epoch"),
        }
        row["ndcg_ratio"] = (
            row["zenrec_ndcg@10"] / row["recbole_ndcg@10"] if row["recbole_ndcg@10"] else None
        )
        row["fit_time_ratio"] = row["zenrec_fit_s"] / row["recbole_fit_s"]
        if row["zenrec_s_to_best"]:
            row["time_to_best_vs_recbole_fit"] = row["zenrec_s_to_best"] / row["recbole_fit_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "summary.json").write_text(
        json.dumps(
            {"threads": args.threads, "quick": args.quick, "split": split, "rows": rows}, indent=2
        )
    )
    print(f"wrote {out / 'summary.json'}")


if __name__ == "__main__":
    main()
