"""The recommender protocol every zenrec model follows.

Raw ids in, raw ids out: ``fit(train, valid)``, ``score(users, items)``,
``recommend(users, k, exclude_seen, candidates)``, ``save(path)`` / ``load(path)``.
Subclasses implement ``_fit``, ``_score_users`` (scores of user indices over the whole
catalog) and ``_state`` / ``_load_state`` (learned arrays).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError

from zenrec._arrays import unique
from zenrec._errors import BundleError, ConfigError, NotFittedError
from zenrec.data.dataset import Dataset
from zenrec.data.vocab import Vocabulary
from zenrec.evaluation.topk import top_k_indices

__all__ = [
    "FallbackKind",
    "HistoryScores",
    "ModelConfig",
    "Recommendations",
    "Recommender",
    "ResolvedParams",
    "config_error",
]

FallbackKind = Literal["none", "history", "popularity"]


class ModelConfig(BaseModel):
    """Base of every model config: strict, typed, JSON round-trippable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def config_error(model: str, exc: ValidationError) -> ConfigError:
    """Turn a pydantic error into one line: which parameter, what was expected, what was got."""
    parts = []
    errors = exc.errors()
    # A parameter that is a number or "auto" fails in both union branches; report the number's
    # constraint once, under the parameter's own name, and say that "auto" is also accepted.
    auto_fields = {
        e["loc"][0]
        for e in errors
        if len(e.get("loc", ())) == 2 and str(e["loc"][1]).startswith("literal['auto']")
    }
    for err in errors:
        loc_t = tuple(err.get("loc", ()))
        if loc_t and loc_t[0] in auto_fields:
            if str(loc_t[1]).startswith("literal["):
                continue
            err = {**err, "loc": loc_t[:1], "msg": f"{err.get('msg', 'invalid')} (or 'auto')"}
        loc = ".".join(str(x) for x in err.get("loc", ())) or "config"
        if err.get("type") == "extra_forbidden":
            parts.append(f"'{loc}' is not a parameter of {model}")
        else:
            parts.append(
                f"the '{loc}' parameter of {model}: {err.get('msg', 'invalid')}; got {err.get('input')!r}"
            )
    return ConfigError("; ".join(parts))


