"""The recommender protocol every zenrec model follows.

Raw ids in, raw ids out: ``fit(train, valid)``, ``score(users, items)``,
``recommend(users, k, exclude_seen, candidates)``, ``save(path)`` / ``load(path)``.
Subclasses implement ``_fit``, ``_score_users`` (scores of user indices over the whole
catalog) and ``_state`` / ``_load_state`` (learned arrays).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError

from zenrec._errors import BundleError, ConfigError, NotFittedError
from zenrec.data.dataset import Dataset
from zenrec.data.vocab import Vocabulary
from zenrec.evaluation.topk import top_k_indices

__all__ = ["ModelConfig", "Recommendations", "Recommender", "config_error"]


class ModelConfig(BaseModel):
    """Base of every model config: strict, typed, JSON round-trippable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def config_error(model: str, exc: ValidationError) -> ConfigError:
    """Turn a pydantic error into one line: which parameter, what was expected, what was got."""
    parts = []
    for err in exc.errors():
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
        fallback: Per user, True when the user was unknown and popularity was used.
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

    def to_records(self) -> list[dict[str, Any]]:
        out = [
            {
                "user": _py(u),
                "items": [_py(x) for x in items],
                "scores": [float(s) for s in scores],
                "fallback": bool(fb),
            }
            for u, items, scores, fb in zip(self.users, self.item_lists, self.score_lists, self.fallback)
        ]
        if self.explanation is not None:
            for rec, expl in zip(out, self.explanation):
                rec["explanation"] = expl
        return out


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


