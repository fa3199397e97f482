"""Evaluate zenrec.traffic on the real traces under $ZENREC_DATA/traffic.

Writes docs/results/traffic.md and docs/results/traffic.json:
* rolling-origin backtests (MASE, sMAPE, 80/95 % coverage) of every model and the baselines at
  every lead-time block, with the MASE ratio to the best baseline, and the per-lead-block
  combination; with and without the event calendar where a trace has one;
* the same with conformally calibrated intervals (calibrated on earlier origins only);
* surge detection on the NAB-labelled series: NAB window scoring, batch and online (causal)
  modes, settings chosen leave-one-file-out, lead times in minutes and false alarms per day;
* autoscaling replays (hpa / predictive / hybrid) of every trace at warm-up 2, 5, 10 min, and
  hybrid with / without the event calendar.

Sections run separately with ``--only forecast,detect,simulate,timing`` (results of the others
are kept from the existing JSON); run ``--only timing`` alone under
``flock /tmp/zenrec-bench.lock``. Speed: ``python benchmarks/traffic_speed.py > speed.txt`` then
``--speed speed.txt``.

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

from zenrec._io import atomic_write_text
from zenrec.traffic.backtest import backtest
from zenrec.traffic.detect import (
    DetectConfig,
    detect_anomalies,
    online_scores,
    periods_from_scores,
)
from zenrec.traffic.events import load_events
from zenrec.traffic.readers import load_series
from zenrec.traffic.series import TrafficSeries, series_from_values
from zenrec.traffic.simulate import SimulateConfig, simulate

ROOT = Path(__file__).resolve().parents[1]
ALL = ["SeasonalProfile", "MSTL", "AutoETS", "AutoARIMA", "AutoTheta", "AutoCES"]
TRACES = [
    # name, file, history, horizon, origins, models, events file, value transform, replay span
    (
        "app_server_hourly",
        "app_server_hourly/app_server_requests_hourly.csv",
        "14d",
        "48h",
        12,
        ALL,
        None,
        None,
        "28d",
    ),
    (
        "nab_elb_5min",
        "nab/realAWSCloudwatch/elb_request_count_8c0756.csv",
        "7d",
        "48h",
        3,
        ALL,
        None,
        None,
        "13d",
    ),
    (
        "nab_nyc_taxi_30min",
        "nab/realKnownCause/nyc_taxi.csv",
        "14d",
        "48h",
        12,
        ALL,
        "nab/realKnownCause/nyc_taxi_events.csv",
        None,
        "92d",
    ),
    (
        "wikipedia_daily",
        "wikipedia_peyton_manning/example_wp_log_peyton_manning.csv",
        "365d",
        "7d",
        12,
        ALL,
        "wikipedia_peyton_manning/events.csv",
        "exp",
        "60d",
    ),
]


def load_trace(data: Path, rel: str, transform: str | None):
    s = load_series(data / rel)
    if transform == "exp":  # the Wikipedia file holds log pageviews
        s = TrafficSeries(s.index, np.exp(s.values), s.step_seconds, s.report)
    return s


def _backtest(s, hist: str, horizon: str, origins: int, models: list[str], quick: bool, events):
    h = int(pd.Timedelta(horizon).total_seconds() // s.step_seconds)
    inp = int(pd.Timedelta(hist).total_seconds() // s.step_seconds)
    k = max(2, origins // 4) if quick else origins
    span = s.n - inp - h
    step = max(h, span // max(1, k - 1)) if k > 1 else h
    return backtest(
        s, h, models=models, input_size=inp, windows=k, step=step, min_train=inp, events=events
    )


def eval_forecast(data: Path, quick: bool, names: set[str] | None = None) -> list[dict]:
    out = []
    for name, rel, hist, horizon, origins, models, ev, transform, _ in TRACES:
        if names and name not in names:
            continue
        s = load_trace(data, rel, transform)
        t0 = time.perf_counter()
        bt = _backtest(s, hist, horizon, origins, models, quick, None)
        secs = time.perf_counter() - t0
        print(f"{name}: {len(bt.origins)} origins, chosen {bt.chosen}, {secs:.0f}s", flush=True)
        row = {
            "trace": name,
            "file": rel,
            "step": s.freq,
            "history": hist,
            "horizon": horizon,
            "origins": len(bt.origins),
            "chosen": bt.chosen,
            "block_models": bt.block_models,
            "seconds": round(secs, 1),
            "records": bt.records,
        }
        if ev:
            cal = load_events(data / ev)
            bte = _backtest(s, hist, horizon, origins, models, quick, cal)
            row["events_file"] = ev
            row["with_events"] = {"chosen": bte.chosen, "records": bte.records}
            print(f"{name} with events: chosen {bte.chosen}", flush=True)
        out.append(row)
    return out


def eval_event_plans(data: Path) -> list[dict]:
    """Forecast from the midnight before each scheduled event (2 days ahead), with and without
    the calendar: does the 80 % upper bound reach the event's actual peak?"""
    from zenrec.traffic.forecast import ForecastConfig, forecast_series

    rows = []
    for name, rel, hist, _, _, _, ev, transform, _ in TRACES:
        if not ev:
            continue
        s = load_trace(data, rel, transform)
        cal = load_events(data / ev)
        cfg = ForecastConfig(
            horizon="2d", history=hist, models=["SeasonalProfile", "AutoETS"], windows=3
        )
        for occ_name, a, b in cal.spans(s.index):
            day = pd.Timestamp(s.index[a]).normalize()
            origin = int(np.searchsorted(s.index.asi8, day.value))
            if origin < int(pd.Timedelta(hist).total_seconds() / s.step_seconds) + 2:
                continue
            past = s.slice(0, origin)
            actual = s.values[a:b]
            out = {"trace": name, "event": occ_name, "start": str(s.index[a])}
            for label, c in (("without", None), ("with", cal)):
                res = forecast_series(past, cfg, events=c)
                f = res.frame.set_index("ts")
                sel = f.loc[s.index[a] : s.index[b - 1]]
                out[label] = {
                    "peak_hi80_over_actual": round(
                        float(sel["hi80"].max()) / float(np.nanmax(actual)), 3
                    ),
                    "mean_over_actual": round(
                        float(sel["mean"].mean()) / float(np.nanmean(actual)), 3
                    ),
                    "uplift": res.events[0]["uplift"] if res.events else None,
                }
            rows.append(out)
            print(out, flush=True)
    return rows


