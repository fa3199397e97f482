"""Conformance suites every zenrec model passes, and planted-structure fixtures.

A model's test class is a few lines::

    from zenrec.testing import RecommenderConformance

    class TestEASE(RecommenderConformance):
        def make_model(self):
            return create_model("ease", l2=1.0)

The suite checks: planted data where the withheld item must come back first; unknown users
(popularity fallback, flagged) and unknown items; save/load gives identical output; batched
equals one-by-one; ``NotFittedError`` before ``fit``; seen items excluded; candidates honoured.
"""

from __future__ import annotations

from zenrec.testing.conformance import (
    RecommenderConformance,
    SequentialConformance,
    planted_blocks,
    planted_sequences,
)

__all__ = ["RecommenderConformance", "SequentialConformance", "planted_blocks", "planted_sequences"]