class Recommender(ABC):
    """Base class of zenrec recommenders.

    Subclasses set ``name`` (the CLI name), ``Config`` (a :class:`ModelConfig`) and
    ``task`` (``ranking`` or ``rating``).
    """

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]]
    task: ClassVar[Literal["ranking", "rating"]] = "ranking"

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError(f"{self.name}: pass either a config object or keyword parameters, not both")
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
        # Iterative models call this after each validation pass with (epoch, metrics); a tuner
        # uses it for pruning. Whatever it raises propagates out of ``fit``.
        self.epoch_callback: Callable[[int, dict[str, float]], None] | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Dataset, valid: Dataset | None = None) -> Recommender:
        """Learn from ``train`` (``valid``, if given, may be used for early stopping)."""
        t0 = time.perf_counter()
        self.user_vocab = train.user_vocab
        self.item_vocab = train.item_vocab
        self.seen_ = train.csr()
        self.item_popularity_ = np.asarray(self.seen_.sum(axis=0)).ravel().astype(np.float32)
        self.dataset_sha256 = train.source_sha256
        titles = train.item_titles()
        self.item_meta = {"title": titles.tolist()} if titles is not None else {}
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

    def _meta_state(self) -> dict[str, Any]:
        """JSON-able learned state saved in ``bundle.json`` (e.g. feature specs); optional."""
        return {}

    def _load_meta_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_meta_state` returned."""
        return None

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Score of each (user index, item index) pair; override for speed."""
        out = np.empty(users.size, dtype=np.float32)
        for u in np.unique(users):
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
        """Scores of known user indices over the catalog (the evaluator's fast path)."""
        self._check_fitted()
        return np.asarray(self._score_users(np.asarray(users, dtype=np.int64)), dtype=np.float32)

    def _fallback_scores(self, n: int) -> np.ndarray:
        assert self.item_popularity_ is not None
        return np.tile(self.item_popularity_, (n, 1))

    def score(self, users: Any, items: Any = None) -> np.ndarray:
        """Scores of raw ``users`` over raw ``items`` (default: the whole catalog).

        Unknown users get popularity scores; unknown items get NaN.
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
            raise ConfigError(f"predict: users and items must have the same length; got {u.size} and {i.size}")
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
            users: Raw user ids (unknown users get popularity, flagged in ``fallback``).
            k: List length (must be >= 1).
            exclude_seen: Drop items the user interacted with in training.
            candidates: Raw item ids to rank among (unknown ids are ignored and reported).
            batch_size: Users scored at once (bounds memory at batch x catalog floats).
        """
        self._check_fitted()
        assert self.user_vocab is not None and self.item_vocab is not None and self.seen_ is not None
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"recommend: 'k' must be an int >= 1; got {k!r}")
        given = list(np.atleast_1d(np.asarray(users, dtype=object)))
        coerced = self.user_vocab.coerce(np.asarray([str(g) for g in given]))
        uidx = self.user_vocab.encode(coerced)
        raw_users = np.array([coerced[j] if uidx[j] >= 0 else given[j] for j in range(len(given))],
                             dtype=object if (uidx < 0).any() else coerced.dtype)
        unknown_items = np.zeros(0, dtype=self.item_vocab.ids.dtype)
        cand_mask = None
        if candidates is not None:
            cidx = self.item_vocab.encode(candidates)
            unknown_items = self.item_vocab.coerce(candidates)[cidx < 0]
            cand_mask = np.zeros(self.n_items, dtype=bool)
            cand_mask[cidx[cidx >= 0]] = True
        item_lists: list[np.ndarray] = []
        score_lists: list[np.ndarray] = []
        for start in range(0, uidx.size, batch_size):
            b = uidx[start : start + batch_size]
            known = b >= 0
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
            top = top_k_indices(s, k)
            top_scores = np.take_along_axis(s, top, 1)
            for r in range(b.size):
                valid = np.isfinite(top_scores[r])
                item_lists.append(self.item_vocab.decode(top[r][valid]))
                score_lists.append(top_scores[r][valid])
        return Recommendations(
            users=raw_users,
            item_lists=item_lists,
            score_lists=score_lists,
            fallback=uidx < 0,
            unknown_items=unknown_items,
        )

    # ------------------------------------------------------------------ persistence
    def params(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    def save(self, path: str | Path, *, metrics: dict[str, float] | None = None,
             extra: dict[str, Any] | None = None) -> Path:
        """Write this fitted model as a bundle directory (atomically)."""
        from zenrec.models.bundle import write_bundle

        self._check_fitted()
        assert self.user_vocab is not None and self.item_vocab is not None and self.seen_ is not None
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
            **(extra or {}),
        }
        vocab = {"users": self.user_vocab.to_json(), "items": self.item_vocab.to_json()}
        return write_bundle(path, meta=meta, arrays=arrays, vocab=vocab, items=self.item_meta)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a bundle written by :meth:`save` (no code is executed)."""
        from zenrec.models.bundle import read_bundle
        from zenrec.models.registry import get_model_class

        meta, arrays, vocab, items = read_bundle(path)
        klass = get_model_class(meta["model"])
        if cls is not Recommender and not issubclass(klass, cls):
            raise BundleError(f"{path}: holds a {meta['model']} model, not a {cls.name}")
        model = klass(**meta["config"])
        model.user_vocab = Vocabulary.from_json(vocab["users"])
        model.item_vocab = Vocabulary.from_json(vocab["items"])
        n_u, n_i = len(model.user_vocab), len(model.item_vocab)
        indices = arrays.pop("seen.indices")
        model.seen_ = sp.csr_matrix(
            (np.ones(indices.size, dtype=np.float32), indices, arrays.pop("seen.indptr")), shape=(n_u, n_i)
        )
        model.item_popularity_ = arrays.pop("item_popularity")
        model.item_meta = items
        model.dataset_sha256 = meta.get("dataset_sha256")
        model.fit_seconds_ = meta.get("fit_seconds")
        model.history_ = meta.get("history", [])
        model._load_meta_state(meta.get("model_state", {}))
        model._load_state({k[len("state."):]: v for k, v in arrays.items() if k.startswith("state.")})
        model.bundle_meta = meta
        return model

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({cfg})"


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
        (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]), shape=shape
    )

