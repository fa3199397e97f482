"""Autoscaling replay, events calendar, request-log directories and load-test capacity files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zenrec._errors import DataError
from zenrec.cli.main import main
from zenrec.traffic import (
    ForecastConfig,
    PlanConfig,
    forecast_series,
    load_capacity,
    load_series,
    plan_replicas,
    series_from_values,
)
from zenrec.traffic.events import load_events
from zenrec.traffic.simulate import SimulateConfig, simulate

os.environ.setdefault("OMP_NUM_THREADS", "1")


def step_trace(n: int = 400, jump: tuple[int, int] = (100, 200), low: float = 10.0) -> np.ndarray:
    """Requests per minute: ``low`` rps, 5x that between the two jump minutes."""
    rate = np.full(n, low)
    rate[jump[0] : jump[1]] = 5 * low
    return rate * 60


def test_hpa_follows_the_documented_algorithm() -> None:
    s = series_from_values(step_trace(), freq="1min")
    cfg = SimulateConfig(capacity_rps=10, warmup="5min", policies=["hpa"], min_replicas=1)
    res = simulate(s, cfg)
    tr = res.traces["hpa"]
    # 10 rps at 70 % of 10 rps/replica -> 2 replicas; 50 rps -> ceil(50 / 7) = 8
    assert tr.spec[99] == 2 and tr.ready[99] == 2
    # the metric lags one bucket: the step at minute 100 is seen at minute 101; scale-up is
    # limited to +4 pods (or +100 %) per 15 s sync, so 2 -> 6 -> 8 within that minute
    assert tr.spec[100] == 2 and tr.spec[101] > 2 and tr.spec[102] == 8
    # new replicas serve only after the 5-minute warm-up (those added at 101:15 from minute
    # 107 on); 6 ready replicas already carry 50 rps, so the overload is minutes 100..105
    assert list(tr.ready[100:108]) == [2, 2, 2, 2, 2, 2, 6, 8]
    assert res.scores["hpa"]["overload_minutes"] == 6.0
    assert res.scores["hpa"]["longest_overload_minutes"] == 6.0
    # scale-down waits for the 5-minute stabilisation window after the drop is seen (201)
    assert tr.spec[204] == 8 and tr.spec[207] == 2
    unserved = (30.0 * 6) / (10.0 * 300 + 50.0 * 100)  # 50 - 2 x 10 rps short for 6 minutes
    assert res.scores["hpa"]["unserved_fraction"] == pytest.approx(unserved, rel=1e-4)
    # inside the tolerance band (|ratio - 1| <= 0.1) nothing moves
    flat = series_from_values(np.full(60, 7.5 * 60), freq="1min")  # 7.5 rps vs 7 per replica
    res_flat = simulate(flat, SimulateConfig(capacity_rps=10, policies=["hpa"]))
    assert res_flat.scores["hpa"]["scale_events"] == 0


def daily_surges(days: int = 10, seed: int = 0) -> np.ndarray:
    """1-minute counts: a daily cycle and a sharp daily surge (x3 within 2 minutes) at 18:00."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 1440)
    rate = 100 * (1 + 0.4 * np.sin(2 * np.pi * (t % 1440 - 360) / 1440))
    for d in range(days):
        a = d * 1440 + 18 * 60
        rate[a : a + 2] *= np.array([2.0, 3.0])
        rate[a + 2 : a + 60] *= 3.0
    return rng.poisson(rate * 60).astype(float)


def test_hybrid_scales_before_a_recurring_surge() -> None:
    y = daily_surges()
    s = series_from_values(y, freq="1min")
    peak = float(y.max()) / 60
    # overload priced at 1 replica-hour a minute: holding the surge's replicas pays
    cfg = SimulateConfig(capacity_rps=peak / 15, warmup="5min", min_history="3d", overload_cost=1.0)
    res = simulate(s, cfg, last="6d")
    hpa, hyb = res.scores["hpa"], res.scores["hybrid"]
    assert hpa["overload_minutes"] >= 6 * 5  # each surge overloads the reactive scaler
    assert hyb["overload_minutes"] <= 0.2 * hpa["overload_minutes"]
    assert hyb["replica_hours"] <= 1.25 * hpa["replica_hours"]
    assert set(hpa) == {
        "overload_minutes",
        "unserved_fraction",
        "replica_hours",
        "scale_events",
        "longest_overload_minutes",
    }


