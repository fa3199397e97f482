"""Neural recommenders (PyTorch): BPR-MF, GMF, NCF-MLP, NeuMF, MLP ranker, two-tower.

Importing this package imports torch; ``import zenrec`` does not (the model registry imports
these modules lazily). Pieces: :mod:`.features` (feature spec and encoder), :mod:`.nn` (pure
modules), :mod:`.losses`, :mod:`.sampling`, :mod:`.trainer` (the one trainer),
:mod:`.distributed` (torchrun/DDP) and :mod:`.models` (the recommenders).
"""

from zenrec.models.neural.models import (
    BPRMF,
    GMF,
    NCFMLP,
    MLPRanker,
    NeuMF,
    NeuralRecommender,
    TwoTower,
)
from zenrec.models.neural.trainer import RunOptions, Trainer, TrainingConfig, TrainingInterrupted

__all__ = [
    "BPRMF",
    "GMF",
    "NCFMLP",
    "MLPRanker",
    "NeuMF",
    "NeuralRecommender",
    "RunOptions",
    "Trainer",
    "TrainingConfig",
    "TrainingInterrupted",
    "TwoTower",
]
