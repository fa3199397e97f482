"""Explicit registry of model classes by CLI name (lazy: neural models import torch only when used)."""

from __future__ import annotations

import importlib
from typing import Any

from zenrec._errors import ConfigError

__all__ = ["MODELS", "create_model", "get_model_class", "load_model", "model_names"]

# CLI name -> "module:Class". Add new models here.
MODELS: dict[str, str] = {
    "pop": "zenrec.models.classic.pop:Pop",
    "itemknn": "zenrec.models.classic.knn:ItemKNN",
    "userknn": "zenrec.models.classic.knn:UserKNN",
    "ease": "zenrec.models.classic.ease:EASE",
    "ials": "zenrec.models.classic.als:IALS",
    "biasedmf": "zenrec.models.classic.biased_mf:BiasedMF",
    "bprmf": "zenrec.models.neural.models:BPRMF",
    "gmf": "zenrec.models.neural.models:GMF",
    "ncf-mlp": "zenrec.models.neural.models:NCFMLP",
    "neumf": "zenrec.models.neural.models:NeuMF",
    "mlpranker": "zenrec.models.neural.models:MLPRanker",
    "twotower": "zenrec.models.neural.models:TwoTower",
    "sasrec": "zenrec.models.neural.sequential:SASRec",
    "din": "zenrec.models.neural.sequential:DIN",
    "mmoe": "zenrec.models.neural.multitask:MMoE",
    "sharedbottom": "zenrec.models.neural.multitask:SharedBottom",
}


def model_names() -> list[str]:
    return list(MODELS)


def get_model_class(name: str) -> Any:
    target = MODELS.get(name)
    if target is None:
        raise ConfigError(f"unknown model '{name}'; available models are {', '.join(MODELS)}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def create_model(name: str, **params: Any) -> Any:
    """Build model ``name`` with validated parameters, e.g. ``create_model("ease", l2=250.0)``."""
    return get_model_class(name)(**params)


def load_model(path: Any) -> Any:
    """Load any model bundle."""
    from zenrec.models.base import Recommender

    return Recommender.load(path)
