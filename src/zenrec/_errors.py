"""One exception root for zenrec, and typed warnings.

Every user-facing failure raises a subclass of :class:`ZenrecError`; the CLI turns
these into one clear line and a non-zero exit.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "ColdStartWarning",
    "ConfigError",
    "DataError",
    "FeatureCoverageWarning",
    "NotFittedError",
    "ProtocolError",
    "UnknownIdsWarning",
    "UnusedColumnWarning",
    "ZenrecError",
    "ZenrecWarning",
]


class ZenrecError(Exception):
    """Root of every error zenrec raises on purpose."""


class DataError(ZenrecError, ValueError):
    """Input data is missing, malformed or inconsistent (names file, line, column and fix)."""


class ConfigError(ZenrecError, ValueError):
    """A parameter, option or configuration file is invalid."""


class NotFittedError(ZenrecError, RuntimeError):
    """A model method that needs a fitted model was called before ``fit``."""


class BundleError(ZenrecError):
    """A model bundle could not be written or read."""


class ProtocolError(ZenrecError, ValueError):
    """An evaluation protocol cannot be applied to the given data."""


class ZenrecWarning(UserWarning):
    """Base category of zenrec's warnings."""


class UnusedColumnWarning(ZenrecWarning):
    """A column that looks like ratings or timestamps was read but not used."""


class FeatureCoverageWarning(ZenrecWarning):
    """A feature table misses catalog ids, or holds ids the dataset does not have."""


class UnknownIdsWarning(ZenrecWarning):
    """Evaluation data holds users or items the model never saw; those rows were dropped."""


class ColdStartWarning(ZenrecWarning):
    """Over 5% of test users have no training interaction, or of test interactions are on items
    never seen in training (``EvalResult.test_coverage`` has the counts)."""
