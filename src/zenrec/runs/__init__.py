"""Runs: one model run end to end (its :class:`RunRecord`), and peer libraries' runs on a split.

This layer sits above the models and below tuning: a tuning trial's final test, a benchmark
cell and ``zenrec evaluate`` are all runs.
"""

from zenrec.runs.evaluate import evaluate_model
from zenrec.runs.record import RunRecord, reproduce_command

__all__ = ["RunRecord", "evaluate_model", "reproduce_command"]
