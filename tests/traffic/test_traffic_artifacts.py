"""The Python API writes the artefacts ``zenrec traffic`` writes: same files, same contents."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zenrec.cli.main import main
from zenrec.traffic import (
    DetectConfig,
    ForecastConfig,
    PlanConfig,
    SimulateConfig,
    detect_surges,
    forecast_series,
    load_events,
    load_series,
    plan_series,
    simulate,
)

os.environ.setdefault("OMP_NUM_THREADS", "1")

# timings differ between two runs of the same work; everything else must be equal
TIMINGS = {"fit_seconds", "seconds"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """15 days of hourly traffic with a planted evening surge on 3 match days (the 4th is in the
    forecast horizon), and the events file naming them."""
    rng = np.random.default_rng(4)
    t = np.arange(15 * 24)
    y = 1000 * (1 + 0.5 * np.sin(2 * np.pi * (t % 24 - 6) / 24)) + rng.normal(0, 20, len(t))
    days = [4, 8, 12, 15]
    for d in days[:-1]:
        y[d * 24 + 18 : d * 24 + 22] *= 4
    d = tmp_path_factory.mktemp("inputs")
    idx = pd.date_range("2024-03-01", periods=len(y), freq="1h")
    data = d / "traffic.csv"
    pd.DataFrame({"ts": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "n": y.round()}).to_csv(
        data, index=False
    )
    start = pd.Timestamp("2024-03-01")
    events = d / "events.csv"
    events.write_text(
        "name,start,end\n"
        + "".join(
            f"match,{start + pd.Timedelta(days=k, hours=18)},"
            f"{start + pd.Timedelta(days=k, hours=22)}\n"
            for k in days
        )
    )
    return data, events


FORECAST_FLAGS = ["--horizon", "24h", "--models", "SeasonalProfile", "--windows", "1"]
FORECAST = ForecastConfig(horizon="24h", models=["SeasonalProfile"], windows=1)


def _drop_timings(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in TIMINGS}


def assert_same_artefacts(cli: Path, api: Path, names: set[str]) -> None:
    """Both directories hold exactly ``names``; JSON equal but for timings, text identical."""
    assert {p.name for p in cli.iterdir()} == names
    assert {p.name for p in api.iterdir()} == names
    for name in sorted(names):
        a, b = cli / name, api / name
        if name.endswith(".json"):
            assert _drop_timings(json.loads(a.read_text())) == _drop_timings(
                json.loads(b.read_text())
            ), name
        elif name.endswith(".png"):
            assert a.stat().st_size > 1000 and b.stat().st_size > 1000, name
        else:
            assert a.read_text() == b.read_text(), name


def test_forecast_write_equals_the_cli(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    data, events = inputs
    cli = tmp_path / "cli"
    argv = ["traffic", "forecast", "--input", str(data), "--events", str(events)]
    assert main([*argv, *FORECAST_FLAGS, "--output", str(cli)]) == 0
    series = load_series(data)
    res = forecast_series(series, FORECAST, events=load_events(events))
    written = res.write(tmp_path / "api")
    assert [p.name for p in written] == ["forecast.csv", "backtest.json", "forecast.png"]
    assert_same_artefacts(cli, tmp_path / "api", {p.name for p in written})
    backtest = json.loads((tmp_path / "api" / "backtest.json").read_text())
    assert backtest["series"]["source"] == str(data)
    assert backtest["chosen_model"] == res.model and backtest["records"]
    # the match in the horizon is on the plotted axis, once, on the bucket grid
    assert res.event_windows[-1] == (
        "match",
        "2024-03-16 18:00:00+00:00",
        "2024-03-16 22:00:00+00:00",
    )
    assert len(res.event_windows) == 3  # the last week of history holds two more matches


def test_detect_write_equals_the_cli(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    data, events = inputs
    cli = tmp_path / "cli"
    argv = ["traffic", "detect", "--input", str(data), "--events", str(events)]
    assert main([*argv, *FORECAST_FLAGS, "--capacity", "0.5", "--output", str(cli)]) == 0
    report = detect_surges(
        load_series(data),
        DetectConfig(),
        forecast=FORECAST,
        events=load_events(events),
        capacity_rps=0.5,
    )
    written = report.write(tmp_path / "api")
    names = {"surges.json", "surges.csv", "forecast.csv", "backtest.json", "forecast.png"}
    assert {p.name for p in written} == names
    assert_same_artefacts(cli, tmp_path / "api", names)
    surges = json.loads((tmp_path / "api" / "surges.json").read_text())
    assert set(surges) == {"config", "periods", "alerts", "lead_times", "series"}
    assert surges["lead_times"]["missed"] == 0  # the 3 planted match surges were flagged
    assert [w[0] for w in report.event_windows] == ["match"] * 3  # those inside history
    assert surges["alerts"] and "capacity" in surges["alerts"][0]["reason"]


def test_detect_without_forecast_writes_a_history_plot(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, _ = inputs
    cli = tmp_path / "cli"
    assert (
        main(["traffic", "detect", "--input", str(data), "--no-forecast", "--output", str(cli)])
        == 0
    )
    report = detect_surges(load_series(data), DetectConfig())
    assert report.forecast is None and report.alerts == [] and report.lead_times is None
    report.write(tmp_path / "api")
    assert_same_artefacts(cli, tmp_path / "api", {"surges.json", "surges.csv", "detect.png"})


def test_plan_write_equals_the_cli(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    data, events = inputs
    cli = tmp_path / "cli"
    argv = ["traffic", "plan", "--input", str(data), "--events", str(events)]
    flags = ["--capacity", "0.2", "--max", "20", "--name", "recs"]
    assert main([*argv, *FORECAST_FLAGS, *flags, "--output", str(cli)]) == 0
    result = plan_series(
        load_series(data),
        # `traffic plan` keeps 2 replicas at least (--min 2: with the PDB, one would block drains)
        PlanConfig(capacity_rps=0.2, max_replicas=20, min_replicas=2),
        forecast=FORECAST,
        events=load_events(events),
    )
    written = result.write(tmp_path / "api", name="recs")
    names = {"plan.json", "plan_steps.csv", "keda-scaledobject.yaml", "forecast.csv", "plan.png"}
    assert [p.name for p in written] == [
        "plan.json",
        "plan_steps.csv",
        "keda-scaledobject.yaml",
        "forecast.csv",
        "plan.png",
    ]
    assert_same_artefacts(cli, tmp_path / "api", names)
    plan = json.loads((tmp_path / "api" / "plan.json").read_text())
    assert plan["model"] == result.forecast.model
    assert plan["policy"]["scale_in"].startswith("reactive")
    assert "  name: recs\n" in (tmp_path / "api" / "keda-scaledobject.yaml").read_text()


def test_simulate_write_equals_the_cli(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    t = np.arange(4 * 288)  # 4 days of 5-minute sums, replayed per minute
    y = 3000 * (1 + 0.5 * np.sin(2 * np.pi * (t % 288) / 288)) + rng.normal(0, 50, len(t))
    idx = pd.date_range("2024-03-01", periods=len(y), freq="5min")
    data = tmp_path / "t.csv"
    pd.DataFrame({"ts": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "n": y.round()}).to_csv(
        data, index=False
    )
    cli = tmp_path / "cli"
    argv = ["traffic", "simulate", "--input", str(data), "--capacity", "2"]
    assert main([*argv, "--warmup", "2min", "--max", "40", "--output", str(cli)]) == 0
    res = simulate(
        load_series(data), SimulateConfig(capacity_rps=2, warmup="2min", max_replicas=40)
    )
    written = res.write(tmp_path / "api")
    assert [p.name for p in written] == ["simulation.json", "simulation.png"]
    assert_same_artefacts(cli, tmp_path / "api", {"simulation.json", "simulation.png"})
    sim = json.loads((tmp_path / "api" / "simulation.json").read_text())
    assert sim["series"]["source"] == str(data) and set(sim["policies"]) == {
        "hpa",
        "predictive",
        "hybrid",
    }


def test_simulate_reports_per_warmup_and_plan_json_carries_its_warmup(tmp_path: Path) -> None:
    from zenrec.traffic.simulate import WARMUPS, simulate_warmups

    rng = np.random.default_rng(6)
    t = np.arange(4 * 288)
    y = 3000 * (1 + 0.5 * np.sin(2 * np.pi * (t % 288) / 288)) + rng.normal(0, 50, len(t))
    idx = pd.date_range("2024-03-01", periods=len(y), freq="5min")
    data = tmp_path / "t.csv"
    pd.DataFrame({"ts": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "n": y.round()}).to_csv(
        data, index=False
    )
    argv = ["traffic", "simulate", "--input", str(data), "--capacity", "2", "--max", "40"]
    assert main([*argv, "--output", str(tmp_path / "cli")]) == 0
    sim = json.loads((tmp_path / "cli" / "simulation.json").read_text())
    assert [b["warmup"] for b in sim["by_warmup"]] == list(WARMUPS) == ["5min", "10min", "15min"]
    res = simulate_warmups(load_series(data), SimulateConfig(capacity_rps=2, max_replicas=40))
    for b, w in zip(res.by_warmup, WARMUPS):
        one = simulate(load_series(data), SimulateConfig(capacity_rps=2, max_replicas=40, warmup=w))
        assert b["policies"] == one.scores and b["warmup_s"] == 60 * int(w[:-3])
    # a longer warm-up leaves the reactive scaler overloaded at least as long
    over = [b["policies"]["hpa"]["overload_minutes"] for b in res.by_warmup]
    assert over == sorted(over)
    cfg = PlanConfig(capacity_rps=2, warmup="10min")
    result = plan_series(load_series(data), cfg, forecast=FORECAST)
    assert result.as_dict()["warmup"] == "10min" and result.as_dict()["warmup_s"] == 600.0
