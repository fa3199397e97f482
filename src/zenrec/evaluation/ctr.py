"""Click-through and multi-task evaluation: reproducible CTR samples, AUC/GAUC/LogLoss, and
per-task metrics keyed ``task/metric``.

Models are reached through the :class:`~zenrec.evaluation.scorer.Scorer` protocol plus two
optional methods looked up by name (no model code is imported):

- ``predict_proba(users, items)``: click probabilities of raw (user, item) pairs; LogLoss is
  reported only for models that have it and whose ``predicts_probability`` is not False (a
  ranking score is not a probability);
- ``predict_tasks(users, items)``: ``{"rating": predicted ratings, "liked": probabilities}``
  (a multi-task model returns every task it has, a single-task model its own).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from zenrec._arrays import unique
from zenrec._errors import ConfigError, ProtocolError
from zenrec.data.dataset import Dataset
from zenrec.evaluation import metrics as M
from zenrec.evaluation.evaluator import EvalResult

__all__ = ["ctr_samples", "evaluate_ctr_samples", "evaluate_multitask"]


def ctr_samples(
    test: Dataset, exclude: Sequence[Dataset | None] = (), *, n_negatives: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each test interaction as a positive, plus ``n_negatives`` sampled negatives for it.

    Negatives are drawn uniformly (``numpy.random.default_rng(seed)``) from the catalog items
    the user has no interaction with in ``test`` or any of ``exclude``, so the same data and
    seed always give the same samples.

    Returns:
        (user indices, item indices, 0/1 labels), positives first in test order, then the
        negatives of each positive in turn.
    """
    if n_negatives < 1:
        raise ConfigError(f"the 'n_negatives' parameter must be >= 1; got {n_negatives}")
    n_items = test.n_items
    parts = [p for p in (*exclude, test) if p is not None]
    keys = unique(np.concatenate([p.users.astype(np.int64) * n_items + p.items for p in parts]))
    per_user = np.bincount(np.concatenate([p.users for p in parts]), minlength=test.n_users)
    if (per_user[test.users] + n_negatives > n_items).any():
        raise ProtocolError(
            f"some users of '{test.name}' have fewer than {n_negatives} items they "
            "have not interacted with; lower n_negatives"
        )
    rng = np.random.default_rng(seed)
    users = np.repeat(test.users.astype(np.int64), n_negatives)
    negs = rng.integers(0, n_items, users.size)
    bad = np.isin(users * n_items + negs, keys)
    while bad.any():
        negs[bad] = rng.integers(0, n_items, int(bad.sum()))
        bad = np.isin(users * n_items + negs, keys)
    u = np.concatenate([test.users.astype(np.int64), users])
    i = np.concatenate([test.items.astype(np.int64), negs])
    y = np.concatenate([np.ones(len(test), np.float32), np.zeros(users.size, np.float32)])
    return u, i, y


def _proba(model: Any, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, bool]:
    fn = getattr(model, "predict_proba", None)
    if fn is not None and getattr(model, "predicts_probability", True):
        return np.asarray(fn(users, items), np.float64), True
    return np.asarray(model.predict(users, items), np.float64), False


def evaluate_ctr_samples(
    model: Any,
    test: Dataset,
    exclude: Sequence[Dataset | None] = (),
    *,
    n_negatives: int = 4,
    seed: int = 0,
) -> EvalResult:
    """AUC, GAUC (per user) and LogLoss on :func:`ctr_samples` of ``test``.

    Models without ``predict_proba`` are scored with ``predict`` and get AUC and GAUC only.
    """
    model._check_fitted()
    t0 = time.perf_counter()
    u, i, y = ctr_samples(test, exclude, n_negatives=n_negatives, seed=seed)
    raw_u, raw_i = test.user_vocab.decode(u), test.item_vocab.decode(i)
    p, is_prob = _proba(model, raw_u, raw_i)
    out = {"auc": M.auc(p, y), "gauc": M.gauc(p, y, u)}
    if is_prob:
        out["logloss"] = M.logloss(p, y)
    return EvalResult(
        metrics=out,
        users=np.zeros(0, dtype=object),
        seconds=time.perf_counter() - t0,
        mode=f"ctr (each positive with {n_negatives} sampled negatives, seed {seed})",
        n_users=int(unique(test.users).size),
    )


def evaluate_multitask(model: Any, test: Dataset, *, threshold: float = 4.0) -> EvalResult:
    """Per-task metrics on rated data: ``rating/rmse``, ``rating/mae`` and, with the label
    ``liked`` = rating >= ``threshold``, ``liked/auc``, ``liked/logloss``.

    A model with ``predict_tasks`` reports every task it returns; otherwise a rating model
    (``task == "rating"``) reports the rating task and a model with ``predict_proba`` the liked
    task.
    """
    if test.ratings is None:
        raise ProtocolError(f"multi-task metrics need ratings, but '{test.name}' has none")
    model._check_fitted()
    t0 = time.perf_counter()
    raw_u, raw_i = test.user_vocab.decode(test.users), test.item_vocab.decode(test.items)
    fn = getattr(model, "predict_tasks", None)
    if fn is not None:
        preds: dict[str, np.ndarray] = fn(raw_u, raw_i)
    elif getattr(model, "task", "ranking") == "rating":
        preds = {"rating": model.predict(raw_u, raw_i)}
    elif getattr(model, "predict_proba", None) is not None and getattr(
        model, "predicts_probability", True
    ):
        preds = {"liked": model.predict_proba(raw_u, raw_i)}
    else:
        raise ConfigError(
            f"'{getattr(model, 'name', model)}' predicts neither ratings nor click "
            "probabilities; the multitask protocol needs one of them"
        )
    r = test.ratings.astype(np.float64)
    out: dict[str, float] = {}
    if "rating" in preds:
        out["rating/rmse"] = M.rmse(preds["rating"], r)
        out["rating/mae"] = M.mae(preds["rating"], r)
    if "liked" in preds:
        y = (r >= threshold).astype(np.float64)
        out["liked/auc"] = M.auc(preds["liked"], y)
        out["liked/logloss"] = M.logloss(preds["liked"], y)
    return EvalResult(
        metrics=out,
        users=np.zeros(0, dtype=object),
        seconds=time.perf_counter() - t0,
        mode=f"multitask (liked = rating >= {threshold:g})",
        n_users=int(unique(test.users).size),
    )
