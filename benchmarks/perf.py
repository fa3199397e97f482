"""zenrec's performance suite: one command, every figure beside its peer and the hardware limit.

Sections (``--only`` picks some; results merge into docs/results/perf.json, and
docs/results/perf.md is re-rendered from the merged file, so sections can be re-run alone):

* ``yardstick``: this machine's sustained float32 GEMM rate (numpy, 4096^2) and memory
  bandwidth (numpy copy of 512 MiB), with the thread count used.
* ``ease``: EASE on ML-1M, zenrec's ``recbole`` preset (seed 2020): fit and full-ranking eval
  seconds (median of ``--repeats``), NDCG@10; the same on RecBole's golden split beside
  RecBole 1.2.1's EASE (zenrec's RecBole runner, ``zenrec.runs.peers``) in the same run;
  the Gram product, the Cholesky inverse and the scoring product as a fraction of the GEMM
  rate.
* ``cold``: the first full-ranking evaluation in a fresh process (what ``zenrec evaluate``
  does) against the second one, ML-1M, EASE and iALS.
* ``neural``: BPR-MF and the two-tower at their defaults on ML-1M ``recbole`` as
  ``zenrec evaluate`` runs them: whole fit incl. early stopping, NDCG@10, training
  interactions/s, share of the fit spent validating. ``--peers`` adds RecBole's BPR.

The sections run one after the other in one process. RecBole runs with the interpreter that
``ZENREC_PEER_PYTHON_RECBOLE`` names (``make bench`` sets it); without it the peer rows are left
out with the reason.

Usage (``make bench`` runs all sections with the peers):
    ZENREC_DATA=../shared/data .venv/bin/python benchmarks/perf.py [--only ease cold] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    DATA,
    RESULTS,
    ROOT,
    machine,
    median,
    peer_record,
    run_json,
    write_json,
    write_text,
)

SECTIONS = ("yardstick", "ease", "ease_peer", "cold", "neural")
CMD = "ZENREC_DATA=../shared/data .venv/bin/python benchmarks/perf.py"


def _timed(fn: Any, repeats: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return median(times), times, out


# ---------------------------------------------------------------------- yardstick
def yardstick(repeats: int) -> dict[str, Any]:
    """Sustained float32 GEMM rate and memory bandwidth (copy) on all configured threads."""
    import numpy as np

    from zenrec._threads import configured_threads

    rng = np.random.default_rng(0)
    n = 4096
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)  # warm-up: thread pool start, page faults
    t, times, _ = _timed(lambda: np.matmul(a, b, out=c), max(3, repeats))
    gflops = 2 * n**3 / t / 1e9
    src = np.ones(128 * 2**20, dtype=np.float32)  # 512 MiB
    dst = np.empty_like(src)
    np.copyto(dst, src)
    tb, _, _ = _timed(lambda: np.copyto(dst, src), max(3, repeats))
    gbs = 2 * src.nbytes / tb / 1e9  # read + write
    return {
        "sgemm_gflops": gflops,
        "sgemm_seconds": times,
        "bandwidth_gbs": gbs,
        "threads": configured_threads(),
        "command": f"{CMD} --only yardstick",
    }


# ---------------------------------------------------------------------- EASE
def _ease_phases(train: Any, l2: float, repeats: int) -> dict[str, float]:
    """Seconds of the Gram product and the Cholesky inverse, and their flop rates."""
    import numpy as np

    from zenrec.models.classic.ease import gram, spd_inverse
    from zenrec.models.registry import create_model

    x = create_model("pop").fit(train).seen_  # the binary user x item matrix EASE uses
    assert x is not None
    t_gram, _, g = _timed(lambda: gram(x, np.float32), repeats)
    g[np.diag_indices_from(g)] += l2

    def inv() -> Any:
        return spd_inverse(np.asfortranarray(g.copy()))

    t_inv, _, _ = _timed(inv, repeats)
    n = g.shape[0]
    row_nnz = np.diff(x.indptr).astype(np.float64)
    return {
        "gram_seconds": t_gram,
        "gram_useful_flops": float(2 * (row_nnz**2).sum()),  # multiply-adds the sparse product does
        "gram_dense_equiv_flops": float(2 * x.shape[0] * n * n),
        "inverse_seconds": t_inv,
        "inverse_flops": float(n**3),  # potrf n^3/3 + potri 2n^3/3
        "n_items": n,
        "nnz": int(x.nnz),
    }


def ease(repeats: int) -> dict[str, Any]:
    from zenrec.data import load_dataset
    from zenrec.evaluation import evaluate_ranking, get_protocol, prepare_dataset
    from zenrec.models.registry import create_model
    from zenrec.runs.evaluate import evaluate_model

    ds = load_dataset("ml-1m")
    p = get_protocol("recbole")
    golden = DATA / "golden" / "ml-1m-recbole-split"
    out: dict[str, Any] = {"command": f"{CMD} --only ease --repeats {repeats}"}
    for setting, split_dir in (("preset", None), ("golden", golden)):
        recs = [evaluate_model(ds, p, "ease", {}, split_dir=split_dir)[0] for _ in range(repeats)]
        row = {
            "ndcg@10": recs[0].metrics["ndcg@10"],
            "fit_seconds": median([r.fit_seconds for r in recs]),
            "eval_seconds": median([r.eval_seconds for r in recs]),
            "fit_all": [r.fit_seconds for r in recs],
            "eval_all": [r.eval_seconds for r in recs],
            "n_users_evaluated": recs[0].n_users_evaluated,
        }
        row["total_seconds"] = row["fit_seconds"] + row["eval_seconds"]
        out[setting] = row
    # phases on the preset's training part
    d = prepare_dataset(ds, p)
    split = p.splits(d, p.default_seed)[0]
    out["phases"] = _ease_phases(split.train, 250.0, repeats)
    m = create_model("ease").fit(split.train)
    test_users = m.user_vocab.encode(split.test.user_vocab.decode(split.test.users))
    import numpy as np

    users = np.unique(test_users[test_users >= 0])
    t_score, _, _ = _timed(lambda: m.score_indices(users), repeats)
    x = m.seen_[users]
    out["phases"].update(
        {
            "score_seconds": t_score,
            "score_flops": float(2 * x.nnz * m.n_items),
            "score_bytes": float(users.size * m.n_items * 4),
            "eval_seconds_direct": _timed(
                lambda: evaluate_ranking(
                    m, split.test, [split.train, split.valid], ks=p.ks, metrics=p.metrics
                ),
                repeats,
            )[0],
        }
    )
    return out


def ease_peer(repeats: int) -> dict[str, Any]:
    """RecBole 1.2.1's EASE on the golden split (its own venv), same thread count."""
    golden = DATA / "golden" / "ml-1m-recbole-split"
    rb = _recbole("EASE", golden, repeats) if golden.exists() else None
    if rb is None:
        return {
            "command": f"{CMD} --only ease_peer",
            "missing": "RecBole (ZENREC_PEER_PYTHON_RECBOLE) or the golden split",
        }
    rb["total_seconds"] = rb["fit_seconds"] + rb["eval_seconds"]
    rb["command"] = f"{CMD} --only ease_peer --repeats {repeats}"
    return rb


