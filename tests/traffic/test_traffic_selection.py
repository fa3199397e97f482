"""Selection per lead-time block: the table the user sees is the table the choice is made from,
a baseline that wins a block is what the forecast serves for that block, and a model replaces
the best baseline only when it beats it clearly (the margin rule)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zenrec._errors import ConfigError
from zenrec.traffic import ForecastConfig, forecast_series, series_from_values
from zenrec.traffic.backtest import (
    BY_BLOCK,
    _block_choice,
    backtest,
    choice_groups,
    default_baseline,
    out_of_sample_blocks,
    sign_test_p,
)
from zenrec.traffic.candidates import BASELINES, fit_predict, usable_seasons

os.environ.setdefault("OMP_NUM_THREADS", "1")

CFG = ForecastConfig(
    horizon="24h", history="10d", models=["SeasonalProfile"], windows=8, short_windows=20
)


def walk_with_cycle(seed: int, walk: float, cycle: float, days: int = 14) -> np.ndarray:
    """Hourly values: a random-walk level, a daily cycle and noise (all positive)."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    level = 1000 + np.cumsum(rng.normal(0, walk, len(t)))
    y = level + cycle * np.sin(2 * np.pi * t / 24) + rng.normal(0, 10, len(t))
    return np.maximum(y, 1.0)


def served_matches_block_winners(y: np.ndarray) -> int:
    """Check the choice against its table and the served forecast against each baseline
    winner; returns how many blocks a baseline won."""
    s = series_from_values(y, freq="1h")
    res = forecast_series(s, CFG)
    bt = res.backtest
    assert bt is not None and bt.blocks
    # the choice comes from the table, every model on the same origins: the best baseline,
    # unless the lowest mean MASE is a model's and it beats that baseline clearly
    for b in bt.blocks:
        lowest = min(b["scores"], key=lambda m: b["scores"][m])
        assert b["lowest"] == lowest
        base = b["best_baseline"]
        clear = lowest not in BASELINES and b["sign_p"] <= bt.switch_alpha
        clear = clear and b["scores"][lowest] <= (1 - bt.switch_margin) * b["scores"][base]
        assert b["winner"] == (lowest if clear else base)
        assert b["origins"] >= 20 or b["end"] > 6
    train = y[-10 * 24 :]
    seasons = usable_seasons(3600.0, len(train))
    starts = [0, *bt.block_ends[:-1]]
    won = 0
    for b in bt.blocks:
        a, e = b["start"], b["end"]
        assert a == starts[bt.block_ends.index(e)] or e - a >= 2  # merged blocks are longer
        if b["winner"] not in BASELINES:
            continue
        won += 1
        own = fit_predict(b["winner"], train, 24, seasons, 3600.0)
        np.testing.assert_allclose(
            res.frame["mean"].to_numpy()[a:e], np.clip(own["mean"][a:e], 0, None)
        )
    winners = {b["winner"] for b in bt.blocks}
    assert res.model == (BY_BLOCK if len(winners) > 1 else winners.pop())
    return won


def test_a_random_walk_serves_its_baseline_at_short_leads() -> None:
    # a level that wanders and no cycle: the last value wins the first hour
    y = walk_with_cycle(seed=1, walk=40.0, cycle=0.0)
    assert served_matches_block_winners(y) >= 1


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    walk=st.sampled_from([0.0, 5.0, 40.0]),
    cycle=st.sampled_from([0.0, 100.0, 400.0]),
)
def test_baseline_block_winners_are_served(seed: int, walk: float, cycle: float) -> None:
    served_matches_block_winners(walk_with_cycle(seed, walk, cycle))


def test_short_blocks_rest_on_many_origins_and_out_of_sample_report() -> None:
    s = series_from_values(walk_with_cycle(seed=3, walk=5.0, cycle=300.0, days=21), freq="1h")
    bt = backtest(s, 48, models=["SeasonalProfile"], input_size=14 * 24, windows=6, step=24)
    assert bt is not None
    by = {b["block"]: b for b in bt.blocks}
    assert "1h" not in by and by["6h"]["leads"] == "<= 6h"  # the 1-bucket block is merged
    assert by["6h"]["origins"] >= 24  # hourly short origins
    assert by["2d"]["origins"] == 6  # long blocks: the daily origins only
    oos = {r["block"]: r for r in out_of_sample_blocks(bt, min_origins=3)}
    assert oos["6h"]["origins_scored"] == by["6h"]["origins"] - 3
    assert oos["2d"]["origins_scored"] == 3
    # the chosen forecast is never worse than a baseline on the origins it was chosen on
    for b in bt.blocks:
        assert b["winner_vs_best_baseline"] <= 1.0


def test_one_bucket_blocks_are_chosen_with_the_next() -> None:
    assert choice_groups([1, 12, 72, 288]) == [(0, 1), (2, 2), (3, 3)]  # 5-min buckets
    assert choice_groups([1, 6, 24, 48]) == [(0, 1), (2, 2), (3, 3)]  # hourly buckets
    assert choice_groups([1, 2, 7]) == [(0, 1), (2, 2)]  # daily buckets
    assert choice_groups([2, 12, 48]) == [(0, 0), (1, 1), (2, 2)]  # 30-min buckets
    assert choice_groups([1]) == [(0, 0)]


def test_sign_test_matches_the_binomial_tail() -> None:
    assert sign_test_p(10, 10) == 0.5**10
    assert abs(sign_test_p(5, 10) - 0.623046875) < 1e-12
    assert sign_test_p(0, 7) == 1.0