def test_no_look_ahead(tmp_path: Path) -> None:
    y = daily_surges(days=4, seed=1)
    cut = 3 * 1440 + 600
    y2 = y.copy()
    y2[cut:] = y2[cut:][::-1] * 3.0  # a different future
    ev = tmp_path / "ev.csv"  # past and future events: uplifts learned from the past only
    ev.write_text(
        "name,start,end\n"
        + "".join(f"sale,2024-01-0{d} 18:00,2024-01-0{d} 19:00\n" for d in (2, 3, 4))
    )
    cfg = SimulateConfig(capacity_rps=40, warmup="5min", min_history="2d")
    cal = load_events(ev)
    a = simulate(series_from_values(y, freq="1min"), cfg, events=cal)
    b = simulate(series_from_values(y2, freq="1min"), cfg, events=cal)
    np.testing.assert_array_equal(a.floor[:cut], b.floor[:cut])
    np.testing.assert_array_equal(a.hybrid_floor[:cut], b.hybrid_floor[:cut])
    for p in ("hpa", "predictive", "hybrid"):
        np.testing.assert_array_equal(a.traces[p].spec[:cut], b.traces[p].spec[:cut])
        np.testing.assert_array_equal(a.traces[p].ready[:cut], b.traces[p].ready[:cut])
    assert not np.array_equal(a.traces["hpa"].spec, b.traces["hpa"].spec)


def test_cli_simulate_writes_json_and_plot(tmp_path: Path) -> None:
    y = daily_surges(days=4, seed=2)[::5].copy()  # 5-minute sums are read, replayed per minute
    y = np.add.reduceat(daily_surges(days=4, seed=2), np.arange(0, 4 * 1440, 5))
    idx = pd.date_range("2024-03-01", periods=len(y), freq="5min")
    p = tmp_path / "t.csv"
    pd.DataFrame({"ts": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "n": y}).to_csv(p, index=False)
    lt = tmp_path / "lt.json"
    lt.write_text(json.dumps({"achieved_rps": 60.0, "p99_ms": 40.0, "capacity_rps": 25.0}))
    out = tmp_path / "sim"
    rc = main(
        ["traffic", "simulate", "--input", str(p), "--capacity-from", str(lt), "--output", str(out)]
        + ["--warmup", "2min", "--max", "40"]
    )
    assert rc == 0
    sim = json.loads((out / "simulation.json").read_text())
    assert set(sim["policies"]) == {"hpa", "predictive", "hybrid"}
    assert sim["capacity_rps"] == 25.0 and sim["warmup_s"] == 120.0
    assert (out / "simulation.png").stat().st_size > 5000
    assert sim["freq"] == "1min"


def test_events_raise_the_plan_before_a_scheduled_surge(tmp_path: Path) -> None:
    """History with 3 event days of 5x traffic in the evening; the 4th is in the horizon."""
    rng = np.random.default_rng(3)
    days = 24
    t = np.arange(days * 24)
    y = 1000 * (1 + 0.3 * np.sin(2 * np.pi * (t % 24 - 6) / 24)) + rng.normal(0, 20, len(t))
    ev_days = [5, 11, 17, 24]  # the last one is tomorrow
    for d in ev_days[:-1]:
        y[d * 24 + 18 : d * 24 + 22] *= 5
    s = series_from_values(y, start="2024-01-01", freq="1h")
    p = tmp_path / "events.csv"
    rows = ["name,start,end"] + [
        f"match,{pd.Timestamp('2024-01-01') + pd.Timedelta(days=d, hours=18)},"
        f"{pd.Timestamp('2024-01-01') + pd.Timedelta(days=d, hours=22)}"
        for d in ev_days
    ]
    p.write_text("\n".join(rows) + "\n")
    cal = load_events(p)
    cfg = ForecastConfig(horizon="24h", models=["SeasonalProfile"], windows=2)
    plain = forecast_series(s, cfg)
    with_ev = forecast_series(s, cfg, events=cal)
    f0, f1 = plain.frame, with_ev.frame
    hour = f1["ts"].dt.hour.to_numpy()
    during = (hour >= 18) & (hour < 22)
    base = 1000 * (1 + 0.3 * np.sin(2 * np.pi * (hour - 6) / 24))  # the planted level
    ratio = f1["mean"].to_numpy() / base
    assert (ratio[during] > 4.0).all() and (ratio[during] < 6.0).all()  # planted uplift: 5x
    assert (np.abs(ratio[~during] - 1) < 0.1).all()  # event buckets masked from training
    assert (f0["mean"].to_numpy()[during] / base[during] < 3.5).all()  # no calendar: missed
    assert with_ev.events and with_ev.events[0]["uplift"] == pytest.approx(5.0, rel=0.15)
    plan = plan_replicas(
        f1, 3600.0, float(y[-1]), PlanConfig(capacity_rps=0.05, warmup="30min", hold="0s")
    )
    first_out = min(
        pd.Timestamp(e["at"])
        for e in plan.schedule
        if e["min_replicas"] > plan.current_replicas * 3
    )
    assert first_out <= pd.Timestamp("2024-01-25 17:30")  # in place before the event starts


