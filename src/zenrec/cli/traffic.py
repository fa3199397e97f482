"""``zenrec traffic``: forecast serving traffic, flag surges, plan replicas.

Heavy imports (pandas, statsforecast, matplotlib) stay inside the run functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]

EPILOG = """Examples:
  zenrec traffic forecast --input requests.jsonl --freq 5min --horizon 48h --output out/
  zenrec traffic detect --input traffic.csv --time-col ts --value-col n --output out/
  zenrec traffic plan --input traffic.csv --capacity 120 --warmup 5min --max 20 --output out/
  zenrec traffic plan --input logs/ --capacity-from loadtest.json --events events.csv
  zenrec traffic simulate --input traffic.csv --capacity 120 --warmup 5min --output sim/

Input: a directory of request logs (requests-*.jsonl, as `zenrec serve --request-log DIR`
writes), JSON lines {"ts": "2024-05-01T12:00:00Z"[, "count": 3]} (one request per line), or a
CSV/Parquet of timestamps or of (time, count) rows; see docs/traffic.md.
"""


def _add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input",
        required=True,
        help="request-log directory (requests-*.jsonl), a .jsonl log, or a CSV/Parquet file",
    )
    p.add_argument("--freq", default=None, help="bucket width: 1min, 5min, 1h (default: data step)")
    p.add_argument("--time-col", default=None, help="time column (default: detected)")
    p.add_argument("--value-col", default=None, help="count column (default: detected)")
    p.add_argument("--tz", default=None, help="time zone of naive timestamps, e.g. Europe/Berlin")
    p.add_argument(
        "--agg",
        choices=("sum", "mean", "max"),
        default=None,
        help="combine rows in one bucket (default sum)",
    )
    p.add_argument("--output", default=None, help="output directory (default: print only)")
    p.add_argument(
        "--events",
        default=None,
        help="CSV of known events name,start,end (past and future): uplift learned from "
        "past occurrences is added to the forecast",
    )


def _add_forecast_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--horizon", default="48h", help="forecast horizon (default 48h)")
    p.add_argument("--history", default="14d", help="most recent history fitted (default 14d)")
    p.add_argument(
        "--models",
        default="SeasonalProfile,MSTL,AutoETS,AutoARIMA",
        help="candidate models, comma separated (baselines Naive, SeasonalNaive, "
        "SeasonalNaiveWeekly, WindowAverage are always added; also AutoTheta, AutoCES)",
    )
    p.add_argument(
        "--combine",
        choices=("by_block", "by_lead", "best"),
        default="by_block",
        help="by_block: each lead-time block from its backtest winner (default); by_lead: "
        "inverse-error mean of each block's 3 best; best: one model",
    )
    p.add_argument("--windows", type=int, default=20, help="daily backtest origins (default 20)")
    p.add_argument("--seasonality", default="auto", help="auto, none, daily, weekly, daily,weekly")


def register(subparsers: Any) -> None:
    """Add the ``traffic`` command with ``forecast``, ``detect`` and ``plan`` sub-commands."""
    parser = subparsers.add_parser(
        "traffic",
        help="forecast serving traffic, flag surges, plan replicas",
        description="Forecast request traffic (statsforecast models chosen by rolling-origin "
        "backtest), flag surges in history and ahead, and turn the forecast into a replica plan.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="traffic_command", metavar="ACTION", parser_class=type(parser))
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    pf = sub.add_parser(
        "forecast",
        help="forecast with intervals; backtest the models",
        description="Backtest the candidate models, forecast with the best one.",
        epilog="Example:\n  zenrec traffic forecast --input t.csv --output out/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_args(pf)
    _add_forecast_args(pf)
    pf.set_defaults(func=run_forecast)

    pd_ = sub.add_parser(
        "detect",
        help="flag surges in history and alert on forecast surges",
        description="Flag anomalous periods in history (robust z-score of "
        "seasonal residuals) and forward surge alerts from the forecast.",
        epilog="Example:\n  zenrec traffic detect --input t.csv --output out/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_args(pd_)
    _add_forecast_args(pd_)
    pd_.add_argument("--threshold", type=float, default=None, help="robust z threshold")
    pd_.add_argument(
        "--mode",
        choices=("batch", "online"),
        default=None,
        help="batch: whole history (default); online: causal, each bucket scored from the past",
    )
    pd_.add_argument(
        "--max-anoms", type=float, default=None, help="batch: most flagged fraction of buckets"
    )
    pd_.add_argument(
        "--min-duration", default=None, help="online: candidates must last this long (e.g. 1h)"
    )
    pd_.add_argument(
        "--adaptive-quantile",
        type=float,
        default=None,
        help="online: |z| must also exceed this quantile of the series' past |z| (e.g. 0.999)",
    )
    pd_.add_argument(
        "--smooth", default=None, help="online: score the mean z over this trailing span (15min)"
    )
    pd_.add_argument(
        "--min-ratio",
        type=float,
        default=None,
        help="online: a candidate is at least this multiple of its expected value (e.g. 1.5)",
    )
    pd_.add_argument(
        "--transform",
        choices=["none", "log"],
        default=None,
        help="online: score log(1 + y) so busy hours' larger noise gets one scale (log)",
    )
    pd_.add_argument(
        "--cooldown", default=None, help="online: no new alarm this long after one (e.g. 1d)"
    )
    pd_.add_argument(
        "--jump-factor",
        type=float,
        default=None,
        help="alert when the upper bound exceeds this multiple of the seasonal norm",
    )
    cap = pd_.add_mutually_exclusive_group()
    cap.add_argument(
        "--capacity",
        type=float,
        default=None,
        help="current total capacity in requests/s (alert when exceeded)",
    )
    pd_.add_argument("--no-forecast", action="store_true", help="history only, no forward alerts")
    pd_.set_defaults(func=run_detect)

    pp = sub.add_parser(
        "plan",
        help="replica plan over the forecast horizon",
        description="Replicas needed over the horizon: scale out ahead of demand "
        "by the warm-up time; scale in only on observed load.",
        epilog="Example:\n  zenrec traffic plan --input t.csv --capacity 120 "
        "--max 20 --output out/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_args(pp)
    _add_forecast_args(pp)
    g = pp.add_mutually_exclusive_group(required=True)
    g.add_argument("--capacity", type=float, help="requests/s one replica serves within the SLO")
    g.add_argument("--capacity-from", help='load-test JSON {"achieved_rps":..,"p99_ms":..}')
    pp.add_argument("--target-utilization", type=float, default=0.7)
    w = pp.add_mutually_exclusive_group()
    w.add_argument("--warmup", default="5min", help="replica warm-up time (default 5min)")
    w.add_argument(
        "--warmup-from",
        metavar="FILE",
        help="warm-up from a measured bundle load time: a saved /metrics scrape "
        "(zenrec_model_load_seconds) or a JSON with model_load_seconds",
    )
    pp.add_argument("--hold", default="30min", help="keep a raised floor at least this long")
    pp.add_argument("--min", type=int, default=2, dest="min_replicas")
    pp.add_argument("--max", type=int, default=None, dest="max_replicas")
    pp.add_argument(
        "--bound",
        choices=("mean", "hi80", "hi95"),
        default="hi80",
        help="forecast column to plan for (default hi80)",
    )
    pp.add_argument(
        "--value-unit",
        choices=("count", "rate"),
        default="count",
        help="series values are requests per bucket (count) or per second (rate)",
    )
    pp.add_argument("--name", default="zenrec-serve", help="deployment name in the KEDA snippet")
    pp.add_argument("--namespace", default="default", help="namespace of the deployment")
    pp.add_argument(
        "--prometheus-address",
        default=None,
        metavar="URL",
        help="Prometheus server KEDA queries "
        "(default http://prometheus-operated.monitoring.svc:9090)",
    )
    pp.add_argument(
        "--prometheus-query",
        default=None,
        metavar="PROMQL",
        help="load in requests/s (default: users served by the deployment's pods, per second)",
    )
    pp.set_defaults(func=run_plan)

    ps = sub.add_parser(
        "simulate",
        help="replay a trace against hpa / predictive / hybrid autoscaling",
        description="Replay a real trace against the Kubernetes HPA algorithm, zenrec's "
        "predictive plan (re-made every --refit-every from past data only) and their hybrid; "
        "score overload minutes, unserved requests, replica-hours and scale events.",
        epilog="Example:\n  zenrec traffic simulate --input t.csv --capacity 120 --warmup 5min "
        "--output sim/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_args(ps)
    ps.set_defaults(freq="1min")
    g = ps.add_mutually_exclusive_group(required=True)
    g.add_argument("--capacity", type=float, help="requests/s one replica serves within the SLO")
    g.add_argument("--capacity-from", help="load-test JSON (zenrec loadtest --output)")
    ps.add_argument("--target-utilization", type=float, default=0.7)
    ps.add_argument(
        "--warmup",
        default="5min,10min,15min",
        help="replica warm-up times, comma separated: one replay each (default 5min,10min,15min)",
    )
    ps.add_argument(
        "--overload-cost",
        type=float,
        default=0.25,
        help="replica-hours one overloaded minute is worth when the floor's quantile is "
        "calibrated (default 0.25: a floor may keep one more replica for 15 min, about a "
        "warm-up, per overloaded minute it avoids)",
    )
    ps.add_argument("--min", type=int, default=1, dest="min_replicas")
    ps.add_argument("--max", type=int, default=None, dest="max_replicas")
    ps.add_argument("--policies", default="hpa,predictive,hybrid", help="comma separated")
    ps.add_argument("--refit-every", default="1h", help="re-make the plan this often")
    ps.add_argument("--history", default="14d", help="history each refit sees (default 14d)")
    ps.add_argument("--forecaster", default="SeasonalProfile", help="forecast model of the plan")
    ps.add_argument("--last", default=None, help="score only the last part, e.g. 14d")
    ps.add_argument(
        "--value-unit",
        choices=("count", "rate"),
        default="count",
        help="series values are requests per bucket (count) or per second (rate)",
    )
    ps.set_defaults(func=run_simulate)


# ------------------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> Any:
    from zenrec.traffic.readers import load_series

    return load_series(
        args.input,
        args.freq,
        time_col=args.time_col,
        value_col=args.value_col,
        tz=args.tz,
        agg=args.agg,
    )


def _events(args: argparse.Namespace) -> Any:
    from zenrec.traffic.events import load_events

    return load_events(args.events) if getattr(args, "events", None) else None


def _forecast_config(args: argparse.Namespace) -> Any:
    from zenrec.traffic.forecast import ForecastConfig
    from zenrec.traffic.series import validated

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    return validated(
        ForecastConfig,
        horizon=args.horizon,
        history=args.history,
        models=models,
        windows=args.windows,
        seasonality=args.seasonality,
        combine=args.combine,
    )


def _print_report(series: Any) -> None:
    from rich.console import Console

    con = Console(stderr=True)
    r = series.report
    con.print(
        f"[bold]{Path(r.source).name}[/]: {r.points} buckets of {r.freq} "
        f"({r.start} .. {r.end}), {r.kind}, time zone {r.timezone}"
    )
    for note in r.notes:
        con.print(f"  note: {note}")


def _print_backtest(res: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    bt = res.backtest
    con = Console()
    if bt is None:
        con.print("backtest: not enough history; " + "; ".join(res.notes))
        return
    t = Table(title=f"Backtest ({bt.selection}); chosen: {bt.chosen}")
    for c in ("model", "horizon", "MASE", "/ best baseline", "sMAPE %", "cov80", "cov95"):
        t.add_column(c)
    for rec in bt.records:
        style = "bold green" if rec["chosen"] else None
        ratio = rec.get("mase_vs_best_baseline")
        t.add_row(
            rec["model"],
            rec["horizon"],
            f"{rec['mase']:.3f}",
            f"{ratio:.2f} ({rec['best_baseline']})" if ratio is not None else "",
            f"{rec['smape']:.1f}",
            f"{rec['coverage80']:.2f}",
            f"{rec['coverage95']:.2f}",
            style=style,
        )
    con.print(t)
    if bt.blocks:
        tb = Table(
            title="Choice per lead-time block (every model on the same origins; a model "
            "replaces the best baseline only when it beats it clearly)"
        )
        cols = ("leads", "origins", "lowest mean", "sign test p", "served", "MASE")
        for c in (*cols, "best baseline", "/ best baseline"):
            tb.add_column(c)
        for b in bt.blocks:
            ratio = b.get("winner_vs_best_baseline")
            tb.add_row(
                b["leads"],
                str(b["origins"]),
                b.get("lowest", ""),
                f"{b['sign_p']:.3f} ({b['wins']}/{b['decided']})" if "sign_p" in b else "",
                b["winner"],
                f"{b['mase']:.3f}",
                b.get("best_baseline", ""),
                f"{ratio:.2f}" if ratio is not None else "",
            )
        con.print(tb)


def run_forecast(args: argparse.Namespace) -> int:
    """Run ``zenrec traffic forecast``."""
    from zenrec.traffic.forecast import forecast_series

    series = _load(args)
    _print_report(series)
    res = forecast_series(series, _forecast_config(args), events=_events(args))
    _print_backtest(res)
    print(
        f"forecast: {len(res.frame)} buckets of {series.freq} with {res.model}; "
        f"peak mean {res.frame['mean'].max():.1f}, peak hi95 {res.frame['hi95'].max():.1f}"
    )
    if args.output:
        print("wrote " + ", ".join(str(p) for p in res.write(args.output)))
    return 0


def _print_detect(report: Any, horizon: str) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    periods = report.periods
    t = Table(title=f"Flagged periods in history ({len(periods)})")
    for c in ("start", "end", "kind", "peak", "expected", "z"):
        t.add_column(c)
    for p in periods:
        t.add_row(
            p.start, p.end, p.kind, f"{p.peak_value:.1f}", f"{p.expected:.1f}", f"{p.peak_z:.1f}"
        )
    con.print(t)
    lead = report.lead_times
    if lead is not None:
        tl = Table(
            title=f"Labelled surges ({len(report.event_windows)}): missed {lead['missed']}, "
            f"false alarms {lead['false_alarms']} "
            f"({lead['false_alarms_per_day']} per day)"
        )
        for c in ("event", "start", "first alarm", "lead min (negative = late)"):
            tl.add_column(c)
        for r in lead["surges"]:
            tl.add_row(r["name"], r["start"], r["first_alarm"] or "missed", str(r["lead_min"]))
        con.print(tl)
    if report.forecast is not None:
        ta = Table(
            title=f"Surge alerts over the next {horizon} ({len(report.alerts)}; "
            f"model {report.forecast.model})"
        )
        for c in ("start", "end", "lead time", "reason", "peak bound", "norm"):
            ta.add_column(c)
        for a in report.alerts:
            ta.add_row(
                a.start,
                a.end,
                f"{a.lead_time_s / 3600:.1f} h",
                a.reason,
                f"{a.peak_bound:.1f}",
                f"{a.norm:.1f}",
            )
        con.print(ta)


def run_detect(args: argparse.Namespace) -> int:
    """Run ``zenrec traffic detect``."""
    from zenrec._errors import ConfigError
    from zenrec.traffic.detect import DetectConfig, detect_surges
    from zenrec.traffic.series import validated

    series = _load(args)
    _print_report(series)
    kw: dict[str, Any] = {}
    if args.threshold is not None:
        kw["threshold"] = args.threshold
    if args.jump_factor is not None:
        kw["jump_factor"] = args.jump_factor
    for name in (
        "mode",
        "max_anoms",
        "min_duration",
        "adaptive_quantile",
        "smooth",
        "min_ratio",
        "cooldown",
        "transform",
    ):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    cfg = validated(DetectConfig, **kw)
    forecast = None if args.no_forecast else _forecast_config(args)
    if forecast is not None and args.capacity is not None and not args.capacity > 0:
        raise ConfigError(f"--capacity must be > 0, got {args.capacity}")
    report = detect_surges(
        series,
        cfg,
        forecast=forecast,
        events=_events(args),
        capacity_rps=args.capacity if forecast is not None else None,
    )
    _print_detect(report, args.horizon)
    if args.output:
        out = Path(args.output)
        report.write(out)
        print(f"wrote {out / 'surges.json'}, {out / 'surges.csv'} and a plot")
    return 0


def run_plan(args: argparse.Namespace) -> int:
    """Run ``zenrec traffic plan``."""
    from rich.console import Console
    from rich.table import Table

    from zenrec.traffic.plan import (
        DEFAULT_PROMETHEUS,
        PlanConfig,
        load_capacity,
        load_model_seconds,
        plan_series,
        warmup_from_load,
    )
    from zenrec.traffic.series import fmt_seconds, validated

    capacity = load_capacity(args.capacity_from) if args.capacity_from else args.capacity
    load_s = load_model_seconds(args.warmup_from) if args.warmup_from else None
    cfg = validated(
        PlanConfig,
        capacity_rps=capacity,
        target_utilization=args.target_utilization,
        warmup=args.warmup if load_s is None else warmup_from_load(load_s),
        hold=args.hold,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        bound=args.bound,
        value_unit=args.value_unit,
    )
    series = _load(args)
    _print_report(series)
    result = plan_series(series, cfg, forecast=_forecast_config(args), events=_events(args))
    plan, res = result.plan, result.forecast
    plan.load_seconds = load_s
    con = Console()
    t = Table(
        title=f"Replica plan ({res.model}, {cfg.bound}, {capacity:g} rps/replica at "
        f"{cfg.target_utilization:.0%}, warm-up {cfg.warmup}); now {plan.current_replicas}"
    )
    for c in ("at", "min replicas", "action"):
        t.add_column(c)
    for ev in plan.schedule[:60]:
        t.add_row(ev["at"], str(ev["min_replicas"]), ev["action"])
    con.print(t)
    if len(plan.schedule) > 60:
        con.print(f"... {len(plan.schedule) - 60} more changes in plan.json")
    for note in plan.notes:
        con.print(f"note: {note}")
    horizon = fmt_seconds(len(res.frame) * series.step_seconds)
    print(f"peak {plan.peak_replicas} replicas over {horizon}")
    if args.output:
        out = Path(args.output)
        result.write(
            out,
            name=args.name,
            namespace=args.namespace,
            prometheus_address=args.prometheus_address or DEFAULT_PROMETHEUS,
            prometheus_query=args.prometheus_query,
        )
        print(f"wrote {out / 'plan.json'}, {out / 'keda-scaledobject.yaml'}, {out / 'plan.png'}")
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    """Run ``zenrec traffic simulate``."""
    from rich.console import Console
    from rich.table import Table

    from zenrec.traffic.plan import load_capacity
    from zenrec.traffic.readers import load_series
    from zenrec.traffic.series import validated
    from zenrec.traffic.simulate import SimulateConfig, simulate, simulate_warmups

    capacity = load_capacity(args.capacity_from) if args.capacity_from else args.capacity
    warmups = [w.strip() for w in args.warmup.split(",") if w.strip()]
    cfg = validated(
        SimulateConfig,
        capacity_rps=capacity,
        target_utilization=args.target_utilization,
        warmup=warmups[0] if warmups else args.warmup,
        overload_cost=args.overload_cost,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        policies=[p.strip() for p in args.policies.split(",") if p.strip()],
        refit_every=args.refit_every,
        history=args.history,
        forecaster=args.forecaster,
        value_unit=args.value_unit,
    )
    src = Path(args.input)
    is_log = src.is_dir() or any(x in "".join(src.suffixes).lower() for x in (".jsonl", ".json"))
    series = load_series(
        args.input,
        args.freq if is_log else None,  # tables keep their step; the replay interpolates
        time_col=args.time_col,
        value_col=args.value_col,
        tz=args.tz,
        agg=args.agg,
    )
    _print_report(series)
    kw = {"freq": args.freq, "last": args.last, "events": _events(args)}
    if len(warmups) > 1:
        res = simulate_warmups(series, cfg, warmups, **kw)
        rows = [(b["warmup"], b["policies"]) for b in res.by_warmup]
    else:
        res = simulate(series, cfg, **kw)
        rows = [(cfg.warmup, res.scores)]
    con = Console()
    t = Table(
        title=f"Autoscaling replay ({len(res.demand_rps)} buckets of {args.freq}, "
        f"{capacity:g} rps/replica, target {cfg.target_utilization:.0%})"
    )
    cols = ("overload_minutes", "unserved_fraction", "replica_hours", "scale_events")
    for c in ("warm-up", "policy", *cols, "longest_overload_minutes"):
        t.add_column(c)
    for warm, scores in rows:
        for name, sc in scores.items():
            t.add_row(warm, name, *(f"{sc[c]:g}" for c in (*cols, "longest_overload_minutes")))
    con.print(t)
    for note in res.notes:
        con.print(f"note: {note}")
    print(f"replayed in {res.seconds:.1f}s with {res.refits} forecasts")
    if args.output:
        print("wrote " + ", ".join(str(p) for p in res.write(args.output)))
    return 0
