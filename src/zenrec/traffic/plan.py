"""Turn a traffic forecast into a replica plan (predictive scale-out, reactive scale-in).

Contract (as AWS Predictive Scaling): the forecast sets a **floor** (minimum replicas) that is
raised ``warmup`` *before* each bucket that needs it; when the forecast falls, the floor is only
released -- replicas are removed by the reactive scaler on *observed* load, never on the
forecast alone.

Per-replica capacity comes from ``--capacity`` (requests/s one replica serves within the SLO) or
from the result of ``zenrec loadtest --output FILE.json`` (``--capacity-from``), see
:func:`load_capacity`: ``capacity_rps`` of a ramp when present, else ``achieved_rps`` of a
single run whose p99 and errors met the SLO.

The replica warm-up (how far ahead of demand a floor is raised) comes from ``--warmup`` or from
a measured bundle load time (``--warmup-from``: a saved ``/metrics`` scrape holding
``zenrec_model_load_seconds``, or a JSON record with ``model_load_seconds``), see
:func:`warmup_from_load`; the same measurement sizes the startup probe
(:func:`startup_probe_budget`).

The KEDA object scales on ``zenrec_users_served_total`` (users given a list in successful
answers; a batch counts each of its users), summed over the Deployment's pods as a
Prometheus-Operator PodMonitor (``deploy/k8s/podmonitor.yaml``) labels them: ``namespace`` and
``app_kubernetes_io_name`` (the pod label ``app.kubernetes.io/name``, copied by the PodMonitor's
``podTargetLabels``). See :func:`default_query`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from zenrec._arrays import unique
from zenrec._errors import ConfigError, DataError
from zenrec._io import atomic_write_text
from zenrec.traffic.events import EventCalendar
from zenrec.traffic.forecast import ForecastConfig, ForecastResult, forecast_series
from zenrec.traffic.series import TrafficSeries, parse_duration

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_PROMETHEUS",
    "KEDA_MIN_REPLICAS",
    "Plan",
    "PlanConfig",
    "PlanResult",
    "default_query",
    "keda_scaledobject",
    "load_capacity",
    "load_model_seconds",
    "plan_replicas",
    "plan_series",
    "startup_probe_budget",
    "warmup_from_load",
]

#: Prometheus address written into the KEDA trigger unless ``--prometheus-address`` says otherwise
#: (kube-prometheus-stack's service in the ``monitoring`` namespace).
DEFAULT_PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
#: Smallest ``minReplicaCount`` written for KEDA: with the PodDisruptionBudget's
#: ``minAvailable: 1``, one replica would block every node drain.
KEDA_MIN_REPLICAS = 2
#: Seconds a new pod needs besides loading its bundle (scheduling, pulling the image by digest
#: when not cached, the process start and the first readiness probe).
POD_START_OVERHEAD_S = 30.0


class PlanConfig(BaseModel):
    """Settings of ``zenrec traffic plan``.

    Attributes:
        capacity_rps: Requests/s one replica serves within the SLO.
        target_utilization: Fraction of capacity to plan for (headroom = 1 - this).
        warmup: Time a new replica needs before it takes traffic.
        hold: A raised floor is kept at least this long after the bucket that needed it
            (avoids flapping; scale-in is reactive anyway).
        min_replicas: Lower bound of the plan (``zenrec traffic plan`` defaults to 2: one
            replica would leave the PodDisruptionBudget no room for a node drain).
        max_replicas: Upper bound (``None``: unbounded; needs above it are reported).
        bound: Forecast column planned for (``hi80`` default: the 80 % upper bound).
        value_unit: ``count`` (requests per bucket, converted to rps) or ``rate`` (already rps).
    """

    model_config = ConfigDict(extra="forbid")

    capacity_rps: float = Field(gt=0)
    target_utilization: float = Field(default=0.7, gt=0, le=1)
    warmup: str = "5min"
    hold: str = "30min"
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int | None = Field(default=None, ge=1)
    bound: Literal["mean", "hi80", "hi95"] = "hi80"
    value_unit: Literal["count", "rate"] = "count"

    @model_validator(mode="after")
    def _check(self) -> PlanConfig:
        parse_duration(self.warmup, "warmup") if self.warmup not in ("0", "0s") else None
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError(
                f"--max {self.max_replicas} is below --min {self.min_replicas}; raise --max"
            )
        return self


def _positive(data: dict[str, Any], key: str, name: str) -> float:
    v = data.get(key)
    if not isinstance(v, int | float) or isinstance(v, bool) or not v > 0:
        raise DataError(
            f"{name}: field '{key}' must be a positive number, got {v!r}; expected a "
            '`zenrec loadtest --output` file like {"achieved_rps": 850, "p99_ms": 180, ...}'
        )
    return float(v)


def load_capacity(path: str | os.PathLike[str]) -> float:
    """Read a load-test result and return the per-replica capacity in requests/s.

    Accepts the output of ``zenrec loadtest --output FILE.json``: with ``--ramp`` the file has
    ``capacity_rps`` (the highest step rate whose p99 stayed within ``p99_target_ms`` without
    errors), which is used as is; otherwise ``achieved_rps`` of the single run is used,
    checked against ``slo_p99_ms`` (when given) and ``errors`` / ``error_rate``. A ``replicas``
    field (default 1) divides the total rate.

    Raises:
        DataError: Missing file/fields, a ramp in which no step met its target, or a run whose
            p99 or errors missed the SLO.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: file not found; pass --capacity-from with a load-test JSON"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{p.name}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{p.name}: expected a JSON object with 'achieved_rps' and 'p99_ms'")
    replicas = data.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise DataError(f"{p.name}: field 'replicas' must be a positive integer, got {replicas!r}")
    if "capacity_rps" in data or "steps" in data:
        if data.get("capacity_rps") is None:
            target = data.get("p99_target_ms")
            raise DataError(
                f"{p.name}: field 'capacity_rps' is missing or null: no ramp step kept p99 "
                f"within {target!r} ms without errors; rerun the ramp from a lower rate"
            )
        return _positive(data, "capacity_rps", p.name) / replicas
    achieved = _positive(data, "achieved_rps", p.name)
    p99 = _positive(data, "p99_ms", p.name)
    slo = data.get("slo_p99_ms")
    if slo is not None and p99 > slo:
        raise DataError(
            f"{p.name}: p99_ms {p99:g} exceeds slo_p99_ms {slo}: the SLO did not hold at "
            "this rate; use a load test at a lower rate"
        )
    err, max_err = data.get("error_rate"), data.get("max_error_rate")
    if err is not None and max_err is not None and err > max_err:
        raise DataError(
            f"{p.name}: error_rate {err} exceeds max_error_rate {max_err}; use a passing load test"
        )
    errors = data.get("errors")
    if isinstance(errors, int | float) and errors > 0 and max_err is None and err is None:
        raise DataError(
            f"{p.name}: the load test had {errors:g} errors (errors_by_kind: "
            f"{data.get('errors_by_kind')!r}); its achieved_rps is not a capacity within the "
            "SLO; use a run without errors or a --ramp result (capacity_rps)"
        )
    return achieved / replicas


