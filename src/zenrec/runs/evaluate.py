"""One evaluation run end to end: filter, split, fit, evaluate, and the :class:`RunRecord`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zenrec._errors import ConfigError
from zenrec.data.dataset import Dataset
from zenrec.data.spec import DataSpec
from zenrec.evaluation.protocols import Protocol, ProtocolRun, prepare_dataset, run_protocol
from zenrec.models.registry import create_model
from zenrec.runs.record import RunRecord, reproduce_command
from zenrec.splits import Split, fixed_split

__all__ = ["NOT_REPLAYABLE", "evaluate_model", "protocol_splits", "replayable", "spec_of"]

NOT_REPLAYABLE = (
    "no re-run command: the data was given in Python (a DataFrame, or a Dataset that is not a "
    "built-in dataset as loaded), so no command line reads the same interactions; "
    "data_fingerprint identifies them (tune(..., snapshot='data.parquet') writes them so the "
    "command can)"
)
"""Why a record has no ``command``."""


def spec_of(
    dataset: Dataset,
    user_filters: dict[str, Any] | None = None,
    split_dir: str | Path | None = None,
) -> DataSpec:
    """A data specification for a dataset given in Python (its name as the source)."""
    filters = {k: v for k, v in (user_filters or {}).items() if v is not None}
    return DataSpec(
        source=dataset.name, split_dir=None if split_dir is None else str(split_dir), **filters
    )


def _split_options(protocol: Protocol, spec: DataSpec) -> dict[str, Any]:
    """The protocol's changed split options, unless a fixed split replaces its split."""
    return protocol.split_options() if spec.split_dir is None else {}


def _replayable(spec: DataSpec) -> bool:
    return spec.is_builtin or Path(spec.source).is_file()


def replayable(dataset: Dataset, spec: DataSpec | None) -> bool:
    """Whether a ``zenrec evaluate`` command re-reads exactly ``dataset``.

    With a data specification (the CLI's, or one the caller built): its source must be a
    built-in name or an existing file. Without one the dataset came from Python and only an
    unfiltered built-in dataset qualifies: a DataFrame's or a file's name is not a source
    (the reader options are unknown), and filters applied in Python are not in the command.
    """
    if spec is not None:
        return _replayable(spec)
    return spec_of(dataset).is_builtin and not dataset.filters


def _check_task(protocol: Protocol, model_name: str, params: dict[str, Any]) -> None:
    probe = create_model(model_name, **params)  # validate parameters before any work
    if protocol.mode == "rating" and probe.task != "rating":
        raise ConfigError(
            f"protocol '{protocol.name}' evaluates predicted ratings (RMSE/MAE), "
            f"but '{model_name}' is a ranking model; "
            "use a rating model (e.g. biasedmf, or mlpranker with head=rating) "
            "or a ranking protocol (recbole, msrec, loo-full)"
        )


def protocol_splits(
    dataset: Dataset, protocol: Protocol, spec: DataSpec, seed: int
) -> tuple[list[Split], Dataset, list[str], str | None]:
    """The splits a run uses: the fixed split of ``spec.split_dir``, or the protocol's split of
    the data filtered by :func:`~zenrec.evaluation.prepare_dataset`.

    Returns:
        (splits, the data split (a fixed split's train part), the filters in words, the hash
        of a fixed split's files or ``None``).
    """
    if spec.split_dir is not None:
        split, split_sha = fixed_split(spec.split_dir, base=dataset)
        return [split], split.train, [f"fixed split {spec.split_dir}"], split_sha
    data = prepare_dataset(dataset, protocol, spec.user_filters())
    return protocol.splits(data, seed), data, data.filters, None


def evaluate_model(
    dataset: Dataset,
    protocol: Protocol,
    model_name: str,
    params: dict[str, Any] | None = None,
    *,
    seed: int | None = None,
    spec: DataSpec | None = None,
    user_filters: dict[str, Any] | None = None,
    split_dir: str | Path | None = None,
    on_fold: Callable[[int, int], None] | None = None,
    invocation: str | None = None,
    rerunnable: bool | None = None,
) -> tuple[RunRecord, ProtocolRun]:
    """Filter, split, fit and evaluate one model; return its record and the protocol run.

    Args:
        dataset: The loaded (unfiltered) dataset.
        protocol: Protocol preset.
        model_name: Registry name.
        params: Hyperparameters.
        seed: Split seed (default: the protocol's published seed).
        spec: How ``dataset`` was loaded and filtered; its filters and split directory are used,
            and the record's command re-runs from it. Without it, ``user_filters`` and
            ``split_dir`` are used and the dataset's name stands for the source.
        user_filters: Extra filters (``min_rating``, ``min_user_count``...), when no ``spec``.
        split_dir: A fixed split directory, when no ``spec``.
        on_fold: Called with (fold, n_folds) after each fold.
        invocation: The command line the user typed (the CLI passes it; library code never
            reads ``sys.argv``).
        rerunnable: Whether the record gets a re-run ``command`` (default: decided by
            :func:`replayable` from ``dataset`` and ``spec``).

    Raises:
        ConfigError: Invalid parameters, or a ranking model under a rating protocol.
    """
    params = dict(params or {})
    seed = protocol.default_seed if seed is None else int(seed)
    if rerunnable is None:
        rerunnable = replayable(dataset, spec)
    if spec is None:
        spec = spec_of(dataset, user_filters, split_dir)
    _check_task(protocol, model_name, params)
    t0 = time.perf_counter()
    splits, data, filters, split_sha = protocol_splits(dataset, protocol, spec, seed)
    prep_s = time.perf_counter() - t0
    run = run_protocol(
        lambda: create_model(model_name, **params),
        data,
        protocol,
        seed,
        splits=splits,
        on_fold=on_fold,
    )
    fitted = run.models[0].params()
    record = RunRecord(
        model=model_name,
        hyperparameters=fitted,
        dataset=dataset.name,
        data=spec.resolved() if rerunnable else spec,
        dataset_sha256=split_sha or dataset.source_sha256,
        data_fingerprint=None if split_sha else data.fingerprint(),
        filters=list(filters),
        protocol=protocol.summary(dataset.name),
        split={
            "description": splits[0].description,
            "folds": len(splits),
            "sizes": [list(s.sizes()) for s in splits],
        },
        seed=seed,
        metrics=run.metrics,
        metrics_warm=run.metrics_warm,
        metrics_cold=run.metrics_cold,
        test_coverage=run.test_coverage,
        fold_metrics=run.fold_metrics if len(splits) > 1 else None,
        n_users_evaluated=run.results[0].n_users,
        evaluation_mode=run.results[0].mode,
        fit_seconds=run.fit_seconds,
        eval_seconds=run.eval_seconds,
        prepare_seconds=prep_s,
        command=reproduce_command(
            spec, protocol.name, model_name, params, seed, _split_options(protocol, spec)
        )
        if rerunnable
        else None,
        invocation=invocation,
        history=_jsonable(run.models[0].history_),
    )
    return record, run


def _jsonable(x: Any) -> Any:
    import json

    import numpy as np

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    return json.loads(json.dumps(x, default=default))
