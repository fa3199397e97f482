"""Conformal interval calibration and the online (causal) surge detector."""

from __future__ import annotations

import numpy as np
import pytest

from zenrec.traffic import DetectConfig, ForecastConfig, detect_anomalies, series_from_values
from zenrec.traffic.backtest import backtest
from zenrec.traffic.calibration import ConformalCalibrator
from zenrec.traffic.detect import online_scores
from zenrec.traffic.forecast import forecast_series


def noisy_daily(days: int, sigma: float, seed: int) -> np.ndarray:
    """Hourly daily cycle plus Student-t noise (df=3) of known scale: heavy tails on purpose."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    return 500 + 200 * np.sin(2 * np.pi * t / 24) + sigma * rng.standard_t(3, len(t))


def test_calibrator_quantiles_and_blocks() -> None:
    step = np.repeat(np.arange(4), 50)  # 50 scores per lead step
    s95 = np.tile(np.linspace(0.02, 1.0, 50), 4) * np.repeat([1.0, 1.0, 3.0, 3.0], 50)
    cal = ConformalCalibrator.fit(step, s95 / 2, s95, [2, 4], min_scores=20)
    # ceil(101 * 0.95) = 96th of 100 sorted scores in each block
    assert cal.q95[0] == pytest.approx(np.sort(s95[:100])[95])
    assert cal.q95[1] == pytest.approx(np.sort(s95[100:])[95])
    assert cal.n == [100, 100]
    _m80, m95 = cal.multipliers(6)
    # each block's quantile sits at its middle lead (0.5 and 2.5); linear in between, so the
    # band changes smoothly instead of jumping at the block edge
    assert m95[0] == pytest.approx(cal.q95[0]) and list(m95[3:]) == [cal.q95[1]] * 3
    np.testing.assert_allclose(
        m95[1:3], cal.q95[0] + (cal.q95[1] - cal.q95[0]) * np.array([0.25, 0.75])
    )
    # too few scores per block: blocks merge
    merged = ConformalCalibrator.fit(step[:30], s95[:30] / 2, s95[:30], [1, 2, 4], min_scores=20)
    assert merged.n == [30, 30, 30]


def test_calibrated_coverage_near_nominal_without_leakage() -> None:
    s = series_from_values(noisy_daily(70, 30.0, seed=3), freq="1h")
    bt = backtest(
        s, 24, models=["SeasonalNaive"], input_size=14 * 24, windows=50, step=24, min_train=14 * 24
    )
    full = next(r for r in bt.table("1d") if r["model"] == "SeasonalNaive")
    # each origin is calibrated on earlier origins only: the first one cannot be
    assert full["cal_windows"] == full["windows"] - 1
    assert abs(full["cal_coverage95"] - 0.95) <= 0.035
    assert abs(full["cal_coverage80"] - 0.80) <= 0.06
    # the raw Gaussian intervals miss the nominal level on t-noise; calibration moves towards it
    assert abs(full["cal_coverage80"] - 0.80) < abs(full["raw_coverage80"] - 0.80)


def test_forecast_series_applies_calibration() -> None:
    s = series_from_values(noisy_daily(30, 30.0, seed=4), freq="1h")
    cfg = ForecastConfig(horizon="24h", models=["SeasonalNaive", "AutoETS"], windows=4)
    res = forecast_series(s, cfg)
    assert res.calibrator is not None and any("conformally" in n for n in res.notes)
    raw = forecast_series(s, cfg.model_copy(update={"calibration": "none"}))
    assert raw.calibrator is None and raw.model == res.model
    ratio = (res.frame["hi95"] - res.frame["mean"]) / (raw.frame["hi95"] - raw.frame["mean"])
    _m80, m95 = res.calibrator.multipliers(24)
    # at lead 0 exactly the multiplier; later the never-narrowing running maximum of both
    # bands may differ, but stays within the multipliers' range
    assert ratio.iloc[0] == pytest.approx(m95[0], rel=1e-6)
    assert (ratio >= m95.min() * (1 - 1e-6)).all() and (ratio <= m95.max() * (1 + 1e-6)).all()
    f = res.frame
    assert (f["lo95"] <= f["lo80"]).all() and (f["hi80"] <= f["hi95"]).all()


SURGES = (24 * 12 + 9, 24 * 16 + 14, 24 * 19 + 2)


def test_online_detector_finds_surges_causally() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(21 * 24)
    y = 1000 * (1 + 0.5 * np.sin(2 * np.pi * t / 24)) + rng.normal(0, 20, len(t))
    for a in SURGES:
        y[a : a + 4] *= 2.0
    s = series_from_values(y, freq="1h")
    cfg = DetectConfig(mode="online", direction="surge", threshold=6.0, min_duration="2h")
    periods, z, _ = detect_anomalies(s, cfg)
    assert len(periods) == len(SURGES)
    for a, p in zip(SURGES, periods, strict=True):
        assert str(s.index[a]) == p.start
        assert p.alarm == str(s.index[a + 1])  # reported as soon as 2 h have been seen
    # causal: changing the future does not change past scores
    y2 = y.copy()
    y2[300:] += 5000
    z2, _, _ = online_scores(series_from_values(y2, freq="1h"), cfg)
    np.testing.assert_array_equal(z[:300], z2[:300])
    # gaps (irregular sensors) neither break a run nor get flagged
    y3 = y.copy()
    y3[SURGES[0] + 1] = np.nan
    p3, _, _ = detect_anomalies(series_from_values(y3, freq="1h"), cfg)
    assert p3[0].start == str(s.index[SURGES[0]]) and p3[0].alarm == str(s.index[SURGES[0] + 2])


def test_bands_never_narrow_and_change_smoothly() -> None:
    s = series_from_values(noisy_daily(30, 30.0, seed=5), freq="1h")
    cfg = ForecastConfig(horizon="48h", models=["SeasonalProfile"], windows=4)
    f = forecast_series(s, cfg).frame
    for lev in (80, 95):
        up = (f[f"hi{lev}"] - f["mean"]).to_numpy()
        down = (f["mean"] - f[f"lo{lev}"]).to_numpy()
        down = down[f[f"lo{lev}"].to_numpy() > 0]  # a bound clipped at zero may shrink
        assert (np.diff(up) >= -1e-9).all() and (np.diff(down) >= -1e-9).all()
    cal = ConformalCalibrator(ends=[6, 24, 48], q80=[1.0, 2.0, 1.5], q95=[1.0, 3.0, 2.0], n=[9] * 3)
    _m80, m95 = cal.multipliers(48)
    assert np.abs(np.diff(m95)).max() < 0.2  # no jump at the block edges (6, 24)