@dataclass
class Plan:
    """A replica plan.

    Attributes:
        schedule: Change points: ``{"at", "min_replicas", "action"}`` (``scale_out`` raises the
            floor ahead of demand; ``release_floor`` lowers it, scale-in then follows observed
            load).
        steps: Per-bucket table: ``ts, load_rps, needed, floor``.
        current_replicas: Replicas the last observed load needs.
        peak_replicas: Largest floor in the plan.
        capped: Buckets whose need exceeded ``max_replicas``.
    """

    schedule: list[dict[str, Any]]
    steps: pd.DataFrame
    current_replicas: int
    peak_replicas: int
    capped: int
    config: PlanConfig
    notes: list[str] = field(default_factory=list)
    load_seconds: float | None = None
    """Measured bundle load time the warm-up was derived from (``None``: a given warm-up)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (schedule plus settings)."""
        extra: dict[str, Any] = {}
        if self.load_seconds is not None:
            extra = {
                "model_load_seconds": self.load_seconds,
                "startup_probe": startup_probe_budget(self.load_seconds),
            }
        return extra | {
            "policy": {
                "scale_out": "predictive: floor raised warmup ahead of forecast need",
                "scale_in": "reactive only: floors are released, replicas follow observed load",
            },
            "config": self.config.model_dump(),
            "warmup": self.config.warmup,
            "warmup_s": _warmup_seconds(self.config.warmup),
            "current_replicas": self.current_replicas,
            "peak_replicas": self.peak_replicas,
            "capped_buckets": self.capped,
            "schedule": self.schedule,
            "notes": self.notes,
        }


