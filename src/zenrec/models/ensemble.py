"""Score ensembles of fitted recommenders (weighted score fusion, Fox & Shaw's CombSUM with
per-user normalisation).

For a user u with unseen items C_u, member m's scores s_m(u, .) are normalised per user,

    zscore:  z_m(u, i) = (s_m(u, i) - mean_{j in C_u} s_m(u, j)) / std_{j in C_u} s_m(u, j)
    rank:    z_m(u, i) = 1 - rank_m(u, i) / n_items   (rank 0 = best unseen item; seen items last)

and combined as score(u, i) = sum_m w_m z_m(u, i). The weights ``w1..w6`` are ordinary
parameters, so ``zenrec tune --model ensemble`` searches them on validation data like any model.

Members are given either as ``{"model": NAME, "params": {...}}`` (fitted on the ensemble's own
training data, without the validation data the ensemble's weights are tuned on; within one
process, a member with the same specification fitted on the same training Dataset object is
reused, so tuning weights does not refit members) or as
``{"bundle": PATH}`` of a model fitted on the same data (checked). The saved ensemble is one
self-contained bundle: every member's arrays are stored in the ensemble's own safetensors file
under ``m<k>.`` and its model name and config in ``bundle.json``; loading rebuilds members from
the registry, with no code execution and no reference to files outside the bundle.
"""

from __future__ import annotations

import json
import weakref
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from zenrec._errors import ConfigError
from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig, Recommender

__all__ = ["Ensemble", "EnsembleConfig", "MemberSpec", "normalize_scores"]

