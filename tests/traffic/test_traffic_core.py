"""Unit tests of zenrec.traffic: series building, forecasting, detection, planning, CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zenrec._errors import ConfigError, DataError
from zenrec.cli.main import main
from zenrec.traffic import (
    DetectConfig,
    ForecastConfig,
    PlanConfig,
    detect_anomalies,
    forecast_series,
    keda_scaledobject,
    load_capacity,
    load_series,
    plan_replicas,
    series_from_values,
    surge_alerts,
)
from zenrec.traffic.candidates import usable_seasons
from zenrec.traffic.series import fill_gaps, validated

os.environ.setdefault("OMP_NUM_THREADS", "1")


def synthetic(days: int = 21, seed: int = 0, surges: tuple[int, ...] = ()) -> np.ndarray:
    """Hourly traffic with daily and weekly cycles, noise, and 4-hour surges at given hours."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    daily = 1.0 + 0.6 * np.sin(2 * np.pi * (t % 24 - 6) / 24)
    weekly = np.where((t // 24) % 7 >= 5, 0.6, 1.0)
    y = 1000 * daily * weekly * (1 + 0.002 * t / 24) + rng.normal(0, 25, len(t))
    for s in surges:
        y[s : s + 4] *= 3.0
    return y


# ---------------------------------------------------------------- series building


def test_jsonl_events_iso_and_unix(tmp_path: Path) -> None:
    lines = [
        {"ts": "2024-05-01T00:01:00Z"},
        {"ts": 1714521720, "count": 2},  # 2024-05-01T00:02:00Z
        {"ts": "2024-05-01T02:07:00+02:00"},  # 00:07 UTC
        {"ts": "2024-05-01T00:16:00Z"},
    ]
    p = tmp_path / "requests.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    s = load_series(p, "5min")
    assert s.report.kind == "events"
    assert list(s.values) == [3.0, 1.0, 0.0, 1.0]  # empty bucket is a real zero for logs
    assert str(s.index.tz) == "UTC"


def test_jsonl_bad_line_names_line(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text('{"ts": "2024-05-01T00:00:00Z"}\n{"time": 3}\n')
    with pytest.raises(DataError, match=r"r.jsonl: line 2: no 'ts' field"):
        load_series(p)


def test_counts_unsorted_duplicates_and_gaps_are_reported(tmp_path: Path) -> None:
    p = tmp_path / "traffic.csv"
    p.write_text(
        "ts,n\n2024-01-01 00:10,3\n2024-01-01 00:00,1\n2024-01-01 00:05,2\n"
        "2024-01-01 00:05,5\n2024-01-01 00:25,4\n"
    )
    s = load_series(p)
    assert s.freq == "5min"
    assert s.report.unsorted and s.report.duplicates == 1
    np.testing.assert_array_equal(s.values[:3], [1, 7, 3])
    assert np.isnan(s.values[3]) and np.isnan(s.values[4])  # gaps stay NaN, not zero
    assert s.report.missing == 2 and len(s.report.missing_runs) == 1
    assert any("sorted" in n for n in s.report.notes)
    with pytest.raises(DataError, match="duplicated timestamps"):
        load_series(p, duplicates="error")


def test_split_time_columns_and_value_detection(tmp_path: Path) -> None:
    p = tmp_path / "hourly.csv"
    p.write_text("year,month,day,week_day,hour,requests\n2015,3,26,3,14,70\n2015,3,26,3,15,69\n")
    s = load_series(p)
    assert s.report.time_column == "year+month+day+hour"
    assert s.report.value_column == "requests"
    assert s.index[0] == pd.Timestamp("2015-03-26 14:00") and s.freq == "1h"


def test_column_errors_are_one_line(tmp_path: Path) -> None:
    p = tmp_path / "traffic.csv"
    p.write_text("ts,a,b\n2024-01-01 00:00,1,2\n2024-01-01 00:05,1,2\n")
    with pytest.raises(DataError, match="several possible value columns"):
        load_series(p)
    with pytest.raises(DataError, match=r"column 'count' not found; columns are .*--value-col"):
        load_series(p, value_col="count")
    with pytest.raises(DataError, match="finer than the data's step"):
        load_series(p, "1min", value_col="a")
    bad = tmp_path / "bad.csv"
    bad.write_text("ts,n\n2024-01-01 00:00,1\nnot-a-time,2\n")
    with pytest.raises(DataError, match=r"bad.csv: line 3: column 'ts'"):
        load_series(bad)


def test_dst_local_time_becomes_regular_utc(tmp_path: Path) -> None:
    # Europe/Berlin spring forward: 02:00 local does not exist on 2024-03-31
    p = tmp_path / "local.csv"
    rows = ["2024-03-31 00:00", "2024-03-31 01:00", "2024-03-31 03:00", "2024-03-31 04:00"]
    p.write_text("ts,n\n" + "".join(f"{r},{i}\n" for i, r in enumerate(rows)))
    naive = load_series(p)
    assert naive.report.missing == 1  # without a zone the DST hour looks like a gap
    aware = load_series(p, tz="Europe/Berlin")
    assert aware.report.missing == 0 and aware.n == 4 and str(aware.index.tz) == "UTC"


def test_fill_gaps_uses_same_phase() -> None:
    y = np.array([1.0, 2, 3, 1, np.nan, 3])
    filled, k = fill_gaps(y, 3)
    assert k == 1 and filled[4] == 2.0


# ---------------------------------------------------------------- forecasting


@pytest.fixture(scope="module")
def fitted() -> tuple[object, object]:
    s = series_from_values(synthetic(28), freq="1h")
    cfg = ForecastConfig(horizon="24h", models=["MSTL", "AutoETS"], windows=3)
    return s, forecast_series(s, cfg)


def test_forecast_beats_seasonal_naive_on_seasonal_series(fitted: tuple) -> None:
    _, res = fitted
    recs = {(r["model"], r["horizon"]): r for r in res.backtest.records}
    assert res.model != "SeasonalNaive"
    best = recs[(res.model, "1d")]["mase"]
    assert best < 0.8 * recs[("SeasonalNaive", "1d")]["mase"]
    assert sum(r["chosen"] for r in res.backtest.records if r["horizon"] == "1d") == 1
    f = res.frame
    assert len(f) == 24 and (f["lo95"] <= f["lo80"]).all() and (f["hi80"] <= f["hi95"]).all()
    assert (f["lo80"] <= f["mean"]).all() and (f["mean"] <= f["hi80"]).all()


def test_too_little_history_is_a_clear_error() -> None:
    s = series_from_values(synthetic(1)[:12], freq="1h")
    with pytest.raises(DataError, match=r"only 12h of history.*at least 1d"):
        forecast_series(s, ForecastConfig(horizon="6h"))
    with pytest.raises(DataError, match="weekly seasonality needs at least 2 cycles"):
        usable_seasons(3600, 24 * 10, "daily,weekly")
    with pytest.raises(ConfigError, match="models"):
        validated(ForecastConfig, models=["Prophet"])
    with pytest.raises(ConfigError, match="horizon"):
        validated(ForecastConfig, horizon="soon")


# ---------------------------------------------------------------- detection


SURGES = (24 * 9 + 10, 24 * 15 + 3, 24 * 19 + 16)


@pytest.fixture(scope="module")
def detected() -> tuple[object, list]:
    s = series_from_values(synthetic(21, seed=1, surges=SURGES), freq="1h")
    periods, _z, _ = detect_anomalies(s, DetectConfig())
    return s, periods


def test_detection_finds_injected_surges(detected: tuple) -> None:
    s, periods = detected
    surges = [p for p in periods if p.kind == "surge"]
    for start in SURGES:
        t0, t1 = s.index[start], s.index[start + 3]
        assert any(pd.Timestamp(p.start) <= t1 and pd.Timestamp(p.end) >= t0 for p in surges)
    assert len(periods) <= 2 * len(SURGES)  # few false alarms


def test_forward_alert_on_capacity_and_jump() -> None:
    ts = pd.date_range("2024-01-02", periods=6, freq="1h")
    frame = pd.DataFrame(
        {
            "ts": ts,
            "mean": [100, 100, 300, 320, 100, 100],
            "hi80": [110, 110, 330, 350, 110, 110],
            "hi95": [120, 120, 360, 380, 120, 250],
            "norm": [100.0] * 6,
        }
    )
    alerts = surge_alerts(frame, ts[0], history_median=100, capacity=240, config=DetectConfig())
    assert [a.start for a in alerts] == [str(ts[2]), str(ts[5])]
    assert alerts[0].lead_time_s == 7200 and "capacity" in alerts[0].reason
    assert "norm" in alerts[0].reason


# ---------------------------------------------------------------- planning


def _plan_frame() -> pd.DataFrame:
    ts = pd.date_range("2024-01-02", periods=8, freq="1h")
    load = np.array([100, 100, 100, 500, 500, 100, 100, 100]) * 3600.0  # rps * bucket
    return pd.DataFrame({"ts": ts, "mean": load, "hi80": load, "hi95": load})


def test_plan_scales_out_ahead_by_warmup_and_releases_floor() -> None:
    cfg = PlanConfig(
        capacity_rps=50, target_utilization=0.5, warmup="10min", hold="0s", max_replicas=15
    )
    plan = plan_replicas(_plan_frame(), 3600, last_observed=100 * 3600.0, config=cfg)
    assert plan.current_replicas == 4
    out = [e for e in plan.schedule if e["action"] == "scale_out"]
    assert out[0]["at"] == "2024-01-02 02:50:00" and out[0]["min_replicas"] == 15
    assert plan.capped == 2  # 500 rps needs 20 > max 15
    rel = [e for e in plan.schedule if e["action"] == "release_floor"]
    assert rel[0]["at"] == "2024-01-02 05:00:00" and rel[0]["min_replicas"] == 4
    yaml = keda_scaledobject(plan)
    assert "type: cron" in yaml and 'start: "50 2 2 1 *"' in yaml and "type: prometheus" in yaml


def test_model_load_seconds_from_a_scrape_or_json(tmp_path: Path) -> None:
    from zenrec.traffic.plan import load_model_seconds, startup_probe_budget, warmup_from_load

    p = tmp_path / "m.txt"
    p.write_text("zenrec_model_load_seconds 3.0\nzenrec_model_load_seconds_x 99\n")
    assert load_model_seconds(p) == 3.0
    p.write_text("zenrec_requests_total 5\n")
    with pytest.raises(DataError, match="zenrec_model_load_seconds"):
        load_model_seconds(p)
    p.write_text(json.dumps({"load_seconds": 4.5}))
    assert load_model_seconds(p) == 4.5
    assert warmup_from_load(4.5) == "39s"  # 30 s pod start + 2 x load
    assert startup_probe_budget(100.0)["failureThreshold"] * 2 >= 300  # 3 x load at least


def test_capacity_from_loadtest_json(tmp_path: Path) -> None:
    p = tmp_path / "lt.json"
    p.write_text(json.dumps({"achieved_rps": 900, "p99_ms": 180, "slo_p99_ms": 250, "replicas": 3}))
    assert load_capacity(p) == 300
    p.write_text(json.dumps({"achieved_rps": 900, "p99_ms": 400, "slo_p99_ms": 250}))
    with pytest.raises(DataError, match="SLO did not hold"):
        load_capacity(p)
    p.write_text(json.dumps({"p99_ms": 100}))
    with pytest.raises(DataError, match="'achieved_rps' must be a positive number"):
        load_capacity(p)
    with pytest.raises(ConfigError, match="max"):
        validated(PlanConfig, capacity_rps=10, min_replicas=5, max_replicas=2)


# ---------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def csv_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    y = synthetic(15, seed=2, surges=(24 * 12 + 9,))
    d = tmp_path_factory.mktemp("cli")
    idx = pd.date_range("2024-03-01", periods=len(y), freq="1h")
    p = d / "traffic.csv"
    pd.DataFrame({"ts": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "n": y.round()}).to_csv(p, index=False)
    return p


def test_cli_forecast_detect_plan(
    csv_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    common = ["--input", str(csv_input), "--horizon", "24h", "--models", "MSTL", "--windows", "1"]
    out = tmp_path / "f"
    assert main(["traffic", "forecast", *common, "--output", str(out)]) == 0
    bt = json.loads((out / "backtest.json").read_text())
    assert {"model", "horizon", "mase", "smape", "coverage80", "coverage95", "chosen"} <= set(
        bt["records"][0]
    )
    assert (out / "forecast.png").stat().st_size > 1000
    assert len(pd.read_csv(out / "forecast.csv")) == 24
    out = tmp_path / "d"
    assert main(["traffic", "detect", *common, "--output", str(out)]) == 0
    rep = json.loads((out / "surges.json").read_text())
    assert any(p["kind"] == "surge" and p["start"].startswith("2024-03-13") for p in rep["periods"])
    assert (out / "surges.csv").exists()
    out = tmp_path / "p"
    scrape = tmp_path / "metrics.txt"  # a saved /metrics page of a pod that loaded its bundle
    scrape.write_text(
        "# TYPE zenrec_model_load_seconds gauge\nzenrec_model_load_seconds 12.5\n"
        'zenrec_users_served_total{endpoint="/v1/recommend"} 3.0\n'
    )
    rc = main(
        ["traffic", "plan", *common, "--capacity", "0.2", "--max", "20", "--output", str(out)]
        + ["--namespace", "recs", "--prometheus-address", "http://prom.recs:9090"]
        + ["--warmup-from", str(scrape)]
    )
    assert rc == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["policy"]["scale_in"].startswith("reactive")
    assert plan["config"]["warmup"] == "55s" and plan["model_load_seconds"] == 12.5
    assert plan["startup_probe"] == {"periodSeconds": 2, "failureThreshold": 34}
    keda = (out / "keda-scaledobject.yaml").read_text()
    assert "kind: ScaledObject" in keda and "serverAddress: http://prom.recs:9090" in keda
    assert 'namespace="recs"' in keda and "minReplicaCount: 2" in keda
    custom = 'sum(rate(x_total{job="a"}[1m]))'
    rc = main(
        ["traffic", "plan", *common, "--capacity", "0.2", "--output", str(out)]
        + ["--prometheus-query", custom]
    )
    assert rc == 0 and f"query: '{custom}'" in (out / "keda-scaledobject.yaml").read_text()


def test_cli_user_error_is_one_line(csv_input: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["traffic", "forecast", "--input", str(csv_input), "--value-col", "count"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "column 'count' not found" in err and "--value-col" in err
    rc = main(["traffic", "forecast", "--input", str(csv_input), "--horizon", "soon"])
    assert rc == 2 and "horizon" in capsys.readouterr().err
