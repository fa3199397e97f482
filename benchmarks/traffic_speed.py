"""Seconds to fit and forecast 14 days of 1-minute traffic (48 h ahead), median of 3 runs.

Usage: OMP_NUM_THREADS=1 python benchmarks/traffic_speed.py   (traffic_eval.py --only speed
puts the same lines in docs/results/traffic.md)
"""

from __future__ import annotations

import platform
import statistics
import time

import numpy as np

from zenrec.traffic.candidates import fit_predict
from zenrec.traffic.forecast import ForecastConfig, forecast_series
from zenrec.traffic.series import series_from_values


def speed_lines() -> list[str]:
    """One line per model (median of 3 runs), one for the whole ``forecast_series``."""
    lines = []
    n = 14 * 1440
    rng = np.random.default_rng(0)
    t = np.arange(n)
    y = 200 + 80 * np.sin(2 * np.pi * t / 1440) + 30 * np.sin(2 * np.pi * t / 10080)
    y = rng.poisson(np.clip(y, 1, None)).astype(float)
    seasons = {"daily": 1440, "weekly": 10080}
    fit_predict("SeasonalNaive", y[:3000], 10, {"daily": 1440})  # warm imports
    for model in ("MSTL", "AutoETS", "SeasonalNaive"):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = fit_predict(model, y, 2880, seasons)
            times.append(time.perf_counter() - t0)
            assert out is not None
        lines.append(
            f"{model}: fit+forecast 14d of 1-min data, h=48h: median "
            f"{statistics.median(times):.2f}s (runs {', '.join(f'{x:.2f}' for x in times)})"
        )
    s = series_from_values(y, freq="1min")
    t0 = time.perf_counter()
    res = forecast_series(s, ForecastConfig(horizon="48h", models=["MSTL", "AutoETS"], windows=3))
    lines.append(
        f"full forecast_series (3-origin backtest of 3 models + final fit): "
        f"{time.perf_counter() - t0:.1f}s, chosen {res.model}"
    )
    lines.append(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}")
    return lines


def main() -> None:
    print("\n".join(speed_lines()))


if __name__ == "__main__":
    main()