def test_events_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("name,begin\nx,2024-01-01\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['start', 'end'\]"):
        load_events(p)
    p.write_text("name,start,end\nx,2024-01-02,2024-01-01\n")
    with pytest.raises(DataError, match="line 2: end"):
        load_events(p)


def write_log(
    d: Path, pid: int, stamps: list[str], rotated: int = 0, partial: bool = False
) -> None:
    """Request-log lines exactly as `zenrec serve --request-log DIR` writes them."""
    name = f"requests-{pid}.jsonl" if not rotated else f"requests-{pid}.{rotated}.jsonl"
    lines = [
        json.dumps(
            {
                "ts": ts,
                "endpoint": "/v1/recommend",
                "status": 200,
                "latency_ms": 1.234,
                "model_version": "0123456789abcdef",
                "user": None,
                "k": 10,
            }
        )
        for ts in stamps
    ]
    text = "\n".join(lines) + "\n"
    if partial:
        text += '{"ts": "2026-12-01T12:09:'
    (d / name).write_text(text)


def test_request_log_directory(tmp_path: Path) -> None:
    write_log(tmp_path, 11, ["2026-12-01T12:00:00.123456+00:00", "2026-12-01T12:00:59.9+00:00"])
    write_log(tmp_path, 11, ["2026-12-01T11:58:10.000001+00:00"], rotated=1)
    write_log(tmp_path, 12, ["2026-12-01T12:02:30+00:00"] * 3, partial=True)
    (tmp_path / "other.jsonl").write_text('{"ts": "2026-12-01T12:00:00+00:00"}\n')  # not a log
    s = load_series(tmp_path, "1min")
    assert s.report.kind == "events" and str(s.index[0]) == "2026-12-01 11:58:00+00:00"
    assert list(s.values) == [1.0, 0.0, 2.0, 0.0, 3.0]
    assert any("3 request-log files" in n for n in s.report.notes)
    (tmp_path / "requests-13.jsonl").write_text('{"ts": "2026-12-01T12:00:00+00:00"}\nnope\n')
    with pytest.raises(DataError, match=r"requests-13\.jsonl: line 2: not valid JSON"):
        load_series(tmp_path, "1min")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no requests-\*\.jsonl files"):
        load_series(empty)


def test_cli_reads_request_log_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = pd.Timestamp("2026-11-28T00:00:00+00:00")
    rng = np.random.default_rng(0)
    stamps = []
    for m in range(3 * 1440):
        k = int(rng.poisson(3 + 2 * np.sin(2 * np.pi * m / 1440)))
        stamps += [(base + pd.Timedelta(minutes=m, seconds=s)).isoformat() for s in range(k)]
    write_log(tmp_path, 7, stamps)
    out = tmp_path / "f"
    rc = main(
        ["traffic", "forecast", "--input", str(tmp_path), "--freq", "15min", "--horizon", "6h"]
        + ["--models", "SeasonalProfile", "--windows", "2", "--output", str(out)]
    )
    assert rc == 0
    assert len(pd.read_csv(out / "forecast.csv")) == 24


def test_load_capacity_contract(tmp_path: Path) -> None:
    p = tmp_path / "lt.json"
    single = {
        "offered_rps": 200.0,
        "achieved_rps": 198.5,
        "p50_ms": 2.0,
        "p90_ms": 4.0,
        "p99_ms": 9.0,
        "p999_ms": 20.0,
        "max_ms": 31.0,
        "errors": 0,
        "errors_by_kind": {},
        "target_url": "http://127.0.0.1:8000",
        "endpoint": "/v1/recommend",
    }
    p.write_text(json.dumps(single))
    assert load_capacity(p) == 198.5
    ramp = single | {"steps": [single], "capacity_rps": 150.0, "p99_target_ms": 50.0}
    p.write_text(json.dumps(ramp))
    assert load_capacity(p) == 150.0  # the ramp's capacity wins over the last run's rate
    p.write_text(json.dumps(ramp | {"capacity_rps": None}))
    with pytest.raises(DataError, match=r"no ramp step kept p99 within 50\.0 ms"):
        load_capacity(p)
    p.write_text(json.dumps(single | {"errors": 12, "errors_by_kind": {"timeout": 12}}))
    with pytest.raises(DataError, match="12 errors"):
        load_capacity(p)


