import numpy as np
import pytest

from zenrec._arrays import unique


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).integers(0, 10**9, 5000),
        np.random.default_rng(1).integers(0, 7, 5000).astype(np.int32),
        np.random.default_rng(2).integers(0, 200, 300).astype(np.uint16),
        np.array([True, False, True]),
        np.array([], dtype=np.int64),
        np.array([5]),
        np.array(["b", "a", "b"]),
        np.array([0.5, np.nan, 0.5, -1.0]),
        np.arange(12).reshape(3, 4) % 5,
    ],
)
def test_unique_matches_numpy(values):
    got, want = unique(values), np.unique(values)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "codes",
    [
        np.random.default_rng(0).integers(0, 400_000, 20_000),
        np.random.default_rng(1).integers(0, 50, 5000).astype(np.int32),
        np.random.default_rng(2).integers(0, 2**31, 3000).astype(np.uint32),
        np.array([5, -1, 5, 2]),  # negative: falls back
        np.array([], dtype=np.int64),
        np.array([0.5, 0.2, 0.5]),  # floats: falls back
    ],
)
def test_stable_argsort_matches_numpy(codes):
    from zenrec._arrays import stable_argsort

    np.testing.assert_array_equal(stable_argsort(codes), np.argsort(codes, kind="stable"))