WARMUPS = ("2min", "5min", "10min")


def eval_simulate(data: Path, quick: bool, names: set[str] | None = None) -> dict:
    """Replay every trace (1-min grid) at three warm-ups; capacity: the peak needs 15 replicas
    at the target utilisation."""
    rows = []
    for name, rel, _, _, _, _, ev, transform, last in TRACES:
        if names and name not in names:
            continue
        s = load_trace(data, rel, transform)
        keep = int(pd.Timedelta(last).total_seconds() / s.step_seconds) + int(
            400 * 86400 / s.step_seconds
        )
        s = s.slice(max(0, s.n - keep), s.n)
        span = "3d" if quick else last
        tail = s.slice(s.n - int(pd.Timedelta(span).total_seconds() / s.step_seconds), s.n)
        peak = float(np.nanmax(tail.values)) / s.step_seconds
        cap = peak / (15 * 0.7)
        cal = load_events(data / ev) if ev else None
        for warm in WARMUPS:
            cfg = SimulateConfig(capacity_rps=cap, warmup=warm)
            res = simulate(s, cfg, freq="1min", last=span)
            row = {
                "trace": name,
                "warmup": warm,
                "capacity_rps": round(cap, 4),
                "span": span,
                "buckets": len(res.demand_rps),
                "refits": res.refits,
                "policies": res.scores,
            }
            cfg_80 = SimulateConfig(
                capacity_rps=cap, warmup=warm, policies=["hybrid"], hybrid_bound="hi80"
            )
            row["hybrid_hi80"] = simulate(s, cfg_80, freq="1min", last=span).scores["hybrid"]
            if cal is not None:
                cfg_h = SimulateConfig(capacity_rps=cap, warmup=warm, policies=["hybrid"])
                res_e = simulate(s, cfg_h, freq="1min", last=span, events=cal)
                row["hybrid_with_events"] = res_e.scores["hybrid"]
            rows.append(row)
            print(name, warm, {p: v["overload_minutes"] for p, v in res.scores.items()}, flush=True)
    return {"rows": rows}


def time_replay(repeats: int = 3) -> dict:
    """Seconds to replay 14 days of 1-minute data with hourly re-forecasting (3 policies)."""
    rng = np.random.default_rng(0)
    n = 28 * 1440
    t = np.arange(n)
    rate = 100 * (1 + 0.5 * np.sin(2 * np.pi * (t % 1440 - 360) / 1440))
    y = rng.poisson(rate * 60).astype(float)
    s = series_from_values(y, freq="1min")
    cfg = SimulateConfig(capacity_rps=20.0, warmup="5min", refit_every="1h")
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = simulate(s, cfg, freq="1min", last="14d")
        runs.append(time.perf_counter() - t0)
    return {
        "what": "14 days of 1-minute data (14 more days of history before), hourly refits "
        f"({res.refits} SeasonalProfile forecasts), hpa + predictive + hybrid",
        "median_s": round(float(np.median(runs)), 2),
        "runs_s": [round(x, 2) for x in runs],
    }


PROBATION = 0.15  # NAB: detections in the first 15 % of a file (at most 750 rows) are ignored


