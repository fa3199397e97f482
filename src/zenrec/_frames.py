"""Tables handed to users: a polars frame returned as pandas or polars (imports no zenrec layer)."""

from __future__ import annotations

from typing import Any

from zenrec._errors import ConfigError

__all__ = ["frame_as"]


def frame_as(df: Any, backend: str) -> Any:
    """Return the polars frame ``df`` as ``backend`` (``pandas`` or ``polars``).

    Raises:
        ConfigError: ``backend`` is neither, or pandas is missing for ``backend="pandas"``.
    """
    if backend == "polars":
        return df
    if backend != "pandas":
        raise ConfigError(f"backend must be 'pandas' or 'polars'; got {backend!r}")
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError(
            "backend='pandas' needs pandas (pip install pandas); or pass backend='polars'"
        ) from None
    # column by column through NumPy: no pyarrow needed
    return pd.DataFrame({c: df[c].to_numpy() for c in df.columns})