def _recbole(model: str, split_dir: Path, repeats: int) -> dict[str, Any] | None:
    from zenrec._threads import configured_threads

    n = str(configured_threads())
    env = {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}
    recs = [peer_record("recbole", model, split_dir, env=env) for _ in range(repeats)]
    if not all(recs):
        return None
    return {
        "ndcg@10": recs[0]["metrics"].get("ndcg@10"),
        "fit_seconds": median([r["fit_seconds"] for r in recs]),
        "eval_seconds": median([r["eval_seconds"] for r in recs]),
        "fit_all": [r["fit_seconds"] for r in recs],
        "eval_all": [r["eval_seconds"] for r in recs],
        "threads": recs[0].get("torch_threads"),
    }


# ---------------------------------------------------------------------- cold evaluation
_COLD = r"""
import json, sys, time
t_start = time.perf_counter()
from zenrec._threads import set_threads
set_threads()
from zenrec.data import load_dataset
from zenrec.evaluation import evaluate_ranking, get_protocol, prepare_dataset
from zenrec.models import create_model
t_import = time.perf_counter() - t_start
p = get_protocol("recbole")
d = prepare_dataset(load_dataset("ml-1m"), p)
s = p.splits(d, p.default_seed)[0]
m = create_model(sys.argv[1]).fit(s.train)
times = []
for _ in range(4):
    t0 = time.perf_counter()
    evaluate_ranking(m, s.test, [s.train, s.valid], ks=p.ks, metrics=p.metrics)
    times.append(time.perf_counter() - t0)
print(json.dumps({"import_seconds": t_import, "cold": times[0], "warm": sorted(times[1:])[1]}))
"""


