"""``zenrec.compare``: a leaderboard of several models on one split or protocol, in Python.

Every model is fitted on the same train part and evaluated on the same test part, exactly as
:func:`~zenrec.evaluation.run_protocol` (and so ``zenrec evaluate``) does; the table has one
row per model, best first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from zenrec._errors import ConfigError
from zenrec._frames import frame_as
from zenrec.data.dataset import Dataset
from zenrec.evaluation.api import evaluate
from zenrec.evaluation.evaluator import EvalResult
from zenrec.evaluation.metrics import higher_is_better
from zenrec.evaluation.protocols import Protocol, get_protocol, prepare_dataset, run_protocol
from zenrec.models.registry import create_model
from zenrec.splits import Split

__all__ = ["compare"]

ModelSpec = str | tuple[str, Mapping[str, Any]]
"""A registry name, or ``(name, hyperparameters)``."""

_SPLIT_MAIN = "ndcg@10"
"""The main metric when a Split is given (``zenrec.evaluate``'s default full ranking)."""


def _entries(models: Sequence[ModelSpec] | Mapping[str, Mapping[str, Any]]) -> list[tuple]:
    """(label, name, params) per model; labels are unique."""
    if isinstance(models, Mapping):
        items = [(name, name, dict(p)) for name, p in models.items()]
    else:
        items = []
        for m in models:
            if isinstance(m, str):
                items.append((m, m, {}))
            elif isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str):
                params = dict(m[1])
                label = m[0] + (f" {params}" if params else "")
                items.append((label, m[0], params))
            else:
                raise ConfigError(
                    f"compare: each model is a name or (name, params); got {m!r}, e.g. "
                    '["pop", ("ease", {"l2": 300.0})]'
                )
    labels = [e[0] for e in items]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ConfigError(f"compare: model {dup[0]!r} is listed twice; give it other params")
    if not items:
        raise ConfigError("compare: no models given; e.g. compare(['pop', 'ease'], ...)")
    for _, name, params in items:
        create_model(name, **params)  # fail on a bad name or parameter before any work
    return items


def compare(
    models: Sequence[ModelSpec] | Mapping[str, Mapping[str, Any]],
    split_or_protocol: Split | Protocol | str,
    *,
    dataset: Dataset | None = None,
    seed: int | None = None,
    filters: Mapping[str, Any] | None = None,
    backend: str = "pandas",
) -> Any:
    """Fit and evaluate several models on the same data; one row per model, best first.

    With a protocol (a preset name or :class:`~zenrec.evaluation.Protocol`), ``dataset`` is
    filtered and split once, as :func:`~zenrec.evaluation.run_protocol` does, and every model
    gets the same splits; the numbers equal ``zenrec evaluate`` on the same data. With a
    :class:`~zenrec.splits.Split`, each model is fitted on its train part (and valid part)
    and evaluated with :func:`zenrec.evaluate` (full ranking, K = 10).

    Args:
        models: Registry names, ``(name, params)`` pairs, or ``{name: params}``.
        split_or_protocol: A ready split, or a protocol preset.
        dataset: The (unfiltered) dataset a protocol runs on; not used with a Split.
        seed: Split seed of a protocol (default: the preset's published seed).
        filters: Extra filters of a protocol run (``min_rating``, ``min_user_count``...).
        backend: ``pandas`` (default, as ``Recommendations.to_frame``) or ``polars``.

    Returns:
        A DataFrame: ``model``, the protocol's metrics (means over test users), the main
        metric over warm and over cold test users (``MAIN (warm)``, ``MAIN (cold)``; cold
        users have no training interaction), ``cold_share`` (their share of test users),
        ``fit_seconds`` and ``eval_seconds``; sorted by the main metric, best first.

    Examples:
        >>> import zenrec
        >>> ds = zenrec.synthetic_dataset(n_users=60, n_items=40, seed=0)
        >>> board = zenrec.compare(["pop", "itemknn"], "msrec", dataset=ds, backend="polars")
        >>> board.columns[:2], board.height
        (['model', 'map@10'], 2)
    """
    import polars as pl

    entries = _entries(models)
    protocol: Protocol | None
    if isinstance(split_or_protocol, Split):
        if dataset is not None or filters or seed is not None:
            raise ConfigError(
                "compare: dataset, filters and seed belong to a protocol; a Split is used as is"
            )
        protocol, splits, data, main = None, [split_or_protocol], split_or_protocol.train, None
    else:
        protocol = (
            get_protocol(split_or_protocol)
            if isinstance(split_or_protocol, str)
            else split_or_protocol
        )
        if not isinstance(protocol, Protocol):
            raise ConfigError(
                "compare: the second argument is a Split, a Protocol or a preset name; got "
                f"{type(split_or_protocol).__name__}"
            )
        if dataset is None:
            raise ConfigError(
                f"compare: protocol '{protocol.name}' needs the data: pass dataset=..."
            )
        seed = protocol.default_seed if seed is None else int(seed)
        data = prepare_dataset(dataset, protocol, dict(filters or {}))
        splits = protocol.splits(data, seed)
        main = protocol.main_metric
    rows = []
    for label, name, params in entries:
        if protocol is not None:
            run = run_protocol(
                _factory(name, params),
                data,
                protocol,
                seed,
                splits=splits,
            )
            metrics, warm, cold, cov = (
                run.metrics,
                run.metrics_warm,
                run.metrics_cold,
                run.test_coverage,
            )
            fit_s, eval_s = run.fit_seconds, run.eval_seconds
        else:
            model = create_model(name, **params)
            t0 = time.perf_counter()
            model.fit(splits[0].train, splits[0].valid)
            fit_s = time.perf_counter() - t0
            res: EvalResult = evaluate(model, splits[0])
            metrics, warm, cold, cov = (
                res.metrics,
                res.metrics_warm,
                res.metrics_cold,
                res.test_coverage,
            )
            eval_s = res.seconds
        keys = _main_keys(protocol, metrics)
        m = main or _SPLIT_MAIN
        rows.append(
            {
                "model": label,
                **{k: float(metrics[k]) for k in keys},
                f"{m} (warm)": warm.get(m, math.nan),
                f"{m} (cold)": cold.get(m, math.nan),
                "cold_share": cov["cold_users"] / max(1, cov["test_users"]) if cov else math.nan,
                "fit_seconds": fit_s,
                "eval_seconds": eval_s,
            }
        )
    m = main or _SPLIT_MAIN
    frame = pl.DataFrame(rows, infer_schema_length=None)
    if m in frame.columns:
        frame = frame.sort(m, descending=higher_is_better(m), nulls_last=True, maintain_order=True)
    return frame_as(frame, backend)


def _factory(name: str, params: dict[str, Any]) -> Callable[[], Any]:
    """A function that builds a fresh ``name`` model with ``params``."""
    return lambda: create_model(name, **params)


def _main_keys(protocol: Protocol | None, metrics: Mapping[str, float]) -> list[str]:
    """The accuracy metrics of a result, in the protocol's order (no beyond-accuracy keys)."""
    if protocol is None or not protocol.ks:
        beyond = ("coverage@", "gini@", "avg_popularity@", "novelty@")
        return [k for k in metrics if not k.startswith(beyond)]
    suffix = "(sampled)" if protocol.mode == "sampled" else ""
    wanted = [f"{m}@{k}{suffix}" for m in protocol.metrics for k in protocol.ks]
    return [k for k in wanted if k in metrics]
