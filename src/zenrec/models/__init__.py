"""Models: the recommender protocol, the registry and bundles."""

from zenrec.models.base import ModelConfig, Recommender
from zenrec.models.recommendations import Recommendations
from zenrec.models.registry import MODELS, create_model, get_model_class, load_model, model_names

__all__ = [
    "MODELS",
    "ModelConfig",
    "Recommendations",
    "Recommender",
    "create_model",
    "get_model_class",
    "load_model",
    "model_names",
]
