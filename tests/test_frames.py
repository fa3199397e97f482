"""zenrec._frames.frame_as: the one place tables handed to users become pandas or polars."""

import polars as pl
import pytest

from zenrec._errors import ConfigError
from zenrec._frames import frame_as


def test_frame_as_returns_polars_as_is_and_pandas_column_by_column() -> None:
    df = pl.DataFrame({"user": ["a", "b"], "score": [0.5, 0.25]})
    assert frame_as(df, "polars") is df
    pd_df = frame_as(df, "pandas")
    assert type(pd_df).__module__.startswith("pandas")
    assert list(pd_df.columns) == ["user", "score"]
    assert pd_df["score"].tolist() == [0.5, 0.25]


def test_frame_as_refuses_an_unknown_backend_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"^backend must be 'pandas' or 'polars'; got 'arrow'$"):
        frame_as(pl.DataFrame({"x": [1]}), "arrow")
