"""Top-level conveniences: ``zenrec.tune`` and ``zenrec.benchmark`` accept names and dicts.

Loaded lazily by ``zenrec.__getattr__``, so ``import zenrec`` stays light (no Optuna, no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenrec._validation import KEY_MESSAGES, to_config_error
from zenrec.data.dataset import Dataset

if TYPE_CHECKING:
    from zenrec.evaluation.protocols import Protocol
    from zenrec.tuning.tuner import TuneResult

__all__ = ["benchmark", "tune"]


def tune(dataset: Dataset, protocol: str | Protocol, model: str, **options: Any) -> TuneResult:
    """Tune ``model`` on the protocol's validation data, then test the best configuration once.

    The same as :func:`zenrec.tuning.tune`, with ``protocol`` given by name. Options
    (keyword): ``n_trials`` (default 20), ``timeout`` (seconds), ``run_dir`` (where
    ``tune.json``, ``trials.csv`` and the study go; default ``runs/tune``), ``seed``,
    ``metric``, ``pruner``, ``storage``, ``refit``, ``progress``, ``write``.

    Returns:
        A :class:`~zenrec.tuning.TuneResult`: ``best_params``, ``best_value`` (validation),
        ``test_record`` (a RunRecord with the refit's test metrics) and ``run.models[0]``
        (the refit model).
    """
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.tuning.tuner import tune as _tune

    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    return _tune(dataset, proto, model, **options)


def benchmark(
    config: str | Path | dict[str, Any],
    run_dir: str | Path,
    *,
    datasets: dict[str, Dataset] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run (or continue) a benchmark: models x datasets x protocols x seeds, with CIs and tests.

    Args:
        config: A benchmark TOML file, or the same as a dict (schema: docs/tuning.md).
        run_dir: Output directory; finished cells there are kept and skipped.
        datasets: Already loaded datasets by the names used in ``config["datasets"]``.
        progress: Show progress on stderr.

    Returns:
        ``cells``/``ran``/``skipped``/``seconds`` and the ``summary`` (polars DataFrame: mean
        and 95% CI per model and metric) and ``significance`` tables.
    """
    from pydantic import ValidationError

    from zenrec.experiments import BenchmarkConfig, load_benchmark_config, run_benchmark

    if isinstance(config, dict):
        try:
            cfg = BenchmarkConfig(**config)
        except ValidationError as exc:
            raise to_config_error(
                exc, where="benchmark config", messages={**KEY_MESSAGES, "*": "key '{key}': {msg}"}
            ) from None
    else:
        cfg = load_benchmark_config(config)
    return run_benchmark(cfg, run_dir, progress=progress, datasets=datasets)
