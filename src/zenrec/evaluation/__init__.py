"""Evaluation: metrics, evaluators and protocol presets."""

from zenrec.evaluation.evaluator import (
    EvalResult,
    evaluate_ctr,
    evaluate_ranking,
    evaluate_rating,
    evaluate_sampled,
)
from zenrec.evaluation.protocols import (
    PROTOCOLS,
    Protocol,
    ProtocolRun,
    get_protocol,
    prepare_dataset,
    run_protocol,
)

__all__ = [
    "PROTOCOLS",
    "EvalResult",
    "Protocol",
    "ProtocolRun",
    "evaluate_ctr",
    "evaluate_ranking",
    "evaluate_rating",
    "evaluate_sampled",
    "get_protocol",
    "prepare_dataset",
    "run_protocol",
]
