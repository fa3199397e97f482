"""Hyperparameter tuning with Optuna over validated TOML search spaces.

``zenrec.tuning.space`` (schema and validation) imports no Optuna; ``zenrec.tuning.tuner``
(the study, objective, pruning, storage and refit) imports it when first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SearchSpace", "TuneResult", "load_space", "parse_space", "tune"]


def __getattr__(name: str) -> Any:
    if name in ("SearchSpace", "load_space", "parse_space"):
        from zenrec.tuning import space

        return getattr(space, name)
    if name in ("TuneResult", "tune"):
        from zenrec.tuning import tuner

        return getattr(tuner, name)
    raise AttributeError(f"module 'zenrec.tuning' has no attribute {name!r}")