MAX_MEMBERS = 6
# Fitted members per training Dataset object (weak keys: dropped with the dataset).
_FITTED: weakref.WeakKeyDictionary[Dataset, dict[str, Recommender]] = weakref.WeakKeyDictionary()
# Score blocks of those shared members per batch of users, so that trials that only change
# weights do not rescore (an EASE scoring pass over ML-1M is ~80 GFLOP). Bounded in bytes.
_SCORES: weakref.WeakKeyDictionary[Recommender, dict[bytes, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
SCORE_CACHE_BYTES = 2**30


class MemberSpec(ModelConfig):
    """One member: a registry model with parameters, or a fitted bundle."""

    model: str | None = None
    """Registry name of the member (fitted on the ensemble's training data)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Parameters of ``model``."""
    bundle: str | None = None
    """Path of a bundle fitted on the same training data (instead of ``model``)."""

    @model_validator(mode="after")
    def _one_source(self) -> MemberSpec:
        if (self.model is None) == (self.bundle is None):
            raise ValueError("give a member either 'model' (with optional 'params') or 'bundle'")
        if self.bundle is not None and self.params:
            raise ValueError("'params' applies to 'model' members, not to 'bundle' members")
        if self.model == "ensemble":
            raise ValueError("an ensemble cannot be a member of an ensemble")
        return self


class EnsembleConfig(ModelConfig):
    members: list[MemberSpec] = Field(
        default_factory=lambda: [MemberSpec(model="ease"), MemberSpec(model="rp3beta")],
        min_length=1,
        max_length=MAX_MEMBERS,
    )
    """Members, e.g. [{"model": "ease", "params": {"l2": 1000}}, {"bundle": "runs/rp3"}]."""
    normalize: Literal["zscore", "rank", "none"] = "zscore"
    """Per-user normalisation of each member's scores before weighting."""
    w1: float = Field(1.0, ge=0)
    """Weight of member 1."""
    w2: float = Field(1.0, ge=0)
    """Weight of member 2."""
    w3: float = Field(1.0, ge=0)
    """Weight of member 3."""
    w4: float = Field(1.0, ge=0)
    """Weight of member 4."""
    w5: float = Field(1.0, ge=0)
    """Weight of member 5."""
    w6: float = Field(1.0, ge=0)
    """Weight of member 6."""

    def weights(self) -> list[float]:
        return [self.w1, self.w2, self.w3, self.w4, self.w5, self.w6][: len(self.members)]


def normalize_scores(S: np.ndarray, seen: np.ndarray, how: str) -> np.ndarray:
    """Per-row normalisation of scores ``S`` (B, N); ``seen`` (B, N) bool marks items left out
    of the statistics (and put last by ``rank``)."""
    S = np.asarray(S, dtype=np.float64)
    if how == "none":
        return S.astype(np.float32)
    if how == "zscore":
        free = ~seen
        cnt = np.maximum(free.sum(1, keepdims=True), 1)
        mean = np.where(free, S, 0.0).sum(1, keepdims=True) / cnt
        var = np.where(free, (S - mean) ** 2, 0.0).sum(1, keepdims=True) / cnt
        std = np.sqrt(var)
        return ((S - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    n = S.shape[1]
    order = np.argsort(-np.where(seen, -np.inf, S), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n)[None, :].repeat(S.shape[0], 0), axis=1)
    return (1.0 - ranks / n).astype(np.float32)


class Ensemble(Recommender):
    """Weighted fusion of normalised member scores, saved as one bundle.

    Example:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> m = Ensemble(members=[{"model": "ease", "params": {"l2": 10.0}}, {"model": "itemknn"}],
        ...              w1=0.7, w2=0.3).fit(ds)
        >>> [type(x).__name__ for x in m.members_]
        ['EASE', 'ItemKNN']
    """

    name = "ensemble"
    Config = EnsembleConfig
    config: EnsembleConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        from zenrec.models.registry import create_model

        cache = _FITTED.setdefault(train, {})
        members: list[Recommender] = []
        for k, spec in enumerate(self.config.members, 1):
            if spec.bundle is not None:
                members.append(self._load_member(k, spec.bundle, train))
                continue
            key = json.dumps({"model": spec.model, "params": spec.params}, sort_keys=True)
            m = cache.get(key)
            if m is None:
                # members never see the validation data: the weights are tuned on it, and a
                # member that stopped early on it would score optimistically there (neural
                # members pick their epochs on their own holdout of train instead, as they do
                # when the ensemble is refitted without validation data)
                m = create_model(str(spec.model), **spec.params).fit(train)
                cache[key] = m
            members.append(m)
        self.members_ = members
        # members fitted here are shared with other ensembles of the same training set (and
        # frozen), so their scores may be cached; loaded bundle members are private
        self._shared_members = True

    def _load_member(self, k: int, path: str, train: Dataset) -> Recommender:
        from zenrec.models.registry import load_model

        m = load_model(path)
        assert m.item_vocab is not None and m.user_vocab is not None
        same = np.array_equal(m.item_vocab.ids, train.item_vocab.ids) and np.array_equal(
            m.user_vocab.ids, train.user_vocab.ids
        )
        if m.dataset_sha256 and train.source_sha256 and m.dataset_sha256 != train.source_sha256:
            same = False
        if not same:
            raise ConfigError(
                f"ensemble member {k} (bundle {path}) was fitted on other data than the ensemble's "
                "training data; refit it on the same split, or give the member as "
                '{"model": ..., "params": ...} so the ensemble fits it'
            )
        return m

    def _seen_mask(self, users: np.ndarray) -> np.ndarray:
        assert self.seen_ is not None
        sub = self.seen_[users]
        mask = np.zeros((users.size, self.n_items), dtype=bool)
        mask[np.repeat(np.arange(users.size), np.diff(sub.indptr)), sub.indices] = True
        return mask

    def _combine(self, parts: list[np.ndarray], seen: np.ndarray) -> np.ndarray:
        out = np.zeros(parts[0].shape, dtype=np.float32)
        for w, S in zip(self.config.weights(), parts):
            if w:
                out += np.float32(w) * normalize_scores(S, seen, self.config.normalize)
        return out

    def _member_scores(self, m: Recommender, users: np.ndarray) -> np.ndarray:
        if not getattr(self, "_shared_members", False):
            return m._score_users(users)
        blocks = _SCORES.setdefault(m, {})
        key = users.tobytes()
        S = blocks.get(key)
        if S is None:
            S = np.asarray(m._score_users(users), dtype=np.float32)
            used = sum(b.nbytes for d in _SCORES.values() for b in d.values())
            if used + S.nbytes <= SCORE_CACHE_BYTES:
                blocks[key] = S
        return S

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        parts = [self._member_scores(m, users) for m in self.members_]
        return self._combine(parts, self._seen_mask(users))

    def _score_from_items(self, items: np.ndarray) -> np.ndarray | None:
        parts = []
        for m in self.members_:
            hook = getattr(m, "_score_from_items", None)
            s = hook(items) if hook is not None else None
            if s is None:
                return None
            parts.append(np.asarray(s, dtype=np.float32)[None, :])
        seen = np.zeros((1, self.n_items), dtype=bool)
        seen[0, np.asarray(items, dtype=np.int64)] = True
        return self._combine(parts, seen)[0]

    def _similar_items(self, items: np.ndarray) -> np.ndarray | None:
        return None

    # ------------------------------------------------------------------ persistence
    def _meta_state(self) -> dict[str, Any]:
        return {
            "members": [
                {
                    "model": m.name,
                    "config": m.params(),
                    "fit_seconds": m.fit_seconds_,
                    "model_state": m._meta_state(),
                }
                for m in self.members_
            ]
        }

    def _load_meta_state(self, state: dict[str, Any]) -> None:
        self._pending_members = state.get("members", [])

    def _state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for k, m in enumerate(self.members_):
            out.update({f"m{k}.{name}": v for name, v in m._state().items()})
        return out

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        from zenrec.models.registry import get_model_class

        members: list[Recommender] = []
        for k, info in enumerate(getattr(self, "_pending_members", [])):
            m = get_model_class(info["model"])(**info["config"])
            m.user_vocab, m.item_vocab = self.user_vocab, self.item_vocab
            m.seen_, m.item_popularity_ = self.seen_, self.item_popularity_
            m.dataset_sha256, m.fit_seconds_ = self.dataset_sha256, info.get("fit_seconds")
            m._load_meta_state(info.get("model_state", {}))
            prefix = f"m{k}."
            m._load_state(
                {name[len(prefix) :]: v for name, v in arrays.items() if name.startswith(prefix)}
            )
            members.append(m)
        if len(members) != len(self.config.members):
            raise ConfigError(
                f"ensemble bundle lists {len(members)} member states for "
                f"{len(self.config.members)} members; the bundle is damaged"
            )
        self.members_ = members
