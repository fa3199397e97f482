"""zenrec: recommender systems from raw logs to a tuned model served online.

The top level is light: it does not import torch, FastAPI or plotting libraries.

Examples:
    >>> import zenrec
    >>> ds = zenrec.synthetic_dataset(n_users=50, n_items=40, seed=0)
    >>> model = zenrec.create_model("pop").fit(ds)
    >>> recs = model.recommend(ds.user_vocab.ids[:2], k=3)
    >>> recs.items.shape
    (2, 3)
"""

from __future__ import annotations

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
from zenrec.data import Dataset, load_dataset, read_interactions, synthetic_dataset
from zenrec.models import create_model, load_model, model_names

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
