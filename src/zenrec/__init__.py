"""zenrec: recommender systems from raw logs to a tuned model served online.

The top level is light: it does not import torch, FastAPI or plotting libraries.

Example:
    >>> import zenrec
    >>> ds = zenrec.synthetic_dataset(n_users=50, n_items=40, seed=0)
    >>> model = zenrec.create_model("pop").fit(ds)
    >>> recs = model.recommend(ds.user_vocab.ids[:2], k=3)
    >>> recs.items.shape
    (2, 3)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zenrec._errors import (
    BundleError,
    ConfigError,
    DataError,
    NotFittedError,
    ProtocolError,
    ZenrecError,
    ZenrecWarning,
)
from zenrec._version import __version__

if TYPE_CHECKING:
    from zenrec.data import Dataset, load_dataset, read_interactions, synthetic_dataset
    from zenrec.models import create_model, load_model, model_names

# The data and model entry points load on first use (PEP 562), so `import zenrec` (and the
# CLI's start) imports neither numpy, scipy nor polars: the CLI applies the thread policy
# (zenrec._threads) before polars sizes its pool on import.
_LAZY = {
    "Dataset": "zenrec.data",
    "load_dataset": "zenrec.data",
    "read_interactions": "zenrec.data",
    "synthetic_dataset": "zenrec.data",
    "create_model": "zenrec.models",
    "load_model": "zenrec.models",
    "model_names": "zenrec.models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zenrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__all__ = [
    "BundleError",
    "ConfigError",
    "DataError",
    "Dataset",
    "NotFittedError",
    "ProtocolError",
    "ZenrecError",
    "ZenrecWarning",
    "__version__",
    "create_model",
    "load_dataset",
    "load_model",
    "model_names",
    "read_interactions",
    "synthetic_dataset",
]