def cold(repeats: int) -> dict[str, Any]:
    """First evaluation in a fresh process against the warm median, ML-1M recbole preset."""
    out: dict[str, Any] = {"command": f"{CMD} --only cold --repeats {repeats}"}
    for model in ("ease", "ials"):
        runs = [run_json([sys.executable, "-c", _COLD, model]) for _ in range(repeats)]
        out[model] = {
            "cold_seconds": median([r["cold"] for r in runs]),
            "warm_seconds": median([r["warm"] for r in runs]),
            "import_seconds": median([r["import_seconds"] for r in runs]),
            "cold_all": [r["cold"] for r in runs],
        }
        out[model]["ratio"] = out[model]["cold_seconds"] / out[model]["warm_seconds"]
    # the CLI as a user runs it: one process, load + split + fit + one evaluation
    zen = str(Path(sys.executable).with_name("zenrec"))
    walls, evals = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run(
                [
                    zen,
                    "evaluate",
                    "--dataset",
                    "ml-1m",
                    "--protocol",
                    "recbole",
                    "--model",
                    "ease",
                    "--output",
                    f"{tmp}/r.json",
                ],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
            walls.append(time.perf_counter() - t0)
            evals.append(json.loads(Path(f"{tmp}/r.json").read_text())["eval_seconds"])
    out["cli_ease"] = {
        "wall_seconds": median(walls),
        "eval_seconds": median(evals),
        "command": "zenrec evaluate --dataset ml-1m --protocol recbole --model ease",
    }
    return out


# ---------------------------------------------------------------------- neural defaults
def neural(repeats: int, peers: bool, models: list[str]) -> dict[str, Any]:
    """Each model's default fit as a user meets it: one ``zenrec evaluate`` process (cold, default
    settings and threads, early stopping included), read back from its ``--output`` record."""
    out: dict[str, Any] = {
        "command": f"{CMD} --only neural --neural-models {' '.join(models)}"
        + (" --peers" if peers else "")
    }
    zen = str(Path(sys.executable).with_name("zenrec"))
    for model in models:
        cmd = [
            "zenrec",
            "evaluate",
            "--dataset",
            "ml-1m",
            "--protocol",
            "recbole",
            "--model",
            model,
        ]
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run(
                [zen, *cmd[1:], "--output", f"{tmp}/r.json"],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
            wall = time.perf_counter() - t0
            rec = json.loads(Path(f"{tmp}/r.json").read_text())
        hist = rec.get("history") or []
        train_s = sum(h.get("train_seconds", 0.0) for h in hist)
        valid_s = sum(h.get("valid_seconds", 0.0) for h in hist)
        best = [h for h in hist if "valid_ndcg@10" in h]
        best_epoch = max(best, key=lambda h: h["valid_ndcg@10"])["epoch"] if best else None
        n_rows = int(rec["split"]["sizes"][0][0])  # training interactions of the first fold
        out[model] = {
            "ndcg@10": rec["metrics"]["ndcg@10"],
            "fit_seconds": rec["fit_seconds"],
            "eval_seconds": rec["eval_seconds"],
            "wall_seconds": wall,
            "epochs_run": len(hist),
            "best_epoch": best_epoch,
            "train_seconds": train_s,
            "valid_seconds": valid_s,
            "interactions_per_second": n_rows * len(hist) / train_s if train_s else None,
            "command": " ".join(cmd),
        }
    golden = DATA / "golden" / "ml-1m-recbole-split"
    if peers and golden.exists() and "bprmf" in models:
        rb = _recbole("BPR", golden, 1)
        if rb is not None:
            out["recbole_bpr_golden"] = rb
    return out


# ---------------------------------------------------------------------- report
def _f(x: Any, fmt: str = ".2f") -> str:
    return "—" if x is None else format(x, fmt)


def render(res: dict[str, Any]) -> str:
    m = res.get("machine", {})
    y = res.get("yardstick", {})
    lines = [
        "# How fast is zenrec, against RecBole and against this machine's limits?",
        "",
        f"Machine: {m.get('cpu_count')} cores, {m.get('platform')}, Python {m.get('python')}, "
        f"BLAS {', '.join(m.get('blas', []))}; threads: zenrec's policy (all cores) unless noted.",
        f"**{res.get('note', '')}**",
        "",
        f"Re-run everything: `make bench` (`{CMD} --peers`, its sections one after the "
        "other); each section alone with the command beside it. Times are medians of the "
        "repeats shown; each section's date is in the table below.",
        "",
        "| section | measured | 1-min load average at its start (2 cores) |",
        "|---|---|---|",
        *[
            f"| {k} | {res[k].get('measured', '—')} | {_f(res[k].get('load_average_at_start'))} |"
            for k in SECTIONS
            if isinstance(res.get(k), dict)
        ],
        "",
    ]
    if y:
        lines += [
            "## The yardstick",
            "",
            "| what | value | threads | command |",
            "|---|---|---|---|",
            f"| float32 GEMM (4096^2, numpy) | {y['sgemm_gflops']:.1f} GFLOP/s | {y['threads']} "
            f"| `{y['command']}` |",
            f"| memory bandwidth (copy 512 MiB, read+write) | {y['bandwidth_gbs']:.1f} GB/s "
            f"| {y['threads']} | `{y['command']}` |",
            "",
        ]
    e = res.get("ease")
    if e:
        pre, gol = e["preset"], e["golden"]
        rb = res.get("ease_peer") if "fit_seconds" in res.get("ease_peer", {}) else None
        lines += [
            "## EASE, ML-1M",
            "",
            f"Command: `{e['command']}`" + (f"; RecBole: `{rb['command']}`" if rb else ""),
            "",
            "| setting | library | NDCG@10 | fit s | eval s | fit + eval s | ratio to RecBole |",
            "|---|---|---|---|---|---|---|",
            f"| zenrec `recbole` preset, seed 2020 | zenrec | {pre['ndcg@10']:.4f} "
            f"| {pre['fit_seconds']:.3f} | {pre['eval_seconds']:.3f} "
            f"| {pre['total_seconds']:.3f} | |",
        ]
        ratio = f"{gol['total_seconds'] / rb['total_seconds']:.3f}" if rb else "—"
        lines.append(
            f"| RecBole golden split | zenrec | {gol['ndcg@10']:.4f} | {gol['fit_seconds']:.3f} "
            f"| {gol['eval_seconds']:.3f} | {gol['total_seconds']:.3f} | {ratio} |"
        )
        if rb:
            lines.append(
                f"| RecBole golden split | RecBole 1.2.1 ({rb.get('threads')} threads) "
                f"| {_f(rb['ndcg@10'], '.4f')} | {rb['fit_seconds']:.3f} "
                f"| {rb['eval_seconds']:.3f} | {rb['total_seconds']:.3f} | 1 |"
            )
        ph = e.get("phases", {})
        if ph and y:
            peak = y["sgemm_gflops"] * 1e9
            g_use, g_dense, g_s = (
                ph["gram_useful_flops"],
                ph["gram_dense_equiv_flops"],
                ph["gram_seconds"],
            )
            inv, inv_s = ph["inverse_flops"], ph["inverse_seconds"]
            sc, sc_bytes, sc_s = ph["score_flops"], ph["score_bytes"], ph["score_seconds"]
            ev_s = ph["eval_seconds_direct"]
            lines += [
                "",
                "Where EASE's time goes (preset split), against the yardstick:",
                "",
                "| phase | seconds | work | rate | fraction of GEMM peak / bandwidth |",
                "|---|---|---|---|---|",
                f"| Gram X^T X (sparse products in column blocks) | {g_s:.3f} "
                f"| {g_use / 1e9:.2f} GFLOP useful ({g_dense / 1e9:.0f} as a dense product) "
                f"| {g_use / g_s / 1e9:.1f} GFLOP/s useful "
                f"| the dense product at the GEMM peak would take {g_dense / peak:.2f} s "
                f"({g_dense / peak / g_s:.1f}x this) |",
                f"| Cholesky inverse (float32 potrf + potri, n = {ph['n_items']}) | {inv_s:.3f} "
                f"| {inv / 1e9:.1f} GFLOP | {inv / inv_s / 1e9:.1f} GFLOP/s "
                f"| {inv / inv_s / peak:.2f} |",
                f"| scoring X_u B (sparse x dense, test users) | {sc_s:.3f} "
                f"| {sc / 1e9:.2f} GFLOP, {sc_bytes / 1e9:.2f} GB of scores "
                f"| {sc / sc_s / 1e9:.1f} GFLOP/s | {sc / sc_s / peak:.2f} of GEMM; "
                f"{sc_bytes / sc_s / 1e9 / y['bandwidth_gbs']:.2f} of bandwidth |",
                "| full-ranking evaluation (scoring, masking, top-K, 5 metrics x 3 K) "
                f"| {ev_s:.3f} | | | scoring is {sc_s / ev_s:.0%} of it |",
                "",
            ]
    c = res.get("cold")
    if c:
        lines += [
            "## Cold evaluation (first evaluation in a process), ML-1M `recbole`",
            "",
            f"Command: `{c['command']}`",
            "",
            "| model | cold s | warm s | cold / warm | zenrec imports s |",
            "|---|---|---|---|---|",
        ]
        for model in ("ease", "ials"):
            r = c.get(model)
            if r:
                lines.append(
                    f"| {model} | {r['cold_seconds']:.3f} | {r['warm_seconds']:.3f} "
                    f"| {r['ratio']:.2f} | {r['import_seconds']:.2f} |"
                )
        cli = c.get("cli_ease")
        if cli:
            lines += [
                "",
                f"`{cli['command']}` as a user runs it: whole command {cli['wall_seconds']:.2f} s "
                "wall (start-up, load, split, fit, evaluate, write), "
                f"its evaluation {cli['eval_seconds']:.3f} s.",
                "",
            ]
    n = res.get("neural")
    if n:
        lines += [
            "## Neural defaults, ML-1M `recbole` (as `zenrec evaluate` runs them)",
            "",
            f"Command: `{n['command']}`",
            "",
            "| command (default settings) | NDCG@10 | whole fit s (incl. early stopping) "
            "| epochs (best) | training interactions/s | validation share of fit | measured |",
            "|---|---|---|---|---|---|---|",
        ]
        for model, r in n.items():
            if isinstance(r, dict) and "epochs_run" in r:
                share = r["valid_seconds"] / r["fit_seconds"] if r["fit_seconds"] else None
                lines.append(
                    f"| `{r.get('command', model)}` | {r['ndcg@10']:.4f} | {r['fit_seconds']:.1f} "
                    f"| {r['epochs_run']} ({r['best_epoch']}) "
                    f"| {_f(r['interactions_per_second'], ',.0f')} | {_f(share, '.0%')} "
                    f"| {r.get('measured', n.get('measured', '—'))} |"
                )
        rb = n.get("recbole_bpr_golden")
        if rb:
            lines += [
                "",
                f"RecBole 1.2.1 BPR (its defaults) on the golden split, run by `--peers`: NDCG@10 "
                f"{_f(rb['ndcg@10'], '.4f')}, fit {rb['fit_seconds']:.1f} s "
                f"({rb.get('threads')} threads).",
            ]
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peers", action="store_true", help="run RecBole beside zenrec (its own venv)")
    ap.add_argument("--neural-models", nargs="+", default=["bprmf", "twotower"])
    ap.add_argument("--threads", type=int, default=0, help="threads for every pool (0: all cores)")
    ap.add_argument(
        "--note",
        default="One run of the suite; each section records the machine's "
        "load average when it started.",
    )
    args = ap.parse_args()
    from zenrec._threads import set_threads

    set_threads(args.threads or None)
    import numpy  # noqa: F401  (loads BLAS, so the machine record lists its pools)

    path = RESULTS / "perf.json"
    res: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    res["machine"], res["note"] = machine(), args.note
    for name in args.only:
        t0 = time.perf_counter()
        load = os.getloadavg()[0]
        if name == "yardstick":
            res[name] = yardstick(args.repeats)
        elif name == "ease":
            res[name] = ease(args.repeats)
        elif name == "ease_peer":
            res[name] = ease_peer(args.repeats)
        elif name == "cold":
            res[name] = cold(args.repeats)
        else:  # models not re-run keep their earlier rows (each row carries its date)
            old = res.get(name, {})
            new = neural(args.repeats, args.peers, args.neural_models)
            for v in new.values():
                if isinstance(v, dict):
                    v["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            res[name] = {**old, **new}
        res[name]["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        res[name]["load_average_at_start"] = load
        print(f"{name}: {time.perf_counter() - t0:.1f} s", json.dumps(res[name], default=str)[:600])
        write_json(path, res)
        write_text(RESULTS / "perf.md", render(res))
    print(f"wrote {RESULTS / 'perf.md'}")


if __name__ == "__main__":
    main()