def _warmup_seconds(text: str) -> float:
    """The warm-up in seconds (``0``/``0s``: none)."""
    return 0.0 if text in ("0", "0s") else parse_duration(text, "warmup")


def _need(rps: np.ndarray, cfg: PlanConfig) -> tuple[np.ndarray, int]:
    raw = np.ceil(np.maximum(rps, 0.0) / (cfg.capacity_rps * cfg.target_utilization) - 1e-9)
    raw = np.maximum(raw, cfg.min_replicas)
    capped = 0
    if cfg.max_replicas is not None:
        capped = int((raw > cfg.max_replicas).sum())
        raw = np.minimum(raw, cfg.max_replicas)
    return raw.astype(int), capped


def plan_replicas(
    frame: pd.DataFrame,
    step_seconds: float,
    last_observed: float,
    config: PlanConfig,
) -> Plan:
    """Compute the replica floor over the forecast horizon.

    Args:
        frame: Forecast (``ts, mean, hi80, hi95``) in series units per bucket.
        step_seconds: Bucket width.
        last_observed: Last observed bucket value (series units), for the current replicas.
        config: Plan settings.

    Returns:
        The plan; the floor during bucket ``j`` is in place from ``ts_j - warmup``.
    """
    import pandas as pd

    cfg = config
    if len(frame) == 0:
        raise DataError("forecast is empty; nothing to plan")
    div = step_seconds if cfg.value_unit == "count" else 1.0
    rps = frame[cfg.bound].to_numpy(dtype=float) / div
    need, capped = _need(rps, cfg)
    cur, _ = _need(np.array([last_observed / div if np.isfinite(last_observed) else 0.0]), cfg)
    current = int(cur[0])
    warm = 0.0 if cfg.warmup in ("0", "0s") else parse_duration(cfg.warmup, "warmup")
    ts = pd.DatetimeIndex(frame["ts"])
    t_ns = ts.asi8
    origin = int(t_ns[0])
    step_ns = int(round(step_seconds * 1e9))
    warm_ns = int(round(warm * 1e9))
    hold_ns = (
        int(round(parse_duration(cfg.hold, "hold") * 1e9)) if cfg.hold not in ("0", "0s") else 0
    )
    # floor(t) = max need_j over buckets j with ts_j - warmup <= t < ts_j + step + hold
    end_ns = t_ns + step_ns + hold_ns
    cand = unique(np.concatenate([t_ns - warm_ns, end_ns, [origin]]))
    cand = cand[(cand >= origin) & (cand < t_ns[-1] + step_ns)]
    active = (t_ns[None, :] - warm_ns <= cand[:, None]) & (cand[:, None] < end_ns[None, :])
    floor_at = np.where(active, need[None, :], 0).max(axis=1)
    floor_at = np.maximum(floor_at, cfg.min_replicas)
    schedule: list[dict[str, Any]] = []
    prev = current
    tz = ts.tz
    for t, f in zip(cand, floor_at):
        if f == prev:
            continue
        at = (
            pd.Timestamp(int(t), tz="UTC").tz_convert(tz)
            if tz is not None
            else pd.Timestamp(int(t))
        )
        schedule.append(
            {
                "at": str(at),
                "min_replicas": int(f),
                "action": "scale_out" if f > prev else "release_floor",
            }
        )
        prev = int(f)
    per_bucket_floor = np.array(
        [floor_at[np.searchsorted(cand, t, side="right") - 1] for t in t_ns], dtype=int
    )
    steps = pd.DataFrame(
        {"ts": frame["ts"], "load_rps": rps, "needed": need, "floor": per_bucket_floor}
    )
    notes = []
    if capped:
        notes.append(f"{capped} buckets need more than --max {cfg.max_replicas} replicas")
    if warm >= step_seconds:
        notes.append("warm-up is at least one bucket: floors rise one or more buckets early")
    return Plan(
        schedule=schedule,
        steps=steps,
        current_replicas=current,
        peak_replicas=int(max(floor_at.max(), current)),
        capped=capped,
        config=cfg,
        notes=notes,
    )


