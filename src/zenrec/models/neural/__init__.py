"""Neural recommenders (PyTorch): BPR-MF, GMF, NCF-MLP, NeuMF, MLP ranker, two-tower.

Importing this package imports torch; ``import zenrec`` does not (the model registry imports
these modules lazily). Pieces: :mod:`.base` (``NeuralRecommender``, the interaction task and the
shared configs), one module per model family (:mod:`.mf`, :mod:`.ncf`, :mod:`.ranker`,
:mod:`.twotower`, :mod:`.vae`, :mod:`.lightgcn`, :mod:`.sequential`, :mod:`.multitask`),
:mod:`.features` (feature spec and encoder), :mod:`.nn` and :mod:`.nn_seq` (pure modules),
:mod:`.losses`, :mod:`.sampling`, :mod:`.trainer` (the one trainer) and :mod:`.distributed`
(torchrun/DDP).
"""

from zenrec.models.neural.base import NeuralRecommender
from zenrec.models.neural.mf import BPRMF, GMF
from zenrec.models.neural.ncf import NCFMLP, NeuMF
from zenrec.models.neural.ranker import MLPRanker
from zenrec.models.neural.trainer import RunOptions, Trainer, TrainingConfig, TrainingInterrupted
from zenrec.models.neural.twotower import TwoTower

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
