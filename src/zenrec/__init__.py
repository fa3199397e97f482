"""zenrec: recommender systems from raw logs to a tuned model served online.

The top level is light: it does not import torch, Optuna, FastAPI or plotting libraries;
``zenrec.tune``, ``zenrec.benchmark`` and the model classes load them when first used.

Examples:
    >>> import zenrec
    >>> ds = zenrec.synthetic_dataset(n_users=50, n_items=40, seed=0)
    >>> model = zenrec.create_model("pop").fit(ds)
    >>> recs = model.recommend(ds.user_vocab.ids[:2], k=3)
    >>> recs.items.shape
    (2, 3)

The workflow (load, split, fit, evaluate, recommend, save, tune, benchmark) is in
``docs/python-api.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zenrec._errors import (
    BundleError,
    ColdStartWarning,
    ConfigError,
    DataError,
    FeatureCoverageWarning,
    NotFittedError,
    ProtocolError,
    UnknownIdsWarning,
    UnusedColumnWarning,
    ZenrecError,
    ZenrecWarning,
)
from zenrec._version import __version__

if TYPE_CHECKING:
    from zenrec import splits
    from zenrec._api import benchmark, tune
    from zenrec.data import Dataset, Feature, load_dataset, read_interactions, synthetic_dataset
    from zenrec.evaluation import (
        EvalResult,
        evaluate_ranking,
        get_protocol,
        prepare_dataset,
        run_protocol,
    )
    from zenrec.evaluation.api import evaluate
    from zenrec.models import Recommendations, Recommender, create_model, load_model, model_names
    from zenrec.runs.compare import compare
    from zenrec.splits import Split

# name -> (module, attribute or None for the module itself); imported on first access (PEP 562),
# so `import zenrec` (and the CLI's start) imports neither numpy, scipy nor polars: the CLI
# applies the thread policy (zenrec._threads) before polars sizes its pool on import.
_LAZY: dict[str, tuple[str, str | None]] = {
    "Dataset": ("zenrec.data", "Dataset"),
    "Feature": ("zenrec.data", "Feature"),
    "load_dataset": ("zenrec.data", "load_dataset"),
    "read_interactions": ("zenrec.data", "read_interactions"),
    "synthetic_dataset": ("zenrec.data", "synthetic_dataset"),
    "Recommendations": ("zenrec.models", "Recommendations"),
    "Recommender": ("zenrec.models", "Recommender"),
    "create_model": ("zenrec.models", "create_model"),
    "load_model": ("zenrec.models", "load_model"),
    "model_names": ("zenrec.models", "model_names"),
    "evaluate": ("zenrec.evaluation.api", "evaluate"),
    "evaluate_ranking": ("zenrec.evaluation", "evaluate_ranking"),
    "EvalResult": ("zenrec.evaluation", "EvalResult"),
    "get_protocol": ("zenrec.evaluation", "get_protocol"),
    "run_protocol": ("zenrec.evaluation", "run_protocol"),
    "prepare_dataset": ("zenrec.evaluation", "prepare_dataset"),
    "compare": ("zenrec.runs.compare", "compare"),
    "splits": ("zenrec.splits", None),
    "Split": ("zenrec.splits", "Split"),
    "tune": ("zenrec._api", "tune"),
    "benchmark": ("zenrec._api", "benchmark"),
}

__all__ = [
    "BundleError",
    "ColdStartWarning",
    "ConfigError",
    "DataError",
    "Dataset",
    "EvalResult",
    "Feature",
    "FeatureCoverageWarning",
    "NotFittedError",
    "ProtocolError",
    "Recommendations",
    "Recommender",
    "Split",
    "UnknownIdsWarning",
    "UnusedColumnWarning",
    "ZenrecError",
    "ZenrecWarning",
    "__version__",
    "benchmark",
    "compare",
    "create_model",
    "evaluate",
    "evaluate_ranking",
    "get_protocol",
    "load_dataset",
    "load_model",
    "model_names",
    "prepare_dataset",
    "read_interactions",
    "run_protocol",
    "splits",
    "synthetic_dataset",
    "tune",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'zenrec' has no attribute {name!r}")
    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
