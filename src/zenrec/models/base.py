"""The recommender protocol every zenrec model follows.

Raw ids in, raw ids out: ``fit(train, valid)``, ``score(users, items)``,
``recommend(users, k, exclude_seen, candidates)``, ``save(path)`` / ``load(path)``.
Subclasses implement ``_fit``, ``_score_users`` (scores of user indices over the whole
catalog) and ``_state`` / ``_load_state`` (learned arrays).
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError

from zenrec._arrays import py_value as _py  # the short name the class body uses
from zenrec._arrays import unique
from zenrec._errors import BundleError, ConfigError, NotFittedError
from zenrec._validation import to_config_error
from zenrec.data.dataset import Dataset
from zenrec.data.vocab import Vocabulary
from zenrec.evaluation.topk import top_k_indices
from zenrec.models.recommendations import HistoryScores, Recommendations

__all__ = ["ModelConfig", "Recommender", "config_error"]


class ModelConfig(BaseModel):
    """Base of every model config: strict, typed, JSON round-trippable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def config_error(model: str, exc: ValidationError) -> ConfigError:
    """Turn a pydantic error into one line: which parameter, what was expected, what was got."""
    return to_config_error(
        exc,
        messages={
            "extra_forbidden": f"'{{key}}' is not a parameter of {model}",
            "*": f"the '{{key}}' parameter of {model}: {{msg}}; got {{got}}",
            "root": f"{model}: {{msg}}",
        },
        first_only=False,
    )


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
        u = np.asarray(users, dtype=np.int64)
        indptr = self.seen_.indptr
        return indptr[u + 1] == indptr[u]  # the asked rows only, not a diff of every user

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
            order = np.argsort(-np.asarray(pop, dtype=np.float64), kind="stable")
            rank = np.empty(order.size, dtype=np.int64)
            rank[order] = np.arange(order.size)
            cached = (pop, order, rank)
            self._pop_order = cached
        return cached[1]

    def popularity_rank(self) -> np.ndarray:
        """Each item's place in :meth:`popularity_order` (0: the most popular)."""
        self.popularity_order()
        return self._pop_order[2]

    def _top_k(self, s: np.ndarray, k: int) -> np.ndarray:
        """``top_k_indices`` of a (B, n_items) score array, ties broken by popularity."""
        return top_k_indices(s, k, rank=self.popularity_rank())

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
                        f"{self.name}._score_from_items returned {scores.size} scores "
                        f"for a catalog of {self.n_items} items"
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
        """Build a fitted model from a verified bundle's parts.

        See :func:`zenrec.models.bundle.read_bundle`.
        """
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


_R = TypeVar("_R", bound=Recommender)


def training_history_view(model: _R) -> _R:
    """``model`` scoring from its training histories alone (``train_histories_``), for models
    whose scoring histories (``histories_``) also hold the validation items.

    The protocol's validation evaluation (and so the tuner) scores through such a view: a
    history holding the validation item would give the answer away. The view shares the
    learned arrays; ``model`` is unchanged, and returned as is when it has no separate
    training histories.
    """
    model._check_fitted()
    train = getattr(model, "train_histories_", None)
    if train is None:
        return model
    view = copy.copy(model)
    view.histories_ = train  # type: ignore[attr-defined]
    view.train_histories_ = None  # type: ignore[attr-defined]
    return view
