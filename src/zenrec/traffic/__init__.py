"""Traffic forecasting, surge detection and capacity planning for the serving tier.

Heavy dependencies (pandas, statsforecast, matplotlib) are imported lazily inside functions.
See ``docs/traffic.md``.
"""

from __future__ import annotations

from zenrec.traffic.backtest import BacktestResult, backtest
from zenrec.traffic.detect import (
    Alert,
    DetectConfig,
    DetectReport,
    Period,
    detect_anomalies,
    detect_surges,
    surge_alerts,
    surge_lead_times,
)
from zenrec.traffic.events import EventCalendar, load_events
from zenrec.traffic.forecast import ForecastConfig, ForecastResult, forecast_series
from zenrec.traffic.plan import (
    Plan,
    PlanConfig,
    PlanResult,
    keda_scaledobject,
    load_capacity,
    plan_replicas,
    plan_series,
)
from zenrec.traffic.readers import load_series
from zenrec.traffic.series import (
    SeriesReport,
    TrafficSeries,
    fill_gaps,
    parse_duration,
    series_from_values,
)
from zenrec.traffic.simulate import SimulateConfig, SimulationResult, simulate, simulate_warmups

__all__ = [
    "Alert",
    "BacktestResult",
    "DetectConfig",
    "DetectReport",
    "EventCalendar",
    "ForecastConfig",
    "ForecastResult",
    "Period",
    "Plan",
    "PlanConfig",
    "PlanResult",
    "SeriesReport",
    "SimulateConfig",
    "SimulationResult",
    "TrafficSeries",
    "backtest",
    "detect_anomalies",
    "detect_surges",
    "fill_gaps",
    "forecast_series",
    "keda_scaledobject",
    "load_capacity",
    "load_events",
    "load_series",
    "parse_duration",
    "plan_replicas",
    "plan_series",
    "series_from_values",
    "simulate",
    "simulate_warmups",
    "surge_alerts",
    "surge_lead_times",
]