def _choice(base: np.ndarray, cand: np.ndarray) -> dict:
    errs = {
        "Naive": dict(enumerate(base)),
        "WindowAverage": dict(enumerate(base * 1.5)),
        "MSTL": dict(enumerate(cand)),
    }
    ch = _block_choice(errs, list(errs), list(range(len(base))), alpha=0.05, margin=0.02)
    assert ch is not None
    return ch


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(5, 40),
    seed=st.integers(0, 10_000),
    gain=st.floats(-0.2, 0.3),
    noise=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
)
def test_the_served_model_is_the_baseline_unless_a_model_beats_it_clearly(
    n: int, seed: int, gain: float, noise: float
) -> None:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 2.0, n)
    cand = base * (1 - gain) * np.exp(rng.normal(0, noise, n))
    # a mean gain of exactly the margin is a tie that rounding decides either way
    assume(abs((1 - cand.mean() / base.mean()) - 0.02) > 1e-9)
    ch = _choice(base, cand)
    wins = int(np.sum(cand < base))
    decided = int(np.sum(cand != base))
    clear = sign_test_p(wins, decided) <= 0.05 and cand.mean() <= 0.98 * base.mean()
    assert ch["winner"] == ("MSTL" if clear else "Naive")
    assert ch["best_baseline"] == "Naive"
    # the served block is never worse than the best baseline on the origins it was chosen on
    assert ch["winner_vs_best_baseline"] <= 1.0


def test_a_lower_mean_from_one_lucky_origin_keeps_the_baseline() -> None:
    # the model is worse on 9 of 10 origins and far better on one: lower mean, no evidence
    base = np.ones(10)
    cand = np.r_[np.full(9, 1.05), 0.1]
    ch = _choice(base, cand)
    assert ch["lowest"] == "MSTL" and ch["winner"] == "Naive"
    # better on every origin by 10 %: clear, so the model is served
    assert _choice(base, base * 0.9)["winner"] == "MSTL"


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(5, 40),
    seed=st.integers(0, 10_000),
    gain=st.floats(-0.2, 0.3),
    model_gain=st.floats(-0.2, 0.3),
    noise=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_the_default_baseline_is_served_unless_another_baseline_beats_it_clearly(
    n: int, seed: int, gain: float, model_gain: float, noise: float
) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.uniform(0.5, 2.0, n)
    other = ref * (1 - gain) * np.exp(rng.normal(0, noise, n))
    model = ref * (1 - model_gain) * np.exp(rng.normal(0, noise, n))
    for a, b in ((other, ref), (model, ref), (model, other)):  # exact margin ties: rounding
        assume(abs((1 - a.mean() / b.mean()) - 0.02) > 1e-9)
    errs = {
        "Naive": dict(enumerate(ref)),
        "WindowAverage": dict(enumerate(other)),
        "MSTL": dict(enumerate(model)),
    }

    def clearly(a: np.ndarray, b: np.ndarray) -> bool:
        p = sign_test_p(int(np.sum(a < b)), int(np.sum(a != b)))
        return p <= 0.05 and a.mean() <= 0.98 * b.mean()

    ch = _block_choice(errs, list(errs), list(range(n)), 0.05, 0.02, reference="Naive")
    assert ch is not None
    lowest_base = "WindowAverage" if other.mean() < ref.mean() else "Naive"
    served = "WindowAverage" if lowest_base == "WindowAverage" and clearly(other, ref) else "Naive"
    assert ch["served_baseline"] == served and ch["best_baseline"] == lowest_base
    s_err = other if served == "WindowAverage" else ref
    lowest_is_model = model.mean() < min(ref.mean(), other.mean())
    assert ch["winner"] == ("MSTL" if lowest_is_model and clearly(model, s_err) else served)
    # without a reference the rule is the lowest baseline's, as before
    ch0 = _block_choice(errs, list(errs), list(range(n)), 0.05, 0.02)
    assert ch0 is not None and "served_baseline" not in ch0
    b_err = other if lowest_base == "WindowAverage" else ref
    assert ch0["winner"] == ("MSTL" if lowest_is_model and clearly(model, b_err) else lowest_base)


def test_the_baseline_rule_reaches_the_blocks_and_the_out_of_sample_score() -> None:
    s = series_from_values(walk_with_cycle(seed=4, walk=40.0, cycle=0.0, days=21), freq="1h")
    kw = {"models": [], "input_size": 14 * 24, "windows": 6, "step": 24}
    bt = backtest(s, 48, baseline_rule="default", **kw)
    assert bt is not None and bt.baseline_rule == "default"
    for b in bt.blocks:
        assert b["default_baseline"] == default_baseline(b["end"] * 3600.0)
        assert b["served_baseline"] == b["winner"]  # baselines only
    lowest = backtest(s, 48, **kw)
    assert lowest is not None and all("served_baseline" not in b for b in lowest.blocks)
    # out of sample, either rule on the same backtest
    a = out_of_sample_blocks(lowest, min_origins=3, baseline_rule="default")
    b = out_of_sample_blocks(bt, min_origins=3)
    assert [r.get("mase") for r in a] == [r.get("mase") for r in b]
    with pytest.raises(ConfigError, match="baseline_rule"):
        out_of_sample_blocks(bt, baseline_rule="best")
    with pytest.raises(ConfigError, match="baseline_rule"):
        backtest(s, 48, baseline_rule="best", **kw)