def test_detect_reports_surge_lead_times(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(21 * 24)
    y = 1000 * (1 + 0.5 * np.sin(2 * np.pi * t / 24)) + rng.normal(0, 20, len(t))
    surges = (24 * 12 + 9, 24 * 16 + 14)
    for a in surges:
        y[a : a + 4] *= 2.0
    idx = pd.date_range("2024-03-01", periods=len(y), freq="1h")
    p = tmp_path / "t.csv"
    pd.DataFrame({"ts": idx.strftime("%Y-%m-%dT%H:%M:%S"), "n": y.round()}).to_csv(p, index=False)
    ev = tmp_path / "ev.csv"
    labelled = [*surges, 24 * 19 + 3]  # the third labelled surge never happens: missed
    ev.write_text(
        "name,start,end\n"
        + "".join(
            f"s{i},{idx[a]},{idx[a] + pd.Timedelta(hours=4)}\n" for i, a in enumerate(labelled)
        )
    )
    out = tmp_path / "d"
    rc = main(
        ["traffic", "detect", "--input", str(p), "--mode", "online", "--threshold", "6"]
        + ["--min-duration", "2h", "--no-forecast", "--events", str(ev), "--output", str(out)]
    )
    assert rc == 0
    rep = json.loads((out / "surges.json").read_text())["lead_times"]
    leads = [r["lead_min"] for r in rep["surges"]]
    assert leads[:2] == [-60.0, -60.0]  # alarmed once 2 h were seen: 60 min after the start
    assert leads[2] is None and rep["missed"] == 1
    assert rep["false_alarms"] == 0 and rep["false_alarms_per_day"] == 0.0


def test_predictive_and_hybrid_act_as_the_hpa_until_the_forecaster_is_ready() -> None:
    y = daily_surges(days=5, seed=2)
    s = series_from_values(y, freq="1min")
    cfg = SimulateConfig(capacity_rps=float(y.max()) / 60 / 15, warmup="5min")
    res = simulate(s, cfg)
    # a daily season needs 2 days, the calibrated level 1 day of past forecasts: 3 days
    k = 3 * 1440
    assert not res.floor[:k].any() and res.floor[k + 60 :].any()
    for p in ("predictive", "hybrid"):
        np.testing.assert_array_equal(res.traces[p].spec[:k], res.traces["hpa"].spec[:k])
        np.testing.assert_array_equal(res.traces[p].ready[:k], res.traces["hpa"].ready[:k])
    assert any("acted as the HPA" in n for n in res.notes)


def test_calibrated_floor_trades_overload_against_replica_hours() -> None:
    y = daily_surges(days=8, seed=4)
    s = series_from_values(y, freq="1min")
    cap = float(y.max()) / 60 / 15
    runs = {
        c: simulate(s, SimulateConfig(capacity_rps=cap, overload_cost=c), last="4d")
        for c in (0.01, 1.0)
    }
    cheap, dear = (runs[c].scores for c in (0.01, 1.0))
    # overload almost free: no floor pays for itself, so the hybrid is the HPA
    assert cheap["hybrid"] == cheap["hpa"]
    # overload dear: the floor is raised and removes most overload for a few more replicas
    assert dear["hpa"]["overload_minutes"] >= 4 * 5
    assert dear["hybrid"]["overload_minutes"] <= 0.3 * dear["hpa"]["overload_minutes"]
    assert dear["hybrid"]["replica_hours"] <= 1.15 * dear["hpa"]["replica_hours"]


def test_a_surge_on_some_days_is_not_copied_to_every_day() -> None:
    rng = np.random.default_rng(7)
    days = 12
    t = np.arange(days * 1440)
    rate = 100 * (1 + 0.4 * np.sin(2 * np.pi * (t % 1440 - 360) / 1440))
    surge_days = (3, 7)  # a release on two days only
    for d in surge_days:
        rate[d * 1440 + 18 * 60 : d * 1440 + 19 * 60] *= 4.0
    s = series_from_values(rng.poisson(rate * 60).astype(float), freq="1min")
    # a floor on the forecast mean (no calibration, which on this smooth trace raises none)
    cfg = SimulateConfig(
        capacity_rps=400 / 15, warmup="5min", policies=["hybrid"], hybrid_bound="mean"
    )
    res = simulate(s, cfg)
    per = cfg.capacity_rps * cfg.target_utilization
    normal = 100 * 1.4 * 1.1 / per  # the daily peak's need, with some slack
    for d in range(8, days):  # surge-free days after both surges
        assert res.hybrid_floor[d * 1440 + 12 * 60] > 0  # the floor is in use
        at = slice(d * 1440 + 18 * 60, d * 1440 + 19 * 60)
        assert res.hybrid_floor[at].max() <= normal + 2  # yesterday's surge: not copied
