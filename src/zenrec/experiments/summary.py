"""Statistics of a benchmark run: results, per-model summaries with CIs, significance tests.

Reads the finished cells (:class:`~zenrec.runs.RunRecord` JSON files) of a run directory and
writes::

    results.parquet/.csv       one row per cell (with METRIC (warm), METRIC (cold), the test
                               coverage counts and cold_share: test users without training data)
    summary.parquet/.csv       per (dataset, protocol, model): mean and 95% CI over seeds, and
                               the mean of METRIC (warm) and cold_share
    significance.parquet/.csv  every model vs the baseline: paired tests over users, Holm-adjusted
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from zenrec._io import atomic_path
from zenrec.evaluation.metrics import higher_is_better
from zenrec.evaluation.protocols import get_protocol
from zenrec.evaluation.significance import compare_to_baseline, mean_ci
from zenrec.experiments.config import BenchmarkConfig
from zenrec.runs.record import RunRecord

__all__ = ["load_cells", "summarise", "write_frame"]

_EXTRA_METRICS = ("coverage", "avg_popularity", "gini", "novelty")


def write_frame(df: Any, path: Path) -> None:
    """Write a polars frame as Parquet or CSV (by suffix), atomically."""
    with atomic_path(path, suffix=path.suffix) as tmp:
        if path.suffix == ".parquet":
            df.write_parquet(tmp)
        else:
            df.write_csv(tmp)


def _write_pair(df: Any, run_dir: Path, stem: str) -> None:
    write_frame(df, run_dir / f"{stem}.parquet")
    write_frame(df, run_dir / f"{stem}.csv")


def load_cells(run_dir: str | Path) -> list[RunRecord]:
    """Every finished cell of a run directory, in file-name order."""
    return [RunRecord.read(p) for p in sorted((Path(run_dir) / "cells").glob("*.json"))]


def _result_row(r: RunRecord) -> dict[str, Any]:
    peer = r.kind == "peer"
    if peer:
        seconds = r.seconds
        version = r.library_version
    else:
        seconds = (
            None
            if r.fit_seconds is None or r.eval_seconds is None
            else r.fit_seconds + r.eval_seconds
        )
        version = r.versions.get("zenrec")
    row: dict[str, Any] = {
        "label": r.label,
        "library": r.library or "zenrec",
        "library_version": version,
        "model": r.model,
        "dataset": r.dataset,
        "protocol": r.protocol["name"],
        "seed": r.seed,
        "status": r.status,
        "reason": r.reason,
        "dataset_sha256": r.dataset_sha256,
        "data_fingerprint": r.data_fingerprint,
        "hyperparameters": json.dumps(r.hyperparameters, sort_keys=True),
        "tuned": r.tuning is not None,
        "fit_seconds": r.fit_seconds,
        "eval_seconds": r.eval_seconds,
        "seconds": seconds,
        "versions": json.dumps(r.versions, sort_keys=True),
        "command": r.command,
        "created": r.created,
    }
    row.update({k: float(v) for k, v in r.metrics.items()})
    row.update(_warm_cold_columns(r))
    return row


def _warm_cold_columns(r: RunRecord) -> dict[str, Any]:
    """``METRIC (warm)``, ``METRIC (cold)``, the test coverage counts and ``cold_share``."""
    out: dict[str, Any] = {}
    for group in ("warm", "cold"):
        out.update({f"{k} ({group})": float(v) for k, v in getattr(r, f"metrics_{group}").items()})
    cov = r.test_coverage
    if cov:
        out.update({k: int(v) for k, v in cov.items()})
        out["cold_share"] = cov["cold_users"] / max(1, cov["test_users"])
    return out


def _order(config: BenchmarkConfig) -> dict[str, int]:
    keys = [m.key for m in config.models] + [p.key for p in config.peers]
    return {key: j for j, key in enumerate(keys)}


def _summary_row(
    grp: Any, dname: Any, pname: Any, label: str, metrics: list[str], seed_note: str | None = None
) -> dict[str, Any]:
    """Mean and 95% CI over the seeds of one model's cells in one (dataset, protocol)."""
    import polars as pl

    g_all = grp.filter(pl.col("label") == label)
    g = g_all.filter(pl.col("status") == "ok")
    first = (g if g.height else g_all).sort("seed").row(0, named=True)
    reasons = sorted({x for x in g_all.filter(pl.col("status") != "ok")["reason"].to_list() if x})
    fit = g["fit_seconds"].drop_nulls()
    secs = g["seconds"].drop_nulls()
    row: dict[str, Any] = {
        "dataset": dname,
        "protocol": pname,
        "label": label,
        "library": first["library"],
        "library_version": first["library_version"],
        "model": first["model"],
        "n_seeds": g.height,
        "tuned": bool(first["tuned"]),
        "hyperparameters": first["hyperparameters"],
        "fit_seconds": float(fit.mean()) if fit.len() else math.nan,
        "seconds": float(secs.mean()) if secs.len() else math.nan,
        "note": "; ".join(reasons) or None,
        "seed_note": seed_note,
    }
    for col in ("cold_share", *[f"{m} (warm)" for m in metrics]):
        if col in g.columns:  # mean over seeds: the warm figure beside the main one
            v = g[col].cast(pl.Float64).drop_nulls()
            row[col] = float(v.mean()) if v.len() else math.nan
    for m in metrics:
        mean, lo, hi = (
            mean_ci(g[m].cast(pl.Float64).fill_null(math.nan).to_numpy())
            if g.height
            else (math.nan,) * 3
        )
        row[m] = mean
        row[f"{m}_ci_low"], row[f"{m}_ci_high"] = lo, hi
    return row