@dataclass
class Recommendations:
    """Top-k lists for a batch of users, in raw ids.

    Attributes:
        users: Raw user ids, one per row.
        item_lists: Per user, raw item ids best first (length <= k).
        score_lists: Per user, the matching scores.
        fallback: Per user, True when popularity was used: the user was unknown, or known
            without a training interaction (a cold user).
        unknown_items: Candidate (or history) ids that were not in the catalog (ignored).
        fallback_kind: Per user, how the list was made: ``"none"`` (the model's own scores
            of a known user), ``"history"`` (scored from a list of items, see
            :meth:`Recommender.recommend_from_items`) or ``"popularity"``.
        unknown_items: Candidate ids that were not in the catalog (ignored).
        explanation: Filled by attention models' ``explain``: per user, per recommended item,
            the history items with the highest attention weight as ``{item, title, weight}``
            dicts (``None`` when not asked for).
    """

    users: np.ndarray
    item_lists: list[np.ndarray]
    score_lists: list[np.ndarray]
    fallback: np.ndarray
    unknown_items: np.ndarray
    titles: Mapping[Any, str] | None = field(default=None, repr=False)
    """Raw item id -> title, when the model's training data had a ``title`` item feature."""
    fallback_kind: list[str] = field(default_factory=list)
    explanation: list[list[list[dict[str, Any]]]] | None = None

    @property
    def items(self) -> np.ndarray:
        """2-D array of item ids (rows padded only if lengths differ is not allowed: raises)."""
        lens = {len(x) for x in self.item_lists}
        if len(lens) > 1:
            raise ValueError("users got lists of different lengths; use item_lists")
        return np.stack(self.item_lists) if self.item_lists else np.zeros((0, 0))

    @property
    def scores(self) -> np.ndarray:
        lens = {len(x) for x in self.score_lists}
        if len(lens) > 1:
            raise ValueError("users got lists of different lengths; use score_lists")
        return np.stack(self.score_lists) if self.score_lists else np.zeros((0, 0))

    def to_frame(self, *, titles: bool | None = None, backend: str = "pandas") -> Any:
        """The lists as one long table: ``user, rank, item, score[, title], fallback, fallback_kind``.

        Args:
            titles: Add a ``title`` column: ``None`` (default) when the model knows titles,
                ``True`` always (the model's training data must have had a ``title`` item
                feature), ``False`` never.
            backend: ``pandas`` (default) or ``polars``.

        Raises:
            ConfigError: ``titles=True`` but the model was fitted on data without a
                ``title`` item feature (attach one with ``Dataset.with_item_features``), or
                pandas is missing for ``backend="pandas"``.

        Examples:
            >>> import zenrec
            >>> ds = zenrec.synthetic_dataset(n_users=20, n_items=15, seed=0)
            >>> recs = zenrec.create_model("pop").fit(ds).recommend(ds.user_vocab.ids[:2], k=3)
            >>> list(recs.to_frame(titles=False, backend="polars").columns)
            ['user', 'rank', 'item', 'score', 'fallback', 'fallback_kind']
        """
        import polars as pl

        from zenrec.evaluation.evaluator import _frame_backend

        if titles and self.titles is None:
            raise ConfigError(
                "to_frame(titles=True): these recommendations carry no titles, because the model "
                "was fitted on data without a 'title' item feature; attach one with "
                "ds.with_item_features(table, key=..., features={'title': 'text'}) or pass titles=False"
            )
        lens = [len(x) for x in self.item_lists]
        n = int(sum(lens))
        item_dtype = (
            self.item_lists[0].dtype if self.item_lists and self.item_lists[0].size else None
        )
        items = np.concatenate(self.item_lists) if n else np.zeros(0, dtype=item_dtype or np.int64)
        cols: dict[str, Any] = {
            "user": np.repeat(
                np.asarray([_py(u) for u in self.users], dtype=object), lens
            ).tolist(),
            "rank": np.concatenate([np.arange(1, m + 1) for m in lens])
            if n
            else np.zeros(0, np.int64),
            "item": items,
            "score": np.concatenate(self.score_lists).astype(np.float64) if n else np.zeros(0),
        }
        if titles is not False and self.titles is not None:
            cols["title"] = [self.titles.get(_py(x)) for x in items]
        cols["fallback"] = np.repeat(np.asarray(self.fallback, dtype=bool), lens)
        kinds = self.fallback_kind
        if len(kinds) == len(lens):
            cols["fallback_kind"] = np.repeat(np.asarray(kinds, dtype=object), lens).tolist()
        return _frame_backend(pl.DataFrame(cols, strict=False), backend)

    def _rows(self, limit_users: int = 5) -> list[tuple[Any, int, Any, float, str | None, bool]]:
        out = []
        for u, items, scores, fb in list(
            zip(self.users, self.item_lists, self.score_lists, self.fallback)
        )[:limit_users]:
            for r, (it, sc) in enumerate(zip(items, scores), start=1):
                title = None if self.titles is None else self.titles.get(_py(it))
                out.append((_py(u), r, _py(it), float(sc), title, bool(fb)))
        return out

    def __repr__(self) -> str:
        head = f"Recommendations({len(self.users)} user{'s' if len(self.users) != 1 else ''}"
        lines = [
            head
            + (
                ", unknown candidate items: " + str(self.unknown_items.tolist())
                if self.unknown_items.size
                else ""
            )
            + ")"
        ]
        rows = self._rows()
        if rows:
            wu = max(4, *(len(str(r[0])) for r in rows))
            wi = max(4, *(len(str(r[2])) for r in rows))
            lines.append(f"  {'user':>{wu}}  rank  {'item':>{wi}}      score  title")
            for u, rank, it, sc, title, fb in rows:
                mark = "  (popularity fallback)" if fb and rank == 1 else ""
                lines.append(
                    f"  {u!s:>{wu}}  {rank:>4}  {it!s:>{wi}}  {sc:9.4f}  {title or ''}{mark}"
                )
        if len(self.users) > 5:
            lines.append(f"  ... {len(self.users) - 5} more users; .to_frame() has all of them")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        has_titles = self.titles is not None
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "user",
                "rank",
                "item",
                "score",
                *(["title"] if has_titles else []),
                "fallback",
            )
        )
        body = []
        for u, rank, it, sc, title, fb in self._rows(limit_users=20):
            cells = [escape(str(u)), str(rank), escape(str(it)), f"{sc:.4f}"]
            if has_titles:
                cells.append(escape(title or ""))
            cells.append("yes" if fb else "")
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        more = (
            f"<p>... {len(self.users) - 20} more users; <code>.to_frame()</code> has all of them</p>"
            if len(self.users) > 20
            else ""
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"

    def to_records(self) -> list[dict[str, Any]]:
        out = [
            {
                "user": _py(u),
                "items": [_py(x) for x in items],
                "scores": [float(s) for s in scores],
                "fallback": bool(fb),
                "fallback_kind": kind,
            }
            for u, items, scores, fb, kind in zip(
                self.users, self.item_lists, self.score_lists, self.fallback, self._kinds()
            )
        ]
        if self.explanation is not None:
            for rec, expl in zip(out, self.explanation):
                rec["explanation"] = expl
        return out

    def _kinds(self) -> list[str]:
        if len(self.fallback_kind) == len(self.item_lists):
            return self.fallback_kind
        return ["popularity" if fb else "none" for fb in self.fallback]


@dataclass
class HistoryScores:
    """Scores of one pseudo-user built from a list of items (see ``Recommender.score_from_items``).

    Attributes:
        scores: float32 scores over the whole catalog, shape (n_items,).
        items: Catalog indices of the known history items, oldest first.
        unknown_items: The given ids that are not in the catalog, as given.
        fallback_kind: ``"history"`` when the model scored the history, ``"popularity"`` when
            it cannot (or no history item is known) and popularity was used instead.
    """

    scores: np.ndarray
    items: np.ndarray
    unknown_items: np.ndarray
    fallback_kind: FallbackKind


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


class Recommender(ABC):
    """Base class of zenrec recommenders.

    Subclasses set ``name`` (the CLI name), ``Config`` (a :class:`ModelConfig`) and
    ``task`` (``ranking`` or ``rating``).
    """

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]]
    task: Literal["ranking", "rating"] = "ranking"  # a class default; an instance may change it

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError(
                f"{self.name}: pass either a config object or keyword parameters, not both"
            )
        if config is None:
            try:
                config = self.Config(**params)
            except ValidationError as exc:
                raise config_error(self.name, exc) from None
        elif not isinstance(config, self.Config):
            raise ConfigError(f"{self.name}: config must be a {self.Config.__name__}")
        self.config = config
        self.user_vocab: Vocabulary | None = None
        self.item_vocab: Vocabulary | None = None
        self.seen_: sp.csr_matrix | None = None
        self.item_popularity_: np.ndarray | None = None
        self.item_meta: dict[str, list[Any]] = {}
        self.fit_seconds_: float | None = None
        self.dataset_sha256: str | None = None
        self.history_: list[dict[str, Any]] = []
        self.bundle_meta: dict[str, Any] | None = None  # bundle.json of a loaded model
        self._title_map: dict[Any, str] | None = None
        # Iterative models call this after each validation pass with (epoch, metrics); a tuner
        # uses it for pruning. Whatever it raises propagates out of ``fit``.
        self.epoch_callback: Callable[[int, dict[str, float]], None] | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Dataset, valid: Dataset | None = None) -> Self:
        """Learn from ``train`` (``valid``, if given, may be used for early stopping)."""
        t0 = time.perf_counter()
        self.user_vocab = train.user_vocab
        self.item_vocab = train.item_vocab
        self.seen_ = train.csr()
        self.item_popularity_ = np.asarray(self.seen_.sum(axis=0)).ravel().astype(np.float32)
        self.dataset_sha256 = train.source_sha256
        self._title_map = None
        self.item_meta = _item_meta(train)
        self._fit(train, valid)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    @abstractmethod
    def _fit(self, train: Dataset, valid: Dataset | None) -> None: ...

    @abstractmethod
    def _score_users(self, users: np.ndarray) -> np.ndarray:
        """Scores (float32, shape (len(users), n_items)) of user indices over the catalog."""

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _load_state(self, arrays: dict[str, np.ndarray]) -> None: ...

    def _score_from_items(self, items: np.ndarray) -> np.ndarray | None:
        """Scores (float32, shape (n_items,)) of a pseudo-user who consumed ``items``.

        ``items`` are catalog indices, oldest first, newest last (may be empty of nothing).
        Return ``None`` when the model cannot score a history: the caller then falls back
        to popularity and says so.
        """
        return None

    def _similar_items(self, items: np.ndarray) -> np.ndarray | None:
        """Similarities (float32, shape (len(items), n_items)) of item indices to the catalog.

        Return ``None`` when the model has no item-item similarity.
        """
        return None

    def _meta_state(self) -> dict[str, Any]:
        """JSON-able learned state saved in ``bundle.json`` (e.g. feature specs); optional."""
        return {}

    def _load_meta_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_meta_state` returned."""
        return None

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Score of each (user index, item index) pair; override for speed."""
        out = np.empty(users.size, dtype=np.float32)
        for u in unique(users):
            m = users == u
            out[m] = self._score_users(np.array([u]))[0, items[m]]
        return out

    # ------------------------------------------------------------------ checks
    @property
    def is_fitted(self) -> bool:
        return self.item_vocab is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"This {self.name} instance is not fitted yet. Call 'fit' with a training "
                "Dataset before using this method."
            )

    @property
    def n_items(self) -> int:
        self._check_fitted()
        assert self.item_vocab is not None
        return len(self.item_vocab)

    # ------------------------------------------------------------------ scoring in raw ids
    def score_indices(self, users: np.ndarray) -> np.ndarray:
        """Scores of known user indices over the catalog (the evaluator's fast path).

        A user in the vocabulary without any training interaction (a cold user) gets the
        popularity scores an unknown user gets, never the model's all-zero row.
        """
        self._check_fitted()
        assert self.item_popularity_ is not None
        users = np.asarray(users, dtype=np.int64)
        cold = self.cold_users(users)
        if not cold.any():
            return np.asarray(self._score_users(users), dtype=np.float32)
        out = np.empty((users.size, self.n_items), dtype=np.float32)
        if not cold.all():
            out[~cold] = self._score_users(users[~cold])
        out[cold] = self.item_popularity_
        return out

    def cold_users(self, users: np.ndarray) -> np.ndarray:
        """True for each known user index without a training interaction (scored by popularity)."""
        self._check_fitted()
        assert self.seen_ is not None
        return np.diff(self.seen_.indptr)[np.asarray(users, dtype=np.int64)] == 0

    def popularity_order(self) -> np.ndarray:
        """Item indices, most popular first (ties by index): the tie rule of the lists.

        ``recommend``, ``recommend_from_items`` and the service rank equal scores by training
        popularity, so an all-zero score row gives the popular items, not the first indices.
        """
        self._check_fitted()
        pop = self.item_popularity_
        assert pop is not None
        cached = getattr(self, "_pop_order", None)
        if cached is None or cached[0] is not pop:
            cached = (pop, np.argsort(-np.asarray(pop, dtype=np.float64), kind="stable"))
            self._pop_order = cached
        return cached[1]

    def _top_k(self, s: np.ndarray, k: int) -> np.ndarray:
        """``top_k_indices`` of a (B, n_items) score array, ties broken by popularity."""
        order = self.popularity_order()
        return order[top_k_indices(s[:, order], k)]

    def _fallback_scores(self, n: int) -> np.ndarray:
        assert self.item_popularity_ is not None
        return np.tile(self.item_popularity_, (n, 1))

    def score(self, users: Any, items: Any = None) -> np.ndarray:
        """Scores of raw ``users`` over raw ``items`` (default: the whole catalog).

        Unknown users and known users without a training interaction get popularity scores;
        unknown items get NaN.
        """
        self._check_fitted()
        assert self.user_vocab is not None and self.item_vocab is not None
        uidx = self.user_vocab.encode(users)
        out = np.empty((uidx.size, self.n_items), dtype=np.float32)
        known = uidx >= 0
        if known.any():
            out[known] = self.score_indices(uidx[known])
        if (~known).any():
            out[~known] = self._fallback_scores(int((~known).sum()))
        if items is None:
            return out
        iidx = self.item_vocab.encode(items)
        res = np.full((uidx.size, iidx.size), np.nan, dtype=np.float32)
        ok = iidx >= 0
        res[:, ok] = out[:, iidx[ok]]
        return res

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted value of each (user, item) pair in raw ids (ratings for rating models).

        Unknown users or items get the model's fallback (``_predict_fallback``).
        """
        self._check_fitted()
        assert self.user_vocab is not None and self.item_vocab is not None
        u = self.user_vocab.encode(users)
        i = self.item_vocab.encode(items)
        if u.shape != i.shape:
            raise ConfigError(
                f"predict: users and items must have the same length; got {u.size} and {i.size}"
            )
        out = self._predict_fallback(u, i)
        ok = (u >= 0) & (i >= 0)
        if ok.any():
            out[ok] = self._predict_pairs(u[ok], i[ok])
        return out

    def _predict_fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.zeros(users.size, dtype=np.float32)

    def recommend(
        self,
        users: Any,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Any = None,
        batch_size: int = 1024,
    ) -> Recommendations:
        """Top-``k`` items for each raw user id, batched.

        Args:
            users: Raw user ids (unknown users, and known users without a training
                interaction, get popularity, flagged in ``fallback``). Equal scores are
                ranked by popularity (:meth:`popularity_order`).
            k: List length (must be >= 1).
            exclude_seen: Drop items the user interacted with in training.
            candidates: Raw item ids to rank among (unknown ids are ignored and reported).
            batch_size: Users scored at once (bounds memory at batch x catalog floats).
        """
        self._check_fitted()
        assert (
            self.user_vocab is not None and self.item_vocab is not None and self.seen_ is not None
        )
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"recommend: 'k' must be an int >= 1; got {k!r}")
        given = list(np.atleast_1d(np.asarray(users, dtype=object)))
        coerced = self.user_vocab.coerce(np.asarray([str(g) for g in given]))
        uidx = self.user_vocab.encode(coerced)
        raw_users = np.array(
            [coerced[j] if uidx[j] >= 0 else given[j] for j in range(len(given))],
            dtype=object if (uidx < 0).any() else coerced.dtype,
        )
        unknown_items = np.zeros(0, dtype=self.item_vocab.ids.dtype)
        cand_mask = None
        if candidates is not None:
            cidx = self.item_vocab.encode(candidates)
            unknown_items = self.item_vocab.coerce(candidates)[cidx < 0]
            cand_mask = np.zeros(self.n_items, dtype=bool)
            cand_mask[cidx[cidx >= 0]] = True
        item_lists: list[np.ndarray] = []
        score_lists: list[np.ndarray] = []
        cold = np.zeros(uidx.size, dtype=bool)  # known users without training rows
        for start in range(0, uidx.size, batch_size):
            b = uidx[start : start + batch_size]
            known = b >= 0
            cold[start : start + batch_size][known] = self.cold_users(b[known])
            s = np.empty((b.size, self.n_items), dtype=np.float32)
            if known.any():
                s[known] = self.score_indices(b[known])
            if (~known).any():
                s[~known] = self._fallback_scores(int((~known).sum()))
            s = np.where(np.isfinite(s), s, np.float32(-3.0e38))
            allowed = np.ones_like(s, dtype=bool)
            if cand_mask is not None:
                allowed &= cand_mask[None, :]
            if exclude_seen and known.any():
                rows = np.flatnonzero(known)
                sub = self.seen_[b[known]]
                allowed[np.repeat(rows, np.diff(sub.indptr)), sub.indices] = False
            s[~allowed] = -np.inf
            top = self._top_k(s, k)
            top_scores = np.take_along_axis(s, top, 1)
            for r in range(b.size):
                valid = np.isfinite(top_scores[r])
                item_lists.append(self.item_vocab.decode(top[r][valid]))
                score_lists.append(top_scores[r][valid])
        return Recommendations(
            users=raw_users,
            item_lists=item_lists,
            score_lists=score_lists,
            fallback=(uidx < 0) | cold,
            unknown_items=unknown_items,
            titles=self.item_titles(),
            fallback_kind=["popularity" if fb else "none" for fb in (uidx < 0) | cold],
        )

    # ------------------------------------------------------------------ history and item-item
    def score_from_items(self, items: Any) -> HistoryScores:
        """Scores over the catalog of a pseudo-user given raw item ids (oldest first).

        Unknown ids are ignored and listed. When the model cannot score a history (its
        ``_score_from_items`` hook returns ``None``) or no given item is known, the scores
        are item popularity and ``fallback_kind`` says ``"popularity"``.
        """
        self._check_fitted()
        assert self.item_vocab is not None and self.item_popularity_ is not None
        given = np.atleast_1d(np.asarray(items, dtype=object))
        if given.ndim != 1:
            raise ConfigError(
                f"the 'items' argument must be a flat list of item ids; got shape {given.shape}"
            )
        idx = (
            self.item_vocab.encode(np.asarray([str(g) for g in given]))
            if given.size
            else np.zeros(0, np.int64)
        )
        known = idx[idx >= 0]
        unknown = np.asarray([_py(g) for g in given[idx < 0]], dtype=object)
        scores = None
        if known.size:
            out = self._score_from_items(known.astype(np.int64))
            if out is not None:
                scores = np.asarray(out, dtype=np.float32).reshape(-1)
                if scores.size != self.n_items:
                    raise ConfigError(
                        f"{self.name}._score_from_items returned {scores.size} scores for a catalog "
                        f"of {self.n_items} items"
                    )
        if scores is None:
            return HistoryScores(
                self.item_popularity_.astype(np.float32, copy=True), known, unknown, "popularity"
            )
        return HistoryScores(scores, known, unknown, "history")

    def recommend_from_items(
        self,
        items: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: Any = None,
    ) -> Recommendations:
        """Top-``k`` items for one pseudo-user described by the items they consumed.

        For a visitor the model has never seen: EASE and ItemKNN score straight from the
        items, factor models fold the user in against their item factors, and models that
        cannot fall back to popularity (``fallback_kind == ["popularity"]``).

        Args:
            items: Raw item ids, oldest first, newest last; unknown ids are ignored and
                listed in ``unknown_items``.
            k: List length (must be >= 1).
            exclude_seen: Drop the given items from the list.
            candidates: Raw item ids to rank among (unknown ids are ignored and listed).

        Returns:
            One-row :class:`Recommendations` (``users`` holds ``None``).

        Example:
            >>> from zenrec.data import synthetic_dataset
            >>> from zenrec.models import create_model
            >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
            >>> m = create_model("ease", l2=10.0).fit(ds)
            >>> r = m.recommend_from_items(m.item_vocab.ids[:3], k=5)
            >>> r.fallback_kind, len(r.item_lists[0])
            (['history'], 5)
        """
        self._check_fitted()
        assert self.item_vocab is not None
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"recommend_from_items: 'k' must be an int >= 1; got {k!r}")
        hist = self.score_from_items(items)
        s = np.where(np.isfinite(hist.scores), hist.scores, np.float32(-3.0e38))[None, :]
        allowed = np.ones(self.n_items, dtype=bool)
        unknown = hist.unknown_items
        if candidates is not None:
            cidx = self.item_vocab.encode(candidates)
            cand = np.atleast_1d(np.asarray(candidates, dtype=object))
            unknown = np.concatenate(
                [unknown, np.asarray([_py(c) for c in cand[cidx < 0]], dtype=object)]
            )
            mask = np.zeros(self.n_items, dtype=bool)
            mask[cidx[cidx >= 0]] = True
            allowed &= mask
        if exclude_seen:
            allowed[hist.items] = False
        s[:, ~allowed] = -np.inf
        top = self._top_k(s, k)[0]
        top_scores = s[0, top]
        valid = np.isfinite(top_scores)
        return Recommendations(
            users=np.array([None], dtype=object),
            item_lists=[self.item_vocab.decode(top[valid])],
            score_lists=[top_scores[valid]],
            fallback=np.array([hist.fallback_kind == "popularity"]),
            unknown_items=unknown,
            fallback_kind=[hist.fallback_kind],
            titles=self.item_titles(),
        )

    def similar_items(self, item: Any, k: int = 10) -> Recommendations:
        """The ``k`` items most similar to ``item`` under the model (the item itself excluded).

        EASE and ItemKNN use their item-item weights; factor models the cosine of their item
        embeddings. An id not in the catalog gives an empty list and is listed in
        ``unknown_items``.

        Raises:
            ConfigError: The model has no item-item similarity.
        """
        self._check_fitted()
        assert self.item_vocab is not None
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"similar_items: 'k' must be an int >= 1; got {k!r}")
        idx = int(self.item_vocab.encode(np.asarray([str(item)]))[0])
        if idx < 0:
            empty_ids = self.item_vocab.ids[:0]
            return Recommendations(
                np.array([item], dtype=object),
                [empty_ids],
                [np.zeros(0, np.float32)],
                np.array([False]),
                np.array([item], dtype=object),
                fallback_kind=["none"],
            )
        sims = self._similar_items(np.array([idx], dtype=np.int64))
        if sims is None:
            raise ConfigError(
                f"the {self.name} model has no item-item similarity; use ease, itemknn or a factor "
                "model (ials, bprmf, biasedmf, twotower) for similar items"
            )
        s = np.asarray(sims, dtype=np.float32).reshape(1, -1).copy()
        s = np.where(np.isfinite(s), s, np.float32(-3.0e38))
        s[0, idx] = -np.inf
        top = top_k_indices(s, k)[0]
        top_scores = s[0, top]
        valid = np.isfinite(top_scores)
        return Recommendations(
            users=self.item_vocab.decode(np.array([idx])),
            item_lists=[self.item_vocab.decode(top[valid])],
            score_lists=[top_scores[valid]],
            fallback=np.array([False]),
            unknown_items=np.zeros(0, dtype=object),
            fallback_kind=["none"],
            titles=self.item_titles(),
        )

    def item_titles(self) -> dict[Any, str] | None:
        """Raw item id -> title, when the training data had a ``title`` item feature."""
        self._check_fitted()
        assert self.item_vocab is not None
        titles = self.item_meta.get("title")
        if not titles or len(titles) != len(self.item_vocab):
            return None
        if self._title_map is None:
            self._title_map = {_py(i): str(t) for i, t in zip(self.item_vocab.ids, titles)}
        return self._title_map

    # ------------------------------------------------------------------ persistence
    def params(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def save(
        self,
        path: str | Path,
        *,
        metrics: dict[str, float] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write this fitted model as a bundle directory (atomically)."""
        from zenrec.models.bundle import write_bundle

        self._check_fitted()
        assert (
            self.user_vocab is not None and self.item_vocab is not None and self.seen_ is not None
        )
        arrays = {f"state.{k}": v for k, v in self._state().items()}
        arrays["seen.indptr"] = self.seen_.indptr.astype(np.int64)
        arrays["seen.indices"] = self.seen_.indices.astype(np.int64)
        assert self.item_popularity_ is not None
        arrays["item_popularity"] = self.item_popularity_
        meta = {
            "model": self.name,
            "task": self.task,
            "config": self.params(),
            "dataset_sha256": self.dataset_sha256,
            "metrics": metrics or {},
            "fit_seconds": self.fit_seconds_,
            "history": self.history_,
            "model_state": self._meta_state(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **(extra or {}),
        }
        vocab = {"users": self.user_vocab.to_json(), "items": self.item_vocab.to_json()}
        return write_bundle(path, meta=meta, arrays=arrays, vocab=vocab, items=self.item_meta)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a bundle of this model class written by :meth:`save` (no code is executed).

        ``zenrec.load_model(path)`` loads a bundle of any model class.
        """
        from zenrec.models.bundle import read_bundle

        return cls.from_bundle_parts(path, *read_bundle(path))

    @classmethod
    def from_bundle_parts(
        cls,
        path: str | Path,
        meta: dict[str, Any],
        arrays: dict[str, np.ndarray],
        vocab: dict[str, Any],
        items: dict[str, Any],
    ) -> Self:
        """Build a fitted model from a verified bundle's parts (see :func:`zenrec.models.bundle.read_bundle`)."""
        if cls is Recommender:
            raise BundleError(
                f"{path}: Recommender.load needs a model class; use zenrec.load_model(path) "
                "to load a bundle of any model"
            )
        if meta.get("model") != cls.name:
            raise BundleError(
                f"{path}: holds a {meta.get('model')} model, not a {cls.name}; load it with "
                "zenrec.load_model(path)"
            )
        klass = cls
        model = klass(**meta["config"])
        model.user_vocab = Vocabulary.from_json(vocab["users"])
        model.item_vocab = Vocabulary.from_json(vocab["items"])
        n_u, n_i = len(model.user_vocab), len(model.item_vocab)
        indices = arrays.pop("seen.indices")
        model.seen_ = sp.csr_matrix(
            (np.ones(indices.size, dtype=np.float32), indices, arrays.pop("seen.indptr")),
            shape=(n_u, n_i),
        )
        model.item_popularity_ = arrays.pop("item_popularity")
        model.item_meta = items
        model.dataset_sha256 = meta.get("dataset_sha256")
        model.fit_seconds_ = meta.get("fit_seconds")
        model.history_ = meta.get("history", [])
        model._load_meta_state(meta.get("model_state", {}))
        model._load_state(
            {k[len("state.") :]: v for k, v in arrays.items() if k.startswith("state.")}
        )
        model.bundle_meta = meta
        return model

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({cfg})"


def _item_meta(train: Dataset) -> dict[str, list[Any]]:
    """JSON-able display metadata and attributes of every item (title, genres, year...)."""
    out: dict[str, list[Any]] = {}
    for name, f in train.item_features.items():
        if f.kind == "text":
            out[name] = [str(v) for v in f.values.tolist()]
        elif f.kind == "numeric":
            vals = f.values.astype(np.float64)
            out[name] = [None if np.isnan(v) else float(v) for v in vals.tolist()]
        elif f.kind == "categorical":
            assert f.labels is not None
            labels = f.labels
            out[name] = [None if c < 0 else labels[c] for c in f.values.tolist()]
        else:
            out[name] = [f.row(i) for i in range(len(f))]
    return out


def cosine_similarities(vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine similarity of the rows ``items`` of ``vectors`` to every row: (len(items), n)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    norms[norms == 0] = 1.0
    return ((v[items] / norms[items, None]) @ (v / norms[:, None]).T).astype(np.float32)


def implicit_fold_in(
    item_factors: np.ndarray, gram: np.ndarray, items: np.ndarray, *, alpha: float, reg: float
) -> np.ndarray:
    """Least-squares user vector for a history under the implicit-feedback objective.

    Minimises ``sum_i c_i (p_i - x . q_i)^2 + reg |x|^2`` over the whole catalog with
    ``p_i = 1, c_i = 1 + alpha`` on the history and ``p_i = 0, c_i = 1`` elsewhere (Hu, Koren
    & Volinsky 2008), i.e. ``x = (Q^T Q + alpha Q_h^T Q_h + reg I)^-1 (1 + alpha) Q_h^T 1``.

    Args:
        item_factors: (n_items, d) item factors Q.
        gram: Q^T Q, (d, d) (precomputed once per model).
        items: History item indices (repeats count once).
        alpha: Confidence of an observed item.
        reg: L2 regularisation.
    """
    q = np.asarray(item_factors, dtype=np.float64)[unique(items)]
    a = gram + alpha * (q.T @ q) + reg * np.eye(gram.shape[0])
    b = (1.0 + alpha) * q.sum(axis=0)
    return np.linalg.solve(a, b).astype(np.float32)


def sparse_state(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    m = m.tocsr()
    return {
        f"{prefix}.indptr": m.indptr.astype(np.int64),
        f"{prefix}.indices": m.indices.astype(np.int64),
        f"{prefix}.data": m.data.astype(np.float32),
        f"{prefix}.shape": np.asarray(m.shape, dtype=np.int64),
    }


def sparse_from_state(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    shape = tuple(int(x) for x in arrays[f"{prefix}.shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]),
        shape=shape,
    )


class ResolvedParams:
    """Mixin of models whose ``"auto"`` hyperparameters are resolved from the data in ``fit``
    (:mod:`zenrec.models.defaults`): ``resolved_params_`` holds the values used, and the bundle
    stores them as ``model_state.resolved``. List it before the Recommender base class."""

    resolved_params_: dict[str, Any]

    def _meta_state(self) -> dict[str, Any]:
        return {"resolved": self.resolved_params_}

    def _load_meta_state(self, state: dict[str, Any]) -> None:
        self.resolved_params_ = dict(state.get("resolved", {}))


class ItemItemRecommender(Recommender):
    """A model whose scores are ``X_u W`` for a sparse item-item weight matrix ``W_``.

    Row j of ``W_`` holds item j's weight towards each target item: how much consuming j raises
    each item's score. Subclasses set ``W_`` in ``_fit``; scoring users, scoring a visitor's
    history (the sum of the history items' rows), item-item similarity (the item's row) and the
    bundle state are shared.
    """

    W_: sp.csr_matrix

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        assert self.seen_ is not None
        return np.asarray((self.seen_[users] @ self.W_).toarray(), dtype=np.float32)

    def _score_from_items(self, items: np.ndarray) -> np.ndarray:
        rows = self.W_[unique(items)]
        return np.asarray(rows.sum(axis=0), dtype=np.float32).ravel()

    def _similar_items(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.W_[np.asarray(items, dtype=np.int64)].toarray(), dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return sparse_state("W", self.W_)

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.W_ = sparse_from_state("W", arrays)