def nab_files(data: Path) -> list[dict]:
    """The labelled NAB files: series, windows, points and the end of NAB's probation."""
    labels = json.loads((data / "nab/labels.json").read_text())
    points = json.loads((data / "nab/labels_points.json").read_text())
    out = []
    for rel, wins in labels.items():
        freq = "10min" if "TravelTime" in rel else None
        s = load_series(data / "nab" / rel, freq, agg="mean")
        raw = pd.read_csv(data / "nab" / rel, usecols=["timestamp"])["timestamp"]
        k = int(min(np.floor(PROBATION * len(raw)), PROBATION * 5000))
        out.append(
            {
                "file": rel,
                "series": s,
                "windows": [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in wins],
                "points": [pd.Timestamp(p) for p in points.get(rel, [])],
                "probation_end": pd.Timestamp(sorted(raw)[k]),
            }
        )
    return out


def score_periods(periods: list, f: dict) -> dict:
    """NAB-style window scoring of flagged periods for one file.

    A period is reported from its alarm (online) or start (batch) to its end; periods that end
    inside NAB's probationary period are ignored. A window is detected when a reported span
    overlaps it (NAB: the first detection in a window is the true positive, later ones in the
    same window are neither TP nor FP); a reported span overlapping no window is a false
    positive. Lead time = labelled anomaly point minus the first detection in the window.
    """
    W, P = f["windows"], f["points"]
    spans = []
    for p in periods:
        a = pd.Timestamp(p.alarm or p.start)
        b = pd.Timestamp(p.end)
        if b >= f["probation_end"]:
            spans.append((max(a, f["probation_end"]), b))
    fp = sum(not any(a <= wb and b >= wa for wa, wb in W) for a, b in spans)
    in_win = sum(any(a <= wb and b >= wa for wa, wb in W) for a, b in spans)
    hit, leads = 0, []
    for wa, wb in W:
        starts = [max(a, wa) for a, b in spans if a <= wb and b >= wa]
        if starts:
            hit += 1
            centre = next((p for p in P if wa <= p <= wb), wa + (wb - wa) / 2)
            leads.append((centre - min(starts)).total_seconds() / 3600)
    s = f["series"]
    days = (pd.Timestamp(s.index[-1]) - f["probation_end"]).total_seconds() / 86400
    return {
        "file": f["file"],
        "periods": len(spans),
        "periods_in_windows": in_win,
        "false_positives": fp,
        "days": round(days, 2),
        "windows": len(W),
        "windows_hit": hit,
        "leads_h": leads,
    }


def summarise(rows: list[dict]) -> dict:
    tp = sum(r["windows_hit"] for r in rows)
    fp = sum(r["false_positives"] for r in rows)
    nw = sum(r["windows"] for r in rows)
    nper = sum(r["periods"] for r in rows)
    leads = [x for r in rows for x in r["leads_h"]]
    days = sum(r.get("days", 0.0) for r in rows)
    return {
        "false_alarms_per_day": round(fp / days, 3) if days else None,
        "missed": nw - tp,
        "median_lead_min": round(float(np.median(leads)) * 60, 1) if leads else None,
        "precision": round(tp / max(1, tp + fp), 3),
        "period_precision": round(sum(r["periods_in_windows"] for r in rows) / max(1, nper), 3),
        "recall": round(tp / max(1, nw), 3),
        "windows_hit": tp,
        "windows": nw,
        "false_positives": fp,
        "median_lead_h": round(float(np.median(leads)), 2) if leads else None,
    }


def _pick(results: dict, files: list[str], rule: str = "recall") -> tuple:
    """Config chosen on ``files``: ``recall`` = the highest recall at precision >= 0.5 (else
    best F1); ``precision`` = the highest precision at recall >= 0.7 (else best F1), the
    operating point of the target (precision >= 0.5 at recall >= 0.7)."""

    def key(cfg: tuple) -> tuple:
        m = summarise([results[cfg][f] for f in files])
        p, r = m["precision"], m["recall"]
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if rule == "precision":
            return (r >= 0.7, p if r >= 0.7 else f1, r, f1)
        return (p >= 0.5, r if p >= 0.5 else f1, p, f1)

    return max(results, key=key)


