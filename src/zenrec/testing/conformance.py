"""The shared recommender conformance suite (pytest-style test methods)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from zenrec._arrays import unique
from zenrec._errors import ConfigError, NotFittedError
from zenrec.data.dataset import Dataset
from zenrec.data.vocab import Vocabulary

if TYPE_CHECKING:
    from zenrec.models.base import Recommender

__all__ = [
    "Planted",
    "RecommenderConformance",
    "SequentialConformance",
    "planted_blocks",
    "planted_sequences",
]


@dataclass
class Planted:
    """A planted dataset: ``train`` plus, per user, the one withheld item (raw ids)."""

    train: Dataset
    withheld: dict[Any, Any]
    group_of_user: dict[Any, int]
    largest_group: int


def planted_blocks(
    n_groups: int = 4,
    items_per_group: int = 8,
    users_per_group: tuple[int, ...] | None = None,
    *,
    string_ids: bool = False,
    seed: int = 0,
) -> Planted:
    """Users of group g consume every item of block g except one withheld item.

    The withheld item of each user is consumed by the other users of the group, so any
    collaborative model must rank it first among the user's unseen items. Group 0 is the
    largest, so its items are also the most popular. Ratings are 5 in-block; each user also
    rates one random out-of-block items 1, so rating models see the structure too.
    """
    rng = np.random.default_rng(seed)
    sizes = users_per_group or (40,) + tuple(16 - 2 * g for g in range(1, n_groups))
    users, items, ratings = [], [], []
    withheld: dict[Any, Any] = {}
    group_of: dict[Any, int] = {}
    uid = 0
    n_items = n_groups * items_per_group

    def rid(prefix: str, x: int) -> Any:
        return f"{prefix}{x}" if string_ids else 100 + x

    for g, size in enumerate(sizes):
        block = np.arange(g * items_per_group, (g + 1) * items_per_group)
        for j in range(size):
            held = block[j % items_per_group]
            u = rid("u", uid)
            for it in block:
                if it != held:
                    users.append(u)
                    items.append(rid("i", int(it)))
                    ratings.append(5.0)
            others = rng.choice(np.setdiff1d(np.arange(n_items), block), 1, replace=False)
            for it in others:
                users.append(u)
                items.append(rid("i", int(it)))
                ratings.append(1.0)
            withheld[u] = rid("i", int(held))
            group_of[u] = g
            uid += 1
    iv = Vocabulary.from_values([rid("i", x) for x in range(n_items)])
    train = Dataset.from_raw(
        np.array(users), np.array(items), np.array(ratings), item_vocab=iv, name="planted"
    )
    return Planted(train, withheld, group_of, 0)


def planted_sequences(
    n_groups: int = 4,
    items_per_group: int = 8,
    users_per_group: tuple[int, ...] | None = None,
    length: int = 5,
    *,
    string_ids: bool = False,
    seed: int = 0,
) -> Planted:
    """Users of group g walk the items of block g in a fixed cyclic order; the withheld item is
    the next step of the walk.

    User j of group g starts at position ``j % items_per_group`` and consumes ``length``
    consecutive items of the cycle (timestamps 0, 1, ...); the withheld item is the one after
    the last. Among the user's unseen items of the block only the order tells which comes next,
    so a sequential model must rank it first, while an order-blind model cannot separate it from
    the other ``items_per_group - length - 1`` unseen items of the block. Each user also has one
    out-of-block item at time -1 (before the walk), as noise. Group 0 is the largest.
    """
    rng = np.random.default_rng(seed)
    sizes = users_per_group or (40,) + tuple(16 - 2 * g for g in range(1, n_groups))
    users, items, times = [], [], []
    withheld: dict[Any, Any] = {}
    group_of: dict[Any, int] = {}
    n_items = n_groups * items_per_group

    def rid(prefix: str, x: int) -> Any:
        return f"{prefix}{x}" if string_ids else 100 + x

    uid = 0
    for g, size in enumerate(sizes):
        block = np.arange(g * items_per_group, (g + 1) * items_per_group)
        for j in range(size):
            u = rid("u", uid)
            other = int(rng.choice(np.setdiff1d(np.arange(n_items), block)))
            users.append(u)
            items.append(rid("i", other))
            times.append(-1)
            start = j % items_per_group
            for t in range(length):
                users.append(u)
                items.append(rid("i", int(block[(start + t) % items_per_group])))
                times.append(t)
            withheld[u] = rid("i", int(block[(start + length) % items_per_group]))
            group_of[u] = g
            uid += 1
    iv = Vocabulary.from_values([rid("i", x) for x in range(n_items)])
    train = Dataset.from_raw(
        np.array(users),
        np.array(items),
        None,
        np.array(times),
        item_vocab=iv,
        name="planted-sequences",
    )
    return Planted(train, withheld, group_of, 0)


_FITTED: dict[tuple[type, bool], tuple[Any, Planted]] = {}
_FITTED_COLD: dict[type, tuple[Any, Planted, Any]] = {}


class RecommenderConformance:
    """Mixin of conformance tests; subclasses define :meth:`make_model`.

    Attributes:
        planted_scope: ``"all"`` (every user's withheld item must come first) or
            ``"largest_group"`` (only for users of the most popular block, e.g. Pop).
        min_planted_hit_rate: Fraction of users whose withheld item must be ranked first.
        history_support: The model scores a visitor's item history
            (``recommend_from_items``); ``False``: it must fall back to popularity and say so.
        history_min_in_block: Fraction of the history-based recommendations (over all blocks)
            that must be block mates; 1.0 for models that score a history exactly.
        similar_support: The model has item-item similarities (``similar_items``); ``False``:
            it must raise a ``ConfigError`` naming the model.
    """

    planted_scope: str = "all"
    min_planted_hit_rate: float = 0.95
    history_support: bool = True
    history_min_in_block: float = 1.0
    similar_support: bool = True

    def make_model(self) -> Recommender:  # pragma: no cover - overridden
        raise NotImplementedError

    # -------------------------------------------------------------- helpers
    def _fitted(self, string_ids: bool = False) -> tuple[Any, Planted]:
        """The model fitted on planted data, once per test class (no test here changes it)."""
        key = (type(self), string_ids)
        cached = _FITTED.get(key)
        if cached is None:
            planted = planted_blocks(string_ids=string_ids)
            cached = (self.make_model().fit(planted.train), planted)
            _FITTED[key] = cached
        return cached

    # -------------------------------------------------------------- tests
    def test_not_fitted_error(self) -> None:
        import pytest

        model = self.make_model()
        with pytest.raises(NotFittedError, match="not fitted"):
            model.recommend([1], k=3)

    def test_planted_withheld_item_first(self) -> None:
        model, planted = self._fitted()
        users = list(planted.withheld)
        if self.planted_scope == "largest_group":
            users = [u for u in users if planted.group_of_user[u] == planted.largest_group]
        if getattr(model, "task", "ranking") == "rating":
            # A rating model cannot learn preference from missing data; it must rank the item
            # the user's group loved above the items the group rated 1.
            tr = planted.train
            assert tr.ratings is not None  # planted data is rated
            hits = []
            for u in users:
                g = planted.group_of_user[u]
                peers = [
                    tr.user_vocab.encode([v])[0]
                    for v, gv in planted.group_of_user.items()
                    if gv == g
                ]
                low = (np.isin(tr.users, peers)) & (tr.ratings <= 1)
                cands = [planted.withheld[u], *tr.item_vocab.decode(unique(tr.items[low])).tolist()]
                top = model.recommend([u], k=1, candidates=cands).item_lists[0]
                hits.append(len(top) and top[0] == planted.withheld[u])
        else:
            recs = model.recommend(users, k=1)
            hits = [recs.item_lists[j][0] == planted.withheld[u] for j, u in enumerate(users)]
        rate = float(np.mean(hits))
        assert rate >= self.min_planted_hit_rate, (
            f"withheld item first for only {rate:.0%} of users"
        )

    def test_string_ids_work(self) -> None:
        model, planted = self._fitted(string_ids=True)
        u = next(iter(planted.withheld))
        recs = model.recommend([u], k=3)
        assert all(isinstance(x, str) for x in recs.item_lists[0])
        assert all(str(x).startswith("i") for x in recs.item_lists[0])

    def test_exclude_seen(self) -> None:
        model, planted = self._fitted()
        u = next(iter(planted.withheld))
        seen = set(
            planted.train.item_vocab.decode(
                planted.train.items[planted.train.users == planted.train.user_vocab.encode([u])[0]]
            ).tolist()
        )
        n = planted.train.n_items
        recs = model.recommend([u], k=n)
        assert not seen & set(recs.item_lists[0].tolist())
        assert len(recs.item_lists[0]) == n - len(seen)
        with_seen = model.recommend([u], k=n, exclude_seen=False)
        assert len(with_seen.item_lists[0]) == n

    def test_unknown_users_fall_back(self) -> None:
        model, planted = self._fitted()
        known = next(iter(planted.withheld))
        recs = model.recommend([known, 999_999, "nobody"], k=5)
        assert recs.fallback.tolist() == [False, True, True]
        assert recs.users[2] == "nobody"
        pop = model.item_popularity_
        got = pop[model.item_vocab.encode(recs.item_lists[1])]
        assert got.tolist() == sorted(got.tolist(), reverse=True)
        assert sorted(got.tolist()) == sorted(np.sort(pop)[-5:].tolist())
        assert recs.item_lists[1].tolist() == recs.item_lists[2].tolist()

    def _fitted_with_cold_user(self) -> tuple[Any, Planted, Any]:
        """The model fitted on planted data minus every row of one user, who stays in the
        vocabulary (as in a split, whose parts keep the full vocabulary): a cold user."""
        cached = _FITTED_COLD.get(type(self))
        if cached is None:
            planted = self._planted_data()
            tr = planted.train
            cold = next(iter(planted.withheld))
            keep = tr.users != tr.user_vocab.encode([cold])[0]
            train = tr.subset(np.flatnonzero(keep))
            assert train.n_users == tr.n_users  # the vocabulary still holds the cold user
            cached = (self.make_model().fit(train), planted, cold)
            _FITTED_COLD[type(self)] = cached
        return cached

    def _planted_data(self) -> Planted:
        return planted_blocks()

    def test_cold_user_gets_popularity(self) -> None:
        """A user in the vocabulary without training rows is scored and listed by popularity,
        flagged as an unknown user is (never the model's all-zero row in index order)."""
        model, planted, cold = self._fitted_with_cold_user()
        warm = list(planted.withheld)[1]
        n = model.n_items
        recs = model.recommend([cold, warm, "nobody"], k=n)
        assert recs.fallback.tolist() == [True, False, True]
        assert recs.fallback_kind == ["popularity", "none", "popularity"]
        pop = model.item_popularity_
        order = np.lexsort((np.arange(n), -pop))  # most popular first, ties by index
        assert model.item_vocab.encode(recs.item_lists[0]).tolist() == order.tolist()
        assert recs.item_lists[0].tolist() == recs.item_lists[2].tolist()
        np.testing.assert_array_equal(recs.score_lists[0], pop[order])
        # the evaluator's scoring path, and score(), give the same popularity scores
        cidx = model.user_vocab.encode([cold])
        np.testing.assert_array_equal(model.score_indices(cidx)[0], pop)
        np.testing.assert_array_equal(model.score([cold])[0], pop)
        assert model.cold_users(cidx).tolist() == [True]

    def test_ties_are_broken_by_popularity(self, monkeypatch: Any) -> None:
        """Equal scores (here an all-zero row for a known user) are ranked by popularity."""
        model, planted, _ = self._fitted_with_cold_user()
        warm = list(planted.withheld)[-1]  # a user of the smallest block
        n = model.n_items
        monkeypatch.setattr(
            model, "_score_users", lambda users: np.zeros((len(users), n), np.float32)
        )
        recs = model.recommend([warm], k=n)
        assert recs.fallback_kind == ["none"]
        pop = model.item_popularity_
        seen = model.seen_[model.user_vocab.encode([warm])[0]].indices
        order = [i for i in np.lexsort((np.arange(n), -pop)).tolist() if i not in set(seen)]
        assert model.item_vocab.encode(recs.item_lists[0]).tolist() == order
        if self.history_support:
            monkeypatch.setattr(model, "_score_from_items", lambda items: np.zeros(n, np.float32))
            hist = model.recommend_from_items(model.item_vocab.ids[:2], k=n)
            assert hist.fallback_kind == ["history"]
            want = [i for i in np.lexsort((np.arange(n), -pop)).tolist() if i not in (0, 1)]
            assert model.item_vocab.encode(hist.item_lists[0]).tolist() == want

    def test_unknown_items_and_candidates(self) -> None:
        model, planted = self._fitted()
        u = next(iter(planted.withheld))
        cands = [planted.withheld[u], 101, 102, 555_555]
        recs = model.recommend([u], k=10, candidates=cands, exclude_seen=False)
        assert set(recs.item_lists[0].tolist()) <= {planted.withheld[u], 101, 102}
        assert recs.unknown_items.tolist() == [555_555]
        s = model.score([u], [planted.withheld[u], 555_555])
        assert np.isfinite(s[0, 0]) and np.isnan(s[0, 1])

    def test_batched_equals_one_by_one(self) -> None:
        model, planted = self._fitted()
        users = list(planted.withheld)[:20]
        batched = model.recommend(users, k=5, batch_size=7)
        for j, u in enumerate(users):
            single = model.recommend([u], k=5)
            assert single.item_lists[0].tolist() == batched.item_lists[j].tolist()
            np.testing.assert_allclose(
                single.score_lists[0], batched.score_lists[j], rtol=1e-5, atol=1e-6
            )

    def test_save_load_round_trip(self, tmp_path: Any) -> None:
        from zenrec.models import load_model

        model, planted = self._fitted()
        users = list(planted.withheld)[:10] + ["nobody"]
        before = model.recommend(users, k=6)
        path = model.save(tmp_path / "bundle")
        loaded = load_model(path)
        assert type(loaded) is type(model)
        assert loaded.params() == model.params()
        after = loaded.recommend(users, k=6)
        for a, b in zip(before.item_lists, after.item_lists):
            assert a.tolist() == b.tolist()
        for a, b in zip(before.score_lists, after.score_lists):
            np.testing.assert_array_equal(a, b)
        assert after.fallback.tolist() == before.fallback.tolist()
        # overwriting an existing bundle keeps it loadable (atomic replace)
        model.save(path)
        assert (
            load_model(path).recommend(users[:1], k=3).item_lists[0].tolist()
            == before.item_lists[0][:3].tolist()
        )

    def test_history_recovers_planted_block(self) -> None:
        """A visitor who consumed half of a block is recommended the rest of that block."""
        model, planted = self._fitted()
        n_groups, per = 4, planted.train.n_items // 4
        in_block: list[float] = []
        for g in range(n_groups):
            block = [100 + x for x in range(g * per, (g + 1) * per)]
            history = block[: per // 2]
            candidates = None
            if getattr(model, "task", "ranking") == "rating" and self.history_support:
                # As above: a rating model must put the block above what the block's users
                # rated low.
                tr = planted.train
                assert tr.ratings is not None
                peers = tr.user_vocab.encode(
                    [v for v, gv in planted.group_of_user.items() if gv == g]
                )
                low = np.isin(tr.users, peers) & (tr.ratings <= 1)
                candidates = [*block, *tr.item_vocab.decode(unique(tr.items[low])).tolist()]
            recs = model.recommend_from_items(
                [*history, 777_777], k=per - len(history), candidates=candidates
            )
            assert recs.unknown_items.tolist() == [777_777]
            got = recs.item_lists[0].tolist()
            assert not set(got) & set(history), "history items must be excluded by default"
            if not self.history_support:
                assert recs.fallback_kind == ["popularity"] and recs.fallback.tolist() == [True]
                pop = model.item_popularity_[model.item_vocab.encode(got)]
                assert pop.tolist() == sorted(pop.tolist(), reverse=True)
                continue
            assert recs.fallback_kind == ["history"] and recs.fallback.tolist() == [False]
            assert len(got) == per - len(history)
            in_block.append(len(set(got) & set(block[len(history) :])) / len(got))
        if self.history_support:
            assert float(np.mean(in_block)) >= self.history_min_in_block, (
                f"block mates per block: {in_block}"
            )
        # nothing known: popularity, flagged; exclude_seen=False keeps the history items
        none_known = model.recommend_from_items([777_777], k=3)
        assert none_known.fallback_kind == ["popularity"]
        kept = model.recommend_from_items([100, 101], k=planted.train.n_items, exclude_seen=False)
        assert len(kept.item_lists[0]) == planted.train.n_items

    def test_similar_items_come_from_the_block(self) -> None:
        import pytest

        model, planted = self._fitted()
        per = planted.train.n_items // 4
        if not self.similar_support:
            with pytest.raises(ConfigError, match=model.name):
                model.similar_items(100, k=3)
            return
        tr = planted.train
        group = np.asarray(
            [planted.group_of_user[u] for u in tr.user_vocab.decode(tr.users).tolist()]
        )
        for g in range(4):
            # the block's item least consumed by other groups (their one random out-of-block item
            # each can tie an item to a second block, legitimately)
            block_idx = tr.item_vocab.encode(list(range(100 + g * per, 100 + (g + 1) * per)))
            outside = np.bincount(tr.items[group != g], minlength=tr.n_items)[block_idx]
            item = int(tr.item_vocab.decode(block_idx[int(np.argmin(outside))]))
            recs = model.similar_items(item, k=per - 1)
            got = recs.item_lists[0].tolist()
            assert len(got) == per - 1 and item not in got
            # Most of the nearest items are block mates (EASE's weights are regression
            # coefficients, not cosines, so an occasional outsider is legitimate).
            in_block = len(set(got) & set(range(100 + g * per, 100 + (g + 1) * per)))
            assert in_block >= per - 3, f"block {g}: only {in_block} of {got} are block mates"
            assert recs.score_lists[0].tolist() == sorted(
                recs.score_lists[0].tolist(), reverse=True
            )
        missing = model.similar_items(777_777, k=3)
        assert len(missing.item_lists[0]) == 0 and missing.unknown_items.tolist() == [777_777]


class SequentialConformance(RecommenderConformance):
    """The conformance suite on :func:`planted_sequences` (order matters) for sequential models."""

    def _planted_data(self) -> Planted:
        return planted_sequences()

    def _fitted(self, string_ids: bool = False) -> tuple[Any, Planted]:
        planted = planted_sequences(string_ids=string_ids)
        model = self.make_model().fit(planted.train)
        return model, planted

    # A sequence model's history test: the planted next step of a group's walk comes first.
    similar_support = False

    def test_history_recovers_planted_block(self) -> None:
        """A visitor who walked the first steps of a block's cycle gets the next step first."""
        model, planted = self._fitted()
        per = planted.train.n_items // 4
        hits = 0
        for g in range(4):
            cycle = [100 + x for x in range(g * per, (g + 1) * per)]
            recs = model.recommend_from_items(cycle[:5], k=3)
            assert recs.fallback_kind == ["history"]
            hits += int(recs.item_lists[0][0] == cycle[5])
        assert hits >= 3, f"the next step came first for {hits} of 4 planted walks"