def load_model_seconds(path: str | os.PathLike[str]) -> float:
    """Read a measured bundle load time, in seconds.

    Accepts a saved ``/metrics`` scrape of a running service (``curl .../metrics > m.txt``; the
    gauge ``zenrec_model_load_seconds``, the largest value when several processes report) or a
    JSON object with ``model_load_seconds`` (or ``load_seconds``, as ``/admin/reload`` answers).

    Raises:
        DataError: Missing file, no such value, or a value that is not a positive number.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"{path}: file not found; pass --warmup-from a saved /metrics scrape or a JSON "
            "with model_load_seconds"
        ) from None
    values: list[float] = []
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{p.name}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        key = "model_load_seconds" if "model_load_seconds" in data else "load_seconds"
        return _positive(data, key, p.name)
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name.split("{")[0] == "zenrec_model_load_seconds" and rest.strip():
            try:
                values.append(float(rest.split()[0]))
            except ValueError:
                continue
    if not values or not max(values) > 0:
        raise DataError(
            f"{p.name}: no positive zenrec_model_load_seconds sample; save the /metrics page of "
            "a service that has loaded its bundle (curl http://POD:8000/metrics > FILE)"
        )
    return max(values)


def warmup_from_load(load_seconds: float, overhead_s: float = POD_START_OVERHEAD_S) -> str:
    """The warm-up of a replica from its measured bundle load time: ``overhead_s + 2 x load``
    (the factor covers a node busier than the one measured), rounded up to whole seconds.

    Example:
        >>> warmup_from_load(12.3)
        '55s'
    """
    return f"{math.ceil(overhead_s + 2.0 * load_seconds)}s"


def startup_probe_budget(load_seconds: float, period_s: int = 2) -> dict[str, int]:
    """``startupProbe`` settings whose budget (``period x failureThreshold``) is three times
    the measured load time plus 30 s, so a slow node does not kill a pod that is loading.

    Example:
        >>> startup_probe_budget(20.0)
        {'periodSeconds': 2, 'failureThreshold': 45}
    """
    budget = 3.0 * load_seconds + 30.0
    return {"periodSeconds": period_s, "failureThreshold": max(3, math.ceil(budget / period_s))}


def default_query(
    name: str = "zenrec-serve", namespace: str = "default", window: str = "2m"
) -> str:
    """Users served per second by every pod of Deployment ``name`` in ``namespace``.

    The labels are those a Prometheus-Operator PodMonitor gives the pods' series: ``namespace``
    and ``app_kubernetes_io_name`` (``podTargetLabels: [app.kubernetes.io/name]``).

    Example:
        >>> q = default_query("zenrec-serve", "recs")
        >>> q.startswith("sum(rate(zenrec_users_served_total{") and q.endswith("}[2m]))")
        True
        >>> q[q.index("{") : q.index("}") + 1]
        '{namespace="recs",app_kubernetes_io_name="zenrec-serve"}'
    """
    return (
        f'sum(rate(zenrec_users_served_total{{namespace="{namespace}",'
        f'app_kubernetes_io_name="{name}"}}[{window}]))'
    )


def _cron(ts: pd.Timestamp) -> str:
    return f"{ts.minute} {ts.hour} {ts.day} {ts.month} *"


def keda_scaledobject(
    plan: Plan,
    name: str = "zenrec-serve",
    timezone: str = "UTC",
    prometheus_query: str | None = None,
    *,
    namespace: str = "default",
    prometheus_address: str = DEFAULT_PROMETHEUS,
) -> str:
    """Render a KEDA ``ScaledObject`` (YAML text) implementing the plan.

    Each raised floor becomes a ``cron`` trigger (start/end/desiredReplicas) and a
    ``prometheus`` trigger scales on observed load at ``capacity * target_utilization`` per
    replica (``AverageValue``: KEDA divides the query's total by the threshold); KEDA takes the
    maximum, so scale-in follows observed load only. Cron fields carry day and month, so
    regenerate the object when the forecast is refreshed.

    An empty query result is an error (``ignoreNullValues: "false"``), not zero load: after 3
    failed reads KEDA holds the ``fallback`` replicas (the plan's peak) until the metric is back.
    ``minReplicaCount`` is at least :data:`KEDA_MIN_REPLICAS`.

    Args:
        plan: The replica plan.
        name: Deployment (and ScaledObject) name.
        timezone: Time zone of the cron triggers.
        prometheus_query: PromQL of the load in requests/s (default: :func:`default_query`).
        namespace: Namespace of the Deployment (in the default query's selector).
        prometheus_address: URL of the Prometheus server KEDA queries.
    """
    import pandas as pd

    cfg = plan.config
    per_replica = cfg.capacity_rps * cfg.target_utilization
    query = prometheus_query or default_query(name, namespace)
    lo = max(cfg.min_replicas, KEDA_MIN_REPLICAS)
    hi = max(cfg.max_replicas or plan.peak_replicas, lo)
    fallback = min(max(plan.peak_replicas, lo), hi)
    lines = [
        "# Generated by `zenrec traffic plan`: predictive floors (cron) + reactive scaling on",
        "# observed load (prometheus). Regenerate when the forecast is refreshed.",
        "apiVersion: keda.sh/v1alpha1",
        "kind: ScaledObject",
        "metadata:",
        f"  name: {name}",
        f"  namespace: {namespace}",
        "spec:",
        "  scaleTargetRef:",
        f"    name: {name}",
        f"  minReplicaCount: {lo}",
        f"  maxReplicaCount: {hi}",
        "  fallback:",
        "    failureThreshold: 3",
        f"    replicas: {fallback}",
        "  advanced:",
        "    horizontalPodAutoscalerConfig:",
        "      behavior:",
        "        scaleDown:",
        "          stabilizationWindowSeconds: 300",
        "  triggers:",
        "    - type: prometheus",
        "      metricType: AverageValue",
        "      metadata:",
        f"        serverAddress: {prometheus_address}",
        "        query: '" + query.replace("'", "''") + "'",
        f'        threshold: "{per_replica:g}"',
        '        ignoreNullValues: "false"',
    ]
    sched = plan.schedule
    end_of_plan = pd.Timestamp(plan.steps["ts"].iloc[-1])
    for i, ev in enumerate(sched):
        if ev["min_replicas"] <= lo:
            continue
        start = pd.Timestamp(ev["at"])
        end = pd.Timestamp(sched[i + 1]["at"]) if i + 1 < len(sched) else end_of_plan
        if start.tzinfo is not None:
            start, end = start.tz_convert(timezone), end.tz_convert(timezone)
        if end <= start:
            continue
        lines += [
            "    - type: cron",
            "      metadata:",
            f"        timezone: {timezone}",
            f'        start: "{_cron(start)}"',
            f'        end: "{_cron(end)}"',
            f'        desiredReplicas: "{ev["min_replicas"]}"',
        ]
    return "\n".join(lines) + "\n"


@dataclass
class PlanResult:
    """Output of :func:`plan_series`: the replica plan and the forecast it was made from.

    Attributes:
        plan: The replica plan.
        forecast: The forecast the plan follows.
        series: The series the forecast was made from.
    """

    plan: Plan
    forecast: ForecastResult
    series: TrafficSeries = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The ``plan.json`` payload: the plan, the forecast model and the series report."""
        return self.plan.as_dict() | {
            "model": self.forecast.model,
            "series": self.series.report.as_dict(),
        }

    def write(
        self,
        directory: str | os.PathLike[str],
        *,
        name: str = "zenrec-serve",
        namespace: str = "default",
        prometheus_address: str = DEFAULT_PROMETHEUS,
        prometheus_query: str | None = None,
    ) -> list[Path]:
        """Write ``plan.json``, ``plan_steps.csv``, ``keda-scaledobject.yaml``,
        ``forecast.csv`` and ``plan.png`` (each atomically).

        Args:
            directory: Output directory (created when missing).
            name: Deployment name in the KEDA ``ScaledObject``.
            namespace: Namespace of the Deployment (selects its pods' series in the query).
            prometheus_address: Prometheus server KEDA queries.
            prometheus_query: Query KEDA scales on (default: :func:`default_query`).

        Returns:
            The paths written, in that order.
        """
        from zenrec.traffic.plots import plot_plan

        out = Path(directory)
        names = ("plan.json", "plan_steps.csv", "keda-scaledobject.yaml", "forecast.csv")
        paths = [out / n for n in (*names, "plan.png")]
        atomic_write_text(paths[0], json.dumps(self.as_dict(), indent=2, default=str) + "\n")
        atomic_write_text(paths[1], self.plan.steps.to_csv(index=False))
        index = self.series.index
        tz = str(index.tz) if index.tz is not None else "UTC"
        keda = keda_scaledobject(
            self.plan,
            name,
            tz,
            prometheus_query,
            namespace=namespace,
            prometheus_address=prometheus_address,
        )
        atomic_write_text(paths[2], keda)
        atomic_write_text(paths[3], self.forecast.table().to_csv(index=False))
        plot_plan(
            paths[4],
            self.plan,
            series=self.series,
            frame=self.forecast.frame,
            events=self.forecast.event_windows,
        )
        return paths


def plan_series(
    series: TrafficSeries,
    config: PlanConfig,
    *,
    forecast: ForecastConfig | None = None,
    events: EventCalendar | None = None,
) -> PlanResult:
    """Forecast ``series`` and plan the replicas over the horizon.

    Args:
        series: The regular series.
        config: Plan settings (capacity, utilization, warm-up, bounds).
        forecast: Forecast settings (default :class:`ForecastConfig`).
        events: Known events (the forecast's uplift, shaded in the plot).

    Returns:
        The plan and its forecast; :meth:`PlanResult.write` writes their artefacts.
    """
    res = forecast_series(series, forecast or ForecastConfig(), events=events)
    obs = series.values[np.isfinite(series.values)]
    last = float(obs[-1]) if len(obs) else math.nan
    plan = plan_replicas(res.frame, series.step_seconds, last, config)
    return PlanResult(plan=plan, forecast=res, series=series)


def replicas_for(rate_rps: float, capacity_rps: float, target_utilization: float) -> int:
    """Replicas needed for ``rate_rps`` at ``target_utilization`` of ``capacity_rps`` each."""
    if capacity_rps <= 0 or not 0 < target_utilization <= 1:
        raise ConfigError("capacity must be > 0 and target utilization in (0, 1]")
    return max(0, math.ceil(rate_rps / (capacity_rps * target_utilization) - 1e-9))