def eval_detection(data: Path) -> dict:
    """Grid of batch and online detector settings, leave-one-file-out selection."""
    files = nab_files(data)
    names = [f["file"] for f in files]
    grids = {
        "batch": [
            {"mode": "batch", "threshold": t, "max_anoms": a}
            for t in (4.0, 5.0, 6.0, 8.0, 10.0)
            for a in (0.005, 0.01, 0.02)
        ],
        "online": [
            {
                "mode": "online",
                "threshold": t,
                "min_duration": d,
                "adaptive_quantile": q,
            }
            | ({"cooldown": c} if c != "0s" else {})
            | ({"gap_suppress": g} if g != "0s" else {})
            for t in (3.0, 4.0, 5.0, 6.0, 8.0)
            for d in ("0s", "30min", "1h")
            for q in (0.0, 0.99, 0.995, 0.999)
            for c in ("0s", "6h", "1d")
            for g in ("0s", "2h")
        ],
    }
    out: dict = {"files": names, "probation": PROBATION, "modes": {}}
    for mode, grid in grids.items():
        t0 = time.perf_counter()
        results: dict[tuple, dict[str, dict]] = {}
        cache: dict = {}
        for g in grid:
            cfg = DetectConfig(**g)
            key = tuple(sorted(g.items()))
            results[key] = {}
            for f in files:
                if mode == "online":
                    ck = (f["file"], cfg.adaptive_quantile)
                    if ck not in cache:
                        cache[ck] = online_scores(f["series"], cfg)
                    z, exp, lim = cache[ck]
                    lim = np.fmax(lim, cfg.threshold)
                    periods = periods_from_scores(f["series"], z, exp, lim, cfg)
                else:
                    periods, _, _ = detect_anomalies(f["series"], cfg)
                results[key][f["file"]] = score_periods(periods, f)
        # leave one file out: settings chosen on the other 8 files, scored on the held-out one
        lofo_rows, chosen = [], {}
        for name in names:
            best = _pick(results, [x for x in names if x != name])
            chosen[name] = dict(best)
            lofo_rows.append(results[best][name] | {"chosen": dict(best)})
        lofo_p = []
        for name in names:
            best = _pick(results, [x for x in names if x != name], "precision")
            lofo_p.append(results[best][name] | {"chosen": dict(best)})
        insample = _pick(results, names)
        default = tuple(sorted(grid[0].items()))
        if mode == "batch":
            default = tuple(sorted({"mode": "batch", "threshold": 5.0, "max_anoms": 0.02}.items()))
        out["modes"][mode] = {
            "grid_size": len(grid),
            "seconds": round(time.perf_counter() - t0, 1),
            "lofo": summarise(lofo_rows) | {"files": lofo_rows},
            "lofo_precision": summarise(lofo_p) | {"files": lofo_p},
            "insample_best": {"config": dict(insample)}
            | summarise(list(results[insample].values()))
            | {"files": list(results[insample].values())},
            "default": {"config": dict(default)} | summarise(list(results[default].values())),
        }
        print(mode, "LOFO", {k: v for k, v in out["modes"][mode]["lofo"].items() if k != "files"})
        print(mode, "in-sample", dict(insample), summarise(list(results[insample].values())))
    return out


def _chosen_row(records: list[dict], horizon: str) -> dict | None:
    return next((r for r in records if r["chosen"] and r["horizon"] == horizon), None)