def _per_user_values(
    recs: list[RunRecord], run_dir: Path, label: str, dname: Any, pname: Any, metric: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """Each user's value of ``metric``, averaged over the seeds (and folds) of one model."""
    import polars as pl

    frames = []
    for r in recs:
        if (
            r.label == label
            and r.dataset == dname
            and r.protocol["name"] == pname
            and r.per_user_file
        ):
            f = pl.read_parquet(run_dir / "cells" / r.per_user_file)
            if metric in f.columns:
                frames.append(
                    f.select("user", pl.col(metric)).with_columns(pl.lit(r.seed).alias("seed"))
                )
    if not frames:
        return None
    u = pl.concat(frames).group_by("user").agg(pl.col(metric).mean()).sort("user")
    return u["user"].to_numpy(), u[metric].to_numpy()


def _significance_rows(
    recs: list[RunRecord],
    run_dir: Path,
    grp: Any,
    dname: Any,
    pname: Any,
    metrics: list[str],
    config: BenchmarkConfig,
) -> list[dict[str, Any]]:
    """Every model vs the baseline, paired over users; peers (aggregates only) are left out."""
    base = config.baseline_label
    labels = sorted(set(grp["label"].to_list()), key=lambda x: _order(config).get(x, 99))
    if base not in labels:
        return []
    rows = []
    for m in metrics:
        per_user = {
            lab: v
            for lab in labels
            if (v := _per_user_values(recs, run_dir, lab, dname, pname, m)) is not None
        }
        if base not in per_user or len(per_user) < 2:
            continue
        for s in compare_to_baseline(
            per_user, base, alpha=config.alpha, lower_is_better=not higher_is_better(m)
        ):
            rows.append({"dataset": dname, "protocol": pname, "metric": m, **s})
    return rows


def summarise(run_dir: str | Path, config: BenchmarkConfig | None = None) -> dict[str, Any]:
    """Build results, summary and significance tables from the finished cells of a run.

    Args:
        run_dir: The benchmark's run directory.
        config: Its config (default: the one recorded in ``benchmark.json``).

    Returns:
        ``{"results": frame, "summary": frame, "significance": frame or None}`` (``results`` is
        None when no cell has finished).
    """
    import polars as pl

    run_dir = Path(run_dir)
    if config is None:
        meta = json.loads((run_dir / "benchmark.json").read_text())
        config = BenchmarkConfig(**meta["config"])
    recs = load_cells(run_dir)
    if not recs:
        return {"results": None}
    results = pl.DataFrame([_result_row(r) for r in recs], infer_schema_length=None)
    _write_pair(results, run_dir, "results")
    order = _order(config)
    summary_rows: list[dict[str, Any]] = []
    sig_rows: list[dict[str, Any]] = []
    for (dname, pname), grp in results.group_by(["dataset", "protocol"], maintain_order=True):
        protocol = get_protocol(str(pname))
        metrics = [m for m in (config.metrics or [protocol.main_metric]) if m in grp.columns]
        extra = [c for c in grp.columns if c.split("@")[0] in _EXTRA_METRICS and c.endswith("@10")]
        for label in sorted(set(grp["label"].to_list()), key=lambda x: order.get(x, 99)):
            summary_rows.append(
                _summary_row(grp, dname, pname, label, metrics + extra, protocol.seed_note)
            )
        sig_rows += _significance_rows(recs, run_dir, grp, dname, pname, metrics, config)
    summary = pl.DataFrame(summary_rows, infer_schema_length=None)
    _write_pair(summary, run_dir, "summary")
    sig = pl.DataFrame(sig_rows, infer_schema_length=None) if sig_rows else None
    if sig is not None:
        _write_pair(sig, run_dir, "significance")
    return {"results": results, "summary": summary, "significance": sig}
