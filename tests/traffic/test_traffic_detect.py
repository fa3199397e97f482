"""Causal (online) surge detection: planted surges are found within minutes, a quiet noisy
series raises (almost) no alarm, and no alarm depends on data after it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zenrec.traffic import DetectConfig, detect_anomalies, series_from_values
from zenrec.traffic.detect import online_scores

DAYS = 28
STEP = 300  # 5-minute buckets
PER_DAY = 86400 // STEP

NAB_TUNED = DetectConfig(
    mode="online",
    smooth="15min",
    adaptive_quantile=0.999,
    cooldown="1d",
    threshold=3.0,
    min_ratio=3.0,
)
"""Settings of the kind the NAB evaluation chooses (benchmarks/traffic_eval.py)."""


def counts(seed: int, surges: dict[int, float] | None = None) -> np.ndarray:
    """Poisson request counts per 5 min: a daily cycle (40 at night, 200 by day), quieter
    weekends, and 2-hour surges multiplying the rate (bucket index -> factor)."""
    rng = np.random.default_rng(seed)
    t = np.arange(DAYS * PER_DAY)
    hour = (t % PER_DAY) / (PER_DAY / 24)
    rate = 40 + 160 * np.clip(np.sin(np.pi * (hour - 6) / 14), 0, None)
    rate = rate * np.where((t // PER_DAY) % 7 >= 5, 0.7, 1.0)
    for start, factor in (surges or {}).items():
        rate[start : start + 24] *= factor
    return rng.poisson(rate).astype(float)


def alarms(y: np.ndarray, cfg: DetectConfig) -> list[pd.Timestamp]:
    s = series_from_values(y, freq="5min")
    periods, _, _ = detect_anomalies(s, cfg)
    return [pd.Timestamp(p.alarm) for p in periods if p.kind == "surge"]


def _index() -> pd.DatetimeIndex:
    return series_from_values(np.ones(DAYS * PER_DAY), freq="5min").index


# surges at different times of day, each scoring higher than the one before (the adaptive
# quantile alarms on what is rare in the series' own past, so each needs a new extreme; the
# z-score's spread is the whole day's, so a night surge needs a larger factor)
PLANTED = {
    PER_DAY * 8 + 12 * 12: 3.5,  # day 8, 12:00 (z about 35)
    PER_DAY * 13 + 3 * 12: 16.0,  # day 13, 03:00: a surge on the night level (z about 43)
    PER_DAY * 19 + 17 * 12: 6.5,  # day 19, 17:00 (z about 55)
    PER_DAY * 24 + 9 * 12: 8.0,  # day 24, 09:00 (z about 69)
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_surges_alarm_within_15_minutes(seed: int) -> None:
    got = alarms(counts(seed, PLANTED), NAB_TUNED)
    idx = _index()
    for start in PLANTED:
        t0 = idx[start]
        assert any(t0 <= a <= t0 + pd.Timedelta("15min") for a in got), (seed, str(t0), got)
    # and nothing else: at most one alarm outside the surges in four weeks
    outside = [a for a in got if not any(idx[s] <= a < idx[s + 24] for s in PLANTED)]
    assert len(outside) <= 1, outside


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_a_quiet_noisy_series_raises_at_most_one_alarm(seed: int) -> None:
    assert len(alarms(counts(seed), NAB_TUNED)) <= 1


def test_equal_surges_all_alarm_with_a_fixed_threshold() -> None:
    # without the adaptive quantile, the z threshold alone finds repeated equal surges
    planted = dict.fromkeys(PLANTED, 4.0)
    cfg = NAB_TUNED.model_copy(update={"adaptive_quantile": 0.0, "threshold": 6.0})
    got = alarms(counts(7, planted), cfg)
    idx = _index()
    for start in planted:
        assert any(idx[start] <= a <= idx[start] + pd.Timedelta("15min") for a in got)
    assert len(got) <= len(planted) + 1


def test_scores_are_causal() -> None:
    # the score of a bucket is the same whether or not later data exists
    y = counts(8, PLANTED)
    cut = PER_DAY * 20
    full = series_from_values(y, freq="5min")
    head = series_from_values(y[:cut], freq="5min")
    z_full, exp_full, lim_full = online_scores(full, NAB_TUNED)
    z_head, exp_head, lim_head = online_scores(head, NAB_TUNED)
    np.testing.assert_allclose(z_full[:cut], z_head, equal_nan=True)
    np.testing.assert_allclose(exp_full[:cut], exp_head, equal_nan=True)
    np.testing.assert_allclose(lim_full[:cut], lim_head, equal_nan=True)


def test_cli_passes_the_online_settings(tmp_path) -> None:
    import json

    from zenrec.cli.main import main

    idx = _index()
    y = counts(9, PLANTED)
    pd.DataFrame({"timestamp": idx, "value": y}).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "out"
    args = ["traffic", "detect", "--input", str(tmp_path / "t.csv"), "--no-forecast"]
    args += ["--mode", "online", "--smooth", "15min", "--adaptive-quantile", "0.999"]
    args += ["--min-ratio", "3", "--cooldown", "1d", "--threshold", "3", "--output", str(out)]
    assert main(args) == 0
    doc = json.loads((out / "surges.json").read_text())
    assert doc["config"] | NAB_TUNED.model_dump() == doc["config"]  # the settings arrived
    alarms_cli = [p["alarm"] for p in doc["periods"] if p["kind"] == "surge"]
    assert alarms_cli == [str(a) for a in alarms(y, NAB_TUNED)]


def test_log_transform_scores_log_counts_and_reports_expected_in_units() -> None:
    y = counts(10, PLANTED)
    cfg = NAB_TUNED.model_copy(update={"transform": "log"})
    z, expected, limit = online_scores(series_from_values(y, freq="5min"), cfg)
    # the same scores as the untransformed detector run on log(1 + y)
    on_log = series_from_values(np.log1p(y), freq="5min")
    z_log, exp_log, _ = online_scores(on_log, NAB_TUNED.model_copy(update={"min_ratio": 1.0}))
    np.testing.assert_allclose(z, z_log, equal_nan=True)
    np.testing.assert_allclose(expected, np.expm1(exp_log), equal_nan=True)
    # the ratio rule compares counts with the expected count
    ok = np.isfinite(expected)
    ratio = (y[ok] + 1) / (np.maximum(expected[ok], 0) + 1)
    small = (ratio < 3.0) & (ratio > 1 / 3.0)
    assert small.any() and (~small).any()
    assert np.isinf(limit[ok][small]).all() and np.isfinite(limit[ok][~small]).all()


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_a_night_surge_that_doubles_the_rate_stands_out_on_the_log_scale(seed: int) -> None:
    # on the raw scale the spread is the busy day's, so doubling a quiet night's rate scores
    # below the day's noise; on the log scale it scores above every other bucket
    start = PER_DAY * 15 + 2 * 12  # day 15, 02:00, for 2 hours
    s = series_from_values(counts(seed, {start: 2.0}), freq="5min")
    inside = np.zeros(s.n, dtype=bool)
    inside[start : start + 24] = True
    inside[: 3 * PER_DAY] = True  # the first days: no history yet
    top = {}
    for tr in ("none", "log"):
        cfg = DetectConfig(mode="online", smooth="15min", transform=tr)
        z = online_scores(s, cfg)[0]
        top[tr] = (np.nanmax(z[start : start + 24]), np.nanmax(z[~inside]))
    assert top["log"][0] > top["log"][1], top
    assert top["none"][0] < top["none"][1], top


def test_cli_passes_the_transform(tmp_path) -> None:
    import json

    from zenrec.cli.main import main

    y = counts(9)
    pd.DataFrame({"timestamp": _index(), "value": y}).to_csv(tmp_path / "t.csv", index=False)
    args = ["traffic", "detect", "--input", str(tmp_path / "t.csv"), "--no-forecast"]
    args += ["--mode", "online", "--transform", "log", "--output", str(tmp_path / "out")]
    assert main(args) == 0
    doc = json.loads((tmp_path / "out" / "surges.json").read_text())
    assert doc["config"]["transform"] == "log"
