"""Evaluate zenrec.traffic on the real traces under $ZENREC_DATA/traffic.

Writes docs/results/traffic.md and docs/results/traffic.json:
* rolling-origin backtests (MASE, sMAPE, 80/95 % coverage) per model vs seasonal naive;
* surge detection precision / recall / median lead time on the NAB-labelled series.

Usage: ZENREC_DATA=/path/to/data OMP_NUM_THREADS=1 python benchmarks/traffic_eval.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from zenrec.traffic.detect import DetectConfig, detect_anomalies
from zenrec.traffic.forecast import backtest
from zenrec.traffic.plots import atomic_write_text
from zenrec.traffic.series import load_series

ROOT = Path(__file__).resolve().parents[1]
TRACES = [
    # name, relative path, load kwargs, history, horizon, origins, models
    (
        "app_server_hourly",
        "app_server_hourly/app_server_requests_hourly.csv",
        {},
        "14d",
        "48h",
        20,
        ["MSTL", "AutoETS", "AutoARIMA"],
    ),
    (
        "nab_elb_5min",
        "nab/realAWSCloudwatch/elb_request_count_8c0756.csv",
        {},
        "7d",
        "48h",
        3,
        ["MSTL", "AutoETS"],
    ),
    (
        "nab_nyc_taxi_30min",
        "nab/realKnownCause/nyc_taxi.csv",
        {},
        "14d",
        "48h",
        12,
        ["MSTL", "AutoETS"],
    ),
    (
        "wikipedia_daily_log",
        "wikipedia_peyton_manning/example_wp_log_peyton_manning.csv",
        {},
        "365d",
        "7d",
        12,
        ["MSTL", "AutoETS", "AutoARIMA"],
    ),
]


def eval_forecast(data: Path, quick: bool) -> list[dict]:
    out = []
    for name, rel, kw, hist, horizon, origins, models in TRACES:
        s = load_series(data / rel, **kw)
        h = int(pd.Timedelta(horizon).total_seconds() // s.step_seconds)
        inp = int(pd.Timedelta(hist).total_seconds() // s.step_seconds)
        k = max(1, origins // 4) if quick else origins
        span = s.n - inp - h
        step = max(h, span // max(1, k - 1)) if k > 1 else h
        t0 = time.perf_counter()
        bt = backtest(
            s,
            h,
            models=["SeasonalNaive", *models],
            input_size=inp,
            windows=k,
            step=step,
            min_train=inp,
        )
        secs = time.perf_counter() - t0
        print(f"{name}: {len(bt.origins)} origins, chosen {bt.chosen}, {secs:.0f}s", flush=True)
        out.append(
            {
                "trace": name,
                "file": rel,
                "step": s.freq,
                "history": hist,
                "horizon": horizon,
                "origins": len(bt.origins),
                "chosen": bt.chosen,
                "seconds": round(secs, 1),
                "records": bt.records,
            }
        )
    return out


def eval_detection(data: Path, cfg: DetectConfig) -> dict:
    labels = json.loads((data / "nab/labels.json").read_text())
    points = json.loads((data / "nab/labels_points.json").read_text())
    rows, leads = [], []
    n_per = n_tp = n_hit = n_win = 0
    for rel, wins in labels.items():
        freq = "10min" if "TravelTime" in rel else None
        s = load_series(data / "nab" / rel, freq, agg="mean")
        periods, _, _ = detect_anomalies(s, cfg)
        W = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in wins]
        P = [pd.Timestamp(p) for p in points.get(rel, [])]
        span = [(pd.Timestamp(p.start), pd.Timestamp(p.end)) for p in periods]
        tp = sum(any(a <= wb and b >= wa for wa, wb in W) for a, b in span)
        hit = 0
        for wa, wb in W:
            starts = [a for a, b in span if a <= wb and b >= wa]
            if starts:
                hit += 1
                centre = next((p for p in P if wa <= p <= wb), wa + (wb - wa) / 2)
                leads.append((centre - min(starts)).total_seconds() / 3600)
        rows.append(
            {
                "file": rel,
                "periods": len(periods),
                "true_periods": tp,
                "windows": len(W),
                "windows_hit": hit,
            }
        )
        n_per += len(periods)
        n_tp += tp
        n_hit += hit
        n_win += len(W)
    return {
        "config": cfg.model_dump(),
        "files": rows,
        "precision": round(n_tp / max(1, n_per), 3),
        "recall": round(n_hit / n_win, 3),
        "median_lead_h": round(float(np.median(leads)), 2) if leads else None,
    }


def render(res: dict) -> str:
    L = [
        "# Traffic forecasting and surge detection: results",
        "",
        f"Command: `{res['command']}`  ",
        f"Machine: {res['machine']}  ",
        f"Date: {res['date']}",
        "",
        "## Rolling-origin backtests",
        "",
        "MASE is scaled by the in-sample seasonal-naive error of each training window (daily "
        "season; weekly for the daily trace). Horizon `1h` = lead times up to 1 h; the last "
        "horizon row is the full forecast horizon. `chosen` = lowest MASE at the full horizon.",
        "",
    ]
    for tr in res["forecast"]:
        L += [
            f"### {tr['trace']} ({tr['step']} buckets, history {tr['history']}, horizon "
            f"{tr['horizon']}, {tr['origins']} origins; chosen **{tr['chosen']}**)",
            "",
            "| model | horizon | MASE | sMAPE % | cov80 | cov95 | vs SeasonalNaive MASE |",
            "|---|---|---|---|---|---|---|",
        ]
        base = {r["horizon"]: r["mase"] for r in tr["records"] if r["model"] == "SeasonalNaive"}
        for r in tr["records"]:
            rel = (1 - r["mase"] / base[r["horizon"]]) * 100 if base.get(r["horizon"]) else 0
            name = r["model"] + (" (chosen)" if r["chosen"] else "")
            L.append(
                f"| {name} | {r['horizon']} | {r['mase']:.3f} | {r['smape']:.1f} | "
                f"{r['coverage80']:.3f} | {r['coverage95']:.3f} | {rel:+.0f}% |"
            )
        L.append("")
    L += [
        "## Surge / anomaly detection on NAB-labelled series",
        "",
        "A flagged period is a true positive if it overlaps a NAB anomaly window; recall = "
        "windows with at least one overlapping period; lead time = labelled anomaly point "
        "minus start of the first overlapping period (positive = flagged before the point). "
        "Detection runs on the whole file (batch, centred level), so lead time is not a "
        "causal/online figure.",
        "",
    ]
    for d in res["detection"]:
        c = d["config"]
        L.append(
            f"- threshold {c['threshold']}, max_anoms {c['max_anoms']}, merge_gap "
            f"{c['merge_gap']}: precision **{d['precision']}**, recall **{d['recall']}**, "
            f"median lead {d['median_lead_h']} h"
        )
    d0 = res["detection"][0]
    L += [
        "",
        "Per file (default settings):",
        "",
        "| file | periods | true | windows | hit |",
        "|---|---|---|---|---|",
    ]
    for r in d0["files"]:
        L.append(
            f"| {r['file']} | {r['periods']} | {r['true_periods']} | {r['windows']} | "
            f"{r['windows_hit']} |"
        )
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer origins (smoke run)")
    ap.add_argument("--out", default=str(ROOT / "docs/results/traffic.md"))
    args = ap.parse_args()
    root = os.environ.get("ZENREC_DATA")
    if not root or not (Path(root) / "traffic").exists():
        print("ZENREC_DATA must point at the shared data folder (with traffic/)", file=sys.stderr)
        return 2
    data = Path(root) / "traffic"
    res = {
        "command": "python benchmarks/traffic_eval.py" + (" --quick" if args.quick else ""),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    res["detection"] = [eval_detection(data, DetectConfig())] + [
        eval_detection(data, DetectConfig(threshold=t)) for t in (4.0, 6.0)
    ]
    print("detection:", [(d["precision"], d["recall"]) for d in res["detection"]], flush=True)
    res["forecast"] = eval_forecast(data, args.quick)
    out = Path(args.out)
    atomic_write_text(out, render(res))
    atomic_write_text(out.with_suffix(".json"), json.dumps(res, indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
