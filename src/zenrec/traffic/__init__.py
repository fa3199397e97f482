"""Traffic forecasting, surge detection and capacity planning for the serving tier.

Heavy dependencies (pandas, statsforecast, matplotlib) are imported lazily inside functions.
See ``docs/traffic.md``.
"""

from __future__ import annotations

from zenrec.traffic.detect import (
    Alert,
    DetectConfig,
    Period,
    detect_anomalies,
    surge_alerts,
    surge_lead_times,
)
from zenrec.traffic.events import EventCalendar, load_events
from zenrec.traffic.forecast import (
    BacktestResult,
    ForecastConfig,
    ForecastResult,
    backtest,
    forecast_series,
)
from zenrec.traffic.plan import Plan, PlanConfig, keda_scaledobject, load_capacity, plan_replicas
from zenrec.traffic.series import (
    SeriesReport,
    TrafficSeries,
    fill_gaps,
    load_series,
    parse_duration,
    series_from_values,
)
from zenrec.traffic.simulate import SimulateConfig, SimulationResult, simulate

__all__ = [
    "Alert",
    "BacktestResult",
    "DetectConfig",
    "EventCalendar",
    "ForecastConfig",
    "ForecastResult",
    "Period",
    "Plan",
    "PlanConfig",
    "SeriesReport",
    "SimulateConfig",
    "SimulationResult",
    "TrafficSeries",
    "backtest",
    "detect_anomalies",
    "fill_gaps",
    "forecast_series",
    "keda_scaledobject",
    "load_capacity",
    "load_events",
    "load_series",
    "parse_duration",
    "plan_replicas",
    "series_from_values",
    "simulate",
    "surge_alerts",
    "surge_lead_times",
]
