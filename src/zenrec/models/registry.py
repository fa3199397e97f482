"""Explicit registry of model classes by CLI name (lazy: neural models import torch when used)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from zenrec._errors import BundleError, ConfigError

if TYPE_CHECKING:  # for editors and mypy only: nothing heavy is imported at run time
    from zenrec.models.base import Recommender
    from zenrec.models.classic.als import IALS
    from zenrec.models.classic.biased_mf import BiasedMF
    from zenrec.models.classic.ease import EASE
    from zenrec.models.classic.knn import ItemKNN, UserKNN
    from zenrec.models.classic.pop import Pop

__all__ = ["MODELS", "create_model", "get_model_class", "load_model", "model_names"]

# CLI name -> "module:Class". Add new models here.
MODELS: dict[str, str] = {
    "pop": "zenrec.models.classic.pop:Pop",
    "itemknn": "zenrec.models.classic.knn:ItemKNN",
    "userknn": "zenrec.models.classic.knn:UserKNN",
    "ease": "zenrec.models.classic.ease:EASE",
    "ials": "zenrec.models.classic.als:IALS",
    "rp3beta": "zenrec.models.classic.rp3beta:RP3beta",
    "edlae": "zenrec.models.classic.edlae:EDLAE",
    "slim": "zenrec.models.classic.slim:SLIM",
    "biasedmf": "zenrec.models.classic.biased_mf:BiasedMF",
    "vsknn": "zenrec.models.classic.sequence:VSKNN",
    "transition": "zenrec.models.classic.sequence:ItemTransition",
    "bprmf": "zenrec.models.neural.mf:BPRMF",
    "gmf": "zenrec.models.neural.mf:GMF",
    "ncf-mlp": "zenrec.models.neural.ncf:NCFMLP",
    "neumf": "zenrec.models.neural.ncf:NeuMF",
    "mlpranker": "zenrec.models.neural.ranker:MLPRanker",
    "twotower": "zenrec.models.neural.twotower:TwoTower",
    "multvae": "zenrec.models.neural.vae:MultVAE",
    "lightgcn": "zenrec.models.neural.lightgcn:LightGCN",
    "ensemble": "zenrec.models.ensemble:Ensemble",
    "sasrec": "zenrec.models.neural.sequential:SASRec",
    "din": "zenrec.models.neural.din:DIN",
    "mmoe": "zenrec.models.neural.multitask:MMoE",
    "sharedbottom": "zenrec.models.neural.multitask:SharedBottom",
}


def model_names() -> list[str]:
    """Registry names of every model, in registry order."""
    return list(MODELS)


def get_model_class(name: str) -> type[Recommender]:
    """The class registered as ``name`` (imports its module on first use).

    Raises:
        ConfigError: ``name`` is not a registered model.
    """
    target = MODELS.get(name)
    if target is None:
        raise ConfigError(f"unknown model '{name}'; available models are {', '.join(MODELS)}")
    module, cls = target.split(":")
    klass: type[Recommender] = getattr(importlib.import_module(module), cls)
    return klass


@overload
def create_model(name: Literal["pop"], **params: Any) -> Pop: ...
@overload
def create_model(name: Literal["itemknn"], **params: Any) -> ItemKNN: ...
@overload
def create_model(name: Literal["userknn"], **params: Any) -> UserKNN: ...
@overload
def create_model(name: Literal["ease"], **params: Any) -> EASE: ...
@overload
def create_model(name: Literal["ials"], **params: Any) -> IALS: ...
@overload
def create_model(name: Literal["biasedmf"], **params: Any) -> BiasedMF: ...
@overload
def create_model(name: str, **params: Any) -> Recommender: ...
def create_model(name: str, **params: Any) -> Recommender:
    """Build model ``name`` with validated parameters, e.g. ``create_model("ease", l2=250.0)``.

    Returns a :class:`~zenrec.models.Recommender` (typed per name for the classic models, so an
    editor completes ``fit``, ``recommend``, ``save``...). Bad parameters raise a
    ``ConfigError`` naming the parameter, what was expected and what was given.
    """
    return get_model_class(name)(**params)


def load_model(path: str | Path, *, mmap: bool = False) -> Recommender:
    """Load a bundle of any model: the bundle names its model, the registry gives the class.

    Args:
        mmap: Memory-map the bundle's arrays (shared by the processes that load the same
            bundle; see :func:`zenrec.models.bundle.read_bundle`).

    Raises:
        BundleError: Not a bundle, corrupt (hash mismatch), newer format, or an unknown model.
    """
    from zenrec.models.bundle import read_bundle

    meta, arrays, vocab, items = read_bundle(path, mmap=mmap)
    name = str(meta.get("model"))
    if name not in MODELS:
        raise BundleError(
            f"{path}: holds a model '{name}' this zenrec does not know (known: "
            f"{', '.join(MODELS)}); upgrade zenrec"
        )
    return get_model_class(name).from_bundle_parts(path, meta, arrays, vocab, items)