def render_forecast(res: dict) -> list[str]:
    L = [
        "## Rolling-origin backtests: every model against honest baselines",
        "",
        f"Command: `{res['command_forecast']}`",
        "",
        "Baselines, always run: `Naive` (last value), `SeasonalNaive` (one day ago), "
        "`SeasonalNaiveWeekly` (one week ago, where 2 weeks of history exist), `WindowAverage` "
        "(mean of the last hour, at least 3 buckets). MASE is scaled by the in-sample "
        "seasonal-naive error of each training window. A horizon row `1h` = lead times up to "
        "1 h. `/ best baseline` = the model's MASE divided by the MASE of the best baseline at "
        "that lead time **on the same origins** (below 1 = better than every baseline). "
        "`Combined` = the per-lead-block combination: for each block (<= 5 min, 5 min-1 h, "
        "1-6 h, 6-24 h, ...) the top 3 models by mean error on *earlier* origins only, "
        "weighted by inverse error; so its first origin is not scored and its score is out "
        "of sample. The chosen model (bold in the detail tables) is `Combined` when it could "
        "be scored.",
        "",
        "Chosen forecast, MASE ratio to the best baseline per lead time (target <= 0.9 at 1 h, "
        "6 h and 24 h on minute / 5-minute traces):",
        "",
    ]
    heads = ["5min", "1h", "6h", "1d", "2d", "7d"]
    L += [
        "| trace | step | origins | chosen | " + " | ".join(heads) + " |",
        "|---|---|---|---|" + "---|" * len(heads),
    ]
    for tr in res["forecast"]:
        cells = []
        for hd in heads:
            r = _chosen_row(tr["records"], hd)
            cells.append(
                f"{r['mase_vs_best_baseline']:.2f} ({r['best_baseline']})"
                if r and "mase_vs_best_baseline" in r
                else "-"
            )
        L.append(
            f"| {tr['trace']} | {tr['step']} | {tr['origins']} | {tr['chosen']} | "
            + " | ".join(cells)
            + " |"
        )
    L += [
        "",
        "Best single model per lead time (lowest MASE ratio; all origins):",
        "",
        "| trace | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
    ]
    for tr in res["forecast"]:
        cells = []
        for hd in heads:
            rs = [
                r
                for r in tr["records"]
                if r["horizon"] == hd and r["model"] != "Combined" and "mase_vs_best_baseline" in r
            ]
            if not rs:
                cells.append("-")
                continue
            b = min(rs, key=lambda r: r["mase_vs_best_baseline"])
            cells.append(f"{b['model']} {b['mase_vs_best_baseline']:.2f}")
        L.append(f"| {tr['trace']} | " + " | ".join(cells) + " |")
    ev = [tr for tr in res["forecast"] if "with_events" in tr]
    if ev:
        L += [
            "",
            "With and without the event calendar (`--events`; event buckets masked out of "
            "training, uplift learned from past occurrences only), chosen model's MASE:",
            "",
            "| trace | events | horizon | without: model | MASE | with: model | MASE |",
            "|---|---|---|---|---|---|---|",
        ]
        for tr in ev:
            for hd in heads:
                r0 = _chosen_row(tr["records"], hd)
                r1 = _chosen_row(tr["with_events"]["records"], hd)
                if r0 and r1:
                    L.append(
                        f"| {tr['trace']} | `{tr['events_file']}` | {hd} | {r0['model']} | "
                        f"{r0['mase']:.3f} | {r1['model']} | {r1['mase']:.3f} |"
                    )
    L += [
        "",
        "Interval calibration (split conformal, see `docs/traffic.md`): each origin's 80/95 % "
        "intervals are rescaled with the errors of buckets observed before that origin, the "
        "multiplier interpolated smoothly between lead-time blocks and the half-widths never "
        "shrinking with lead time. `raw` = the model's own intervals on the same buckets, "
        "`cal` = calibrated, `w95` = calibrated / raw mean 95 % width. Chosen model, full "
        "horizon:",
        "",
        "| trace | model | origins scored | raw cov80 | cal cov80 | raw cov95 | cal cov95 | w95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tr in res["forecast"]:
        r = [x for x in tr["records"] if x["chosen"]][-1]
        if "cal_coverage95" in r:
            L.append(
                f"| {tr['trace']} | {r['model']} | {r['cal_windows']} of {r['windows']} | "
                f"{r['raw_coverage80']:.3f} | {r['cal_coverage80']:.3f} | "
                f"{r['raw_coverage95']:.3f} | {r['cal_coverage95']:.3f} | {r['cal_width95']:.2f} |"
            )
    for tr in res["forecast"]:
        L += [
            "",
            f"### {tr['trace']} ({tr['step']} buckets, history {tr['history']}, horizon "
            f"{tr['horizon']}, {tr['origins']} origins; chosen "
            f"**{tr['chosen']}**)",
            "",
            "| model | horizon | MASE | / best baseline | sMAPE % | cov80 | cov95 | "
            "cal cov80 | cal cov95 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in tr["records"]:
            name = f"**{r['model']}**" if r["chosen"] else r["model"]
            ratio = (
                f"{r['mase_vs_best_baseline']:.2f} ({r['best_baseline']})"
                if "mase_vs_best_baseline" in r
                else "-"
            )
            cal = (
                f"{r['cal_coverage80']:.3f} | {r['cal_coverage95']:.3f}"
                if "cal_coverage95" in r
                else "- | -"
            )
            L.append(
                f"| {name} | {r['horizon']} | {r['mase']:.3f} | {ratio} | {r['smape']:.1f} | "
                f"{r['coverage80']:.3f} | {r['coverage95']:.3f} | {cal} |"
            )
    return L


def render_detection(res: dict) -> list[str]:
    det = res["detection"]
    L = [
        "",
        "## Surge / anomaly detection on NAB-labelled series",
        "",
        f"Command: `{res['command_detect']}`",
        "",
        "Scoring follows NAB's window convention (`labels.json` = `combined_windows.json`): a "
        "window is detected when a reported period overlaps it (the first detection in a "
        "window is the true positive; further ones in the same window count as neither); a "
        "reported period that overlaps no window is a false positive (a false alarm); periods "
        "ending inside NAB's probationary period (first 15 % of each file's rows, at most 750) "
        "are ignored, and false alarms per day are counted over the scored days. precision = "
        "windows detected / (windows detected + false positives); recall = windows detected / "
        "windows. A period is reported from its alarm (online) or start (batch). **Surge lead "
        "time** = the labelled anomaly point (`labels_points.json`, the surge start) minus the "
        "first alarm in its window, in minutes (positive = before the surge, negative = late); "
        "it is a true lead time only for the online (causal) mode, the batch mode sees the "
        "whole file. Road-sensor files are read on a 5-min grid (10 min for TravelTime) with "
        "mean aggregation; their empty buckets are never scored or flagged.",
        "",
        "Settings are chosen by **leave-one-file-out**: for each file, the grid setting with the "
        "highest recall at precision >= 0.5 on the other 8 files (else best F1) is scored on the "
        "held-out file (and, second rule, the highest precision at recall >= 0.7, the target's "
        "operating point); a LOFO row pools the 9 held-out results. The online grid now includes "
        "`cooldown` (one alarm per incident: further alarms within 6 h / 1 d suppressed) and "
        "`gap_suppress` (no alarm within 2 h after a gap of >= 30 min). The in-sample row "
        "(setting picked on all 9 files) is shown for reference only.",
        "",
        "| mode | selection | precision | recall | windows hit | missed | false alarms | "
        "false alarms / day | median lead min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, d in det["modes"].items():
        for label, m in (
            ("default settings" if mode == "batch" else None, d["default"]),
            ("leave-one-file-out, recall at precision >= 0.5", d["lofo"]),
            ("leave-one-file-out, precision at recall >= 0.7", d.get("lofo_precision")),
            ("in-sample best (optimistic)", d["insample_best"]),
        ):
            if label is None or m is None:
                continue
            cfg = m.get("config")
            extra = f" `{cfg}`" if cfg else ""
            L.append(
                f"| {mode} | {label}{extra} | {m['precision']:.3f} | {m['recall']:.3f} | "
                f"{m['windows_hit']}/{m['windows']} | {m.get('missed', '-')} | "
                f"{m['false_positives']} | {m.get('false_alarms_per_day', '-')} | "
                f"{m.get('median_lead_min', '-')} |"
            )
    for mode, d in det["modes"].items():
        L += [
            "",
            f"Per file, {mode} mode, leave-one-file-out (grid of {d['grid_size']} settings; "
            "first the recall rule, then the precision rule):",
            "",
            "| file | chosen on the other files | periods | false alarms | windows | hit | "
            "lead min per surge |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in d["lofo"]["files"] + d.get("lofo_precision", {}).get("files", []):
            ch = {k: v for k, v in r["chosen"].items() if k != "mode"}
            L.append(
                f"| {r['file']} | `{ch}` | {r['periods']} | {r['false_positives']} | "
                f"{r['windows']} | {r['windows_hit']} | "
                f"{', '.join(f'{x * 60:.0f}' for x in r['leads_h'])} |"
            )
    return L


def render_event_plans(res: dict) -> list[str]:
    L = [
        "",
        "## Planning ahead of scheduled events",
        "",
        f"Command: `{res['command_events']}`",
        "",
        "For every occurrence in a trace's event calendar (with enough history before it), a "
        "forecast made at the midnight before the event day, 2 days ahead (SeasonalProfile + "
        "AutoETS, 3 backtest origins), without and with `--events`. `hi80 peak / actual` >= 1 "
        "means a plan on the 80 % bound would have had the event's peak covered before it "
        "started; `mean / actual` is the event-average forecast over the event-average actual. "
        "The uplift is learned from earlier occurrences only.",
        "",
        "| trace | event | start | hi80 peak / actual, without | with | mean / actual, without "
        "| with | uplift |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["event_plans"]:
        a, b = r["without"], r["with"]
        L.append(
            f"| {r['trace']} | {r['event']} | {r['start']} | {a['peak_hi80_over_actual']:.2f} | "
            f"{b['peak_hi80_over_actual']:.2f} | {a['mean_over_actual']:.2f} | "
            f"{b['mean_over_actual']:.2f} | {b['uplift'] if b['uplift'] is not None else '-'} |"
        )
    return L


def render_simulate(res: dict) -> list[str]:
    sim = res["simulate"]
    L = [
        "",
        "## Autoscaling replay: hpa / predictive / hybrid",
        "",
        f"Command: `{res['command_simulate']}` (the same as `zenrec traffic simulate --input "
        "FILE --capacity C --warmup W --last SPAN` per row)",
        "",
        "Each trace is replayed on a 1-minute grid (coarser buckets spread by linear "
        "interpolation of the rate) over the last `span`; everything before is history the "
        "forecasts may use. Capacity per replica = peak rps of the span / (15 x 0.7), so the "
        "peak needs 15 replicas at the 70 % target utilisation. `hpa` = the Kubernetes "
        "algorithm (15 s sync, metric of the last completed minute, 10 % tolerance, 5-minute "
        "scale-down stabilisation, scale-up +4 pods or +100 % per sync); `predictive` = "
        "zenrec's plan re-made every hour from past data only (SeasonalProfile forecast, 80 % "
        "upper bound, floor raised a warm-up ahead and held 30 min); `hybrid` = the HPA with "
        "a floor from the same forecast's mean (no hold) as its minimum; the row `hybrid, floor "
        "on hi80` shows the same with the 80 % upper bound instead of the mean. Overload = a minute whose demand exceeds the "
        "*ready* capacity; replica-hours count warming replicas. Target: hybrid <= 50 % of "
        "hpa's overload minutes at warm-up 5 min for <= 15 % more replica-hours.",
        "",
        "| trace | warm-up | policy | overload min | unserved % | replica-h | scale events | "
        "longest overload min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sim["rows"]:
        pols = list(row["policies"].items())
        if "hybrid_hi80" in row:
            pols.append(("hybrid, floor on hi80", row["hybrid_hi80"]))
        for pol, sc in pols:
            L.append(
                f"| {row['trace']} | {row['warmup']} | {pol} | {sc['overload_minutes']:g} | "
                f"{100 * sc['unserved_fraction']:.3f} | {sc['replica_hours']:g} | "
                f"{sc['scale_events']} | {sc['longest_overload_minutes']:g} |"
            )
    L += [
        "",
        "Hybrid against hpa (ratios; overload < 0.5 and replica-hours <= 1.15 meet the target):",
        "",
        "| trace | warm-up | hybrid / hpa overload min | hybrid / hpa replica-h |",
        "|---|---|---|---|",
    ]
    for row in sim["rows"]:
        h, y = row["policies"]["hpa"], row["policies"]["hybrid"]
        ov = (
            f"{y['overload_minutes'] / h['overload_minutes']:.2f}"
            if h["overload_minutes"]
            else ("0 / 0" if not y["overload_minutes"] else "inf")
        )
        L.append(
            f"| {row['trace']} | {row['warmup']} | {ov} | "
            f"{y['replica_hours'] / h['replica_hours']:.3f} |"
        )
    ev = [r for r in sim["rows"] if "hybrid_with_events" in r]
    if ev:
        L += [
            "",
            "Hybrid with and without the event calendar:",
            "",
            "| trace | warm-up | overload min without | with | replica-h without | with |",
            "|---|---|---|---|---|---|",
        ]
        for r in ev:
            a, b = r["policies"]["hybrid"], r["hybrid_with_events"]
            L.append(
                f"| {r['trace']} | {r['warmup']} | {a['overload_minutes']:g} | "
                f"{b['overload_minutes']:g} | {a['replica_hours']:g} | {b['replica_hours']:g} |"
            )
    t = res.get("timing")
    if t:
        L += [
            "",
            f"Replay speed (`{res['command_timing']}`, under `flock /tmp/zenrec-bench.lock`): "
            f"{t['what']}: median {t['median_s']} s (runs {t['runs_s']}), on the shared 2-CPU "
            "machine (target < 120 s).",
        ]
    return L


def render_targets(res: dict) -> list[str]:
    """The issue's targets, met or not, from the figures below."""
    L = ["## Targets", "", "| target | trace | figure | met |", "|---|---|---|---|"]
    for tr in res.get("forecast", []):
        if tr["step"] not in ("1min", "5min"):
            continue
        for hd in ("1h", "6h", "1d"):
            r = _chosen_row(tr["records"], hd)
            if r and "mase_vs_best_baseline" in r:
                v = r["mase_vs_best_baseline"]
                L.append(
                    f"| chosen MASE <= 0.9 x best baseline at {hd} | {tr['trace']} | "
                    f"{v:.2f} ({r['best_baseline']}) | {'yes' if v <= 0.9 else 'no'} |"
                )
    for row in res.get("simulate", {}).get("rows", []):
        if row["warmup"] != "5min":
            continue
        h, y = row["policies"]["hpa"], row["policies"]["hybrid"]
        ov_ok = (
            y["overload_minutes"] <= 0.5 * h["overload_minutes"] if h["overload_minutes"] else True
        )
        rh = y["replica_hours"] / h["replica_hours"]
        L.append(
            f"| hybrid overload <= 0.5 x hpa, replica-h <= 1.15 x (warm-up 5 min) | "
            f"{row['trace']} | overload {y['overload_minutes']:g} vs {h['overload_minutes']:g} "
            f"min, replica-h x{rh:.3f} | {'yes' if ov_ok and rh <= 1.15 else 'no'} |"
        )
    det = res.get("detection", {}).get("modes", {}).get("online")
    for rule in ("lofo", "lofo_precision"):
        if not det or rule not in det:
            continue
        m = det[rule]
        ok = m["precision"] >= 0.5 and m["recall"] >= 0.7 and (m.get("median_lead_min") or -1) >= 0
        L.append(
            f"| causal detector precision >= 0.5 at recall >= 0.7, median lead >= 0 ({rule}) | "
            f"NAB (9 files) | precision {m['precision']:.3f}, recall {m['recall']:.3f}, median "
            f"lead {m.get('median_lead_min')} min | {'yes' if ok else 'no'} |"
        )
    t = res.get("timing")
    if t:
        L.append(
            f"| replay 14 d of 1-min data, hourly refits, < 120 s | synthetic | "
            f"{t['median_s']} s | {'yes' if t['median_s'] < 120 else 'no'} |"
        )
    L += [
        "",
        "Reading these: only `nab_elb_5min` has 5-minute buckets, and its 14 days allow 3 "
        "backtest origins with 7 days of history, so its combination is scored on 2; the best "
        "single models there reach 0.81 (AutoTheta, 5 min) to 0.91-0.94 of the best baseline, "
        "the combination 0.93 at 6 h and 1 d and 1.02 at 1 h. On the hourly and 30-minute "
        "traces the chosen model (MSTL; the per-lead combination, weighted from few earlier "
        "origins, lost to it on the same origins) beats every baseline by 21-64 % at every "
        "lead time; on the daily Wikipedia trace nothing beats the last value at the full "
        "horizon, so `Naive` is chosen (SeasonalProfile alone "
        "reaches 0.82 at 1 d). The replays spread "
        "hourly, 30-minute and daily buckets linearly over minutes, which removes the "
        "burstiness inside a bucket: the HPA then overloads 0-13 minutes in weeks on three of "
        "the four traces, so the overload target can only be judged on the bursty ELB trace, "
        "where the hybrid cuts overload by 59-69 % but costs 24-31 % more replica-hours "
        "(a floor on the 80 % bound: -94 %, 3x the cost; a floor on the mean at full "
        "utilisation instead of 70 %, tried once: -40 % for +12 %). No setting was tuned on "
        "the traces except where a table says leave-one-file-out.",
        "",
    ]
    return L


def render(res: dict) -> str:
    L = [
        "# Traffic forecasting, surge detection and autoscaling: results",
        "",
        f"Machine: {res['machine']} (shared with other jobs; timings are noisy)  ",
        f"Date: {res['date']}",
        "",
    ]
    L += render_targets(res)
    if res.get("forecast"):
        L += render_forecast(res)
    if res.get("detection"):
        L += render_detection(res)
    if res.get("event_plans"):
        L += render_event_plans(res)
    if res.get("simulate"):
        L += render_simulate(res)
    if res.get("speed"):
        L += [
            "",
            "## Speed",
            "",
            f"`{res['speed']['command']}` (per-model lines: median of 3 runs; the full "
            "`forecast_series` line: one run; measured on the shared 2-CPU machine while other "
            "jobs were running, so expect noise):",
            "",
            "```",
        ]
        L += res["speed"]["lines"]
        L += ["```"]
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer origins, short replays (smoke)")
    ap.add_argument("--out", default=str(ROOT / "docs/results/traffic.md"))
    ap.add_argument("--speed", default=None, help="include this traffic_speed.py output")
    ap.add_argument(
        "--only",
        default="forecast,detect,simulate,events",
        help="sections to (re)run, comma separated: forecast, detect, simulate, events, timing",
    )
    ap.add_argument("--traces", default=None, help="forecast/simulate only these (merged)")
    args = ap.parse_args()
    root = os.environ.get("ZENREC_DATA")
    if not root or not (Path(root) / "traffic").exists():
        print("ZENREC_DATA must point at the shared data folder (with traffic/)", file=sys.stderr)
        return 2
    data = Path(root) / "traffic"
    out = Path(args.out)
    js = out.with_suffix(".json")
    res = json.loads(js.read_text()) if js.exists() else {}
    if "forecast" in res and res["forecast"] and "block_models" not in res["forecast"][0]:
        res = {}  # results of the previous format
    res |= {
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    only = {x.strip() for x in args.only.split(",")}
    cmd = "python benchmarks/traffic_eval.py" + (" --quick" if args.quick else "")
    if "detect" in only:
        res["detection"] = eval_detection(data)
        res["command_detect"] = cmd + " --only detect"
    if "forecast" in only:
        names = set(args.traces.split(",")) if args.traces else None
        new = eval_forecast(data, args.quick, names)
        order = [t[0] for t in TRACES]
        merged = {r["trace"]: r for r in res.get("forecast", [])} | {r["trace"]: r for r in new}
        res["forecast"] = [merged[n] for n in order if n in merged]
        res["command_forecast"] = cmd + " --only forecast"
    if "simulate" in only:
        names = set(args.traces.split(",")) if args.traces else None
        rows = eval_simulate(data, args.quick, names)["rows"]
        done = {r["trace"] for r in rows}
        old = [r for r in res.get("simulate", {}).get("rows", []) if r["trace"] not in done]
        order = [t[0] for t in TRACES]
        rows = sorted(
            old + rows, key=lambda r: (order.index(r["trace"]), WARMUPS.index(r["warmup"]))
        )
        res["simulate"] = {"rows": rows}
        res["command_simulate"] = cmd + " --only simulate"
    if "events" in only:
        res["event_plans"] = eval_event_plans(data)
        res["command_events"] = cmd + " --only events"
    if "timing" in only:  # run this section alone under flock /tmp/zenrec-bench.lock
        res["timing"] = time_replay()
        res["command_timing"] = "python benchmarks/traffic_eval.py --only timing"
    if args.speed:  # output of: python benchmarks/traffic_speed.py > FILE
        speed = Path(args.speed)
        res["speed"] = {
            "command": "OMP_NUM_THREADS=1 python benchmarks/traffic_speed.py",
            "lines": speed.read_text().strip().splitlines(),
        }
    atomic_write_text(out, render(res))
    atomic_write_text(js, json.dumps(res, indent=2) + "\n")
    print(f"wrote {out} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
