"""Evaluators: full-ranking top-K, sampled ranking (labelled), rating and CTR metrics.

Full ranking scores every catalog item for every test user in bounded batches, masks the
items the user had in the excluded parts (train, and valid when testing), takes the top K
with ``argpartition`` and keeps per-user values for significance tests.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from zenrec._arrays import unique
from zenrec._errors import ColdStartWarning, ConfigError, ProtocolError, UnknownIdsWarning
from zenrec._frames import frame_as
from zenrec._threads import configured_threads
from zenrec.data.dataset import Dataset
from zenrec.evaluation import metrics as M
from zenrec.evaluation.scorer import Scorer
from zenrec.evaluation.topk import top_k_indices
from zenrec.splits import Split

__all__ = [
    "EvalResult",
    "evaluate_ctr",
    "evaluate_ranking",
    "evaluate_rating",
    "evaluate_sampled",
    "metric_keys",
]


COLD_WARN_SHARE = 0.05
"""Share of cold test users (or unreachable test interactions) above which evaluation warns."""


@dataclass
class EvalResult:
    """Mean metrics, per-user values (aligned with ``users``) and timing of one evaluation.

    Ranking evaluations also report warm and cold users apart: ``metrics`` is over all
    evaluated test users, ``metrics_warm`` over those with at least one training interaction,
    ``metrics_cold`` over the others (a group without users is an empty dict), and
    ``test_coverage`` counts ``test_users``, ``cold_users``, ``test_interactions`` and
    ``unreachable_interactions`` (test interactions on items never seen in training).
    """

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    users: np.ndarray | None = None
    seconds: float = 0.0
    mode: str = "full"
    n_users: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    metrics_warm: dict[str, float] = field(default_factory=dict)
    metrics_cold: dict[str, float] = field(default_factory=dict)
    test_coverage: dict[str, int] = field(default_factory=dict)

    def to_frame(self, backend: str = "pandas") -> Any:
        """Per-user metric values as a DataFrame: a ``user`` column, then one column per metric.

        Args:
            backend: ``pandas`` (default) or ``polars``.
        """
        import polars as pl

        users = self.users if self.users is not None else np.arange(self.n_users)
        df = pl.DataFrame({"user": users, **{k: np.asarray(v) for k, v in self.per_user.items()}})
        return frame_as(df, backend)

    def __repr__(self) -> str:
        shown = ", ".join(f"'{k}': {v:.4f}" for k, v in list(self.metrics.items())[:8])
        more = ", ..." if len(self.metrics) > 8 else ""
        return f"EvalResult(mode={self.mode!r}, users={self.n_users}, metrics={{{shown}{more}}})"


def metric_keys(metrics: Sequence[str], ks: Sequence[int]) -> list[str]:
    return [f"{m}@{k}" for m in metrics for k in ks]


def _check_metrics(metrics: Sequence[str], ks: Sequence[int]) -> None:
    bad = [m for m in metrics if m not in M.RANKING_METRICS]
    if bad:
        raise ConfigError(f"unknown ranking metrics {bad}; choose from {sorted(M.RANKING_METRICS)}")
    if not ks or any(int(k) < 1 for k in ks):
        raise ConfigError(f"cutoffs K must be integers >= 1; got {list(ks)}")


def _mapped_csr(model: Scorer, parts: Sequence[Dataset | None]) -> sp.csr_matrix:
    """Union of ``parts`` as a binary matrix in the model's user/item index space.

    Built with one sort of the (user, item) keys, which also removes duplicates, instead of
    scipy's COO conversion + index sort + duplicate summing.
    """
    assert model.user_vocab is not None and model.item_vocab is not None
    n_u, n_i = len(model.user_vocab), len(model.item_vocab)
    keys = []
    for d in parts:
        if d is None or len(d) == 0:
            continue
        if d.user_vocab is model.user_vocab or d.user_vocab == model.user_vocab:
            u = d.users
        else:
            u = model.user_vocab.encode(d.user_vocab.ids)[d.users]
        if d.item_vocab is model.item_vocab or d.item_vocab == model.item_vocab:
            i = d.items
        else:
            i = model.item_vocab.encode(d.item_vocab.ids)[d.items]
        ok = (u >= 0) & (i >= 0)
        keys.append(u[ok].astype(np.int64) * n_i + i[ok])
    if not keys:
        return sp.csr_matrix((n_u, n_i), dtype=np.float32)
    key = unique(np.concatenate(keys))  # sorted: by user, then item
    rows, cols = np.divmod(key, n_i)
    indptr = np.zeros(n_u + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_u), out=indptr[1:])
    idx_dtype = np.int32 if max(n_i, key.size) < 2**31 else np.int64
    return sp.csr_matrix(
        (np.ones(key.size, np.float32), cols.astype(idx_dtype), indptr.astype(idx_dtype)),
        shape=(n_u, n_i),
    )


def _resolve(
    model: Scorer, data: Dataset | Split, exclude: Sequence[Dataset | None] | None, what: str
) -> tuple[Dataset, sp.csr_matrix]:
    """Target part and the mask: a Split masks train (and valid); a Dataset masks the model's
    training interactions unless ``exclude`` says otherwise (``exclude=()``: mask nothing)."""
    if isinstance(data, Split):
        target = data.test
        parts: Sequence[Dataset | None] = [data.train, data.valid] if exclude is None else exclude
        return target, _mapped_csr(model, list(parts))
    if not isinstance(data, Dataset):
        raise ConfigError(
            f"{what}: the data must be a Split or a Dataset (the test part); got "
            f"{type(data).__name__}"
        )
    if exclude is None:
        seen = getattr(model, "seen_", None)
        if not isinstance(seen, sp.csr_matrix):
            raise ConfigError(
                f"{what}: cannot tell which items this model saw in training; pass the Split, or "
                "exclude=[train] (exclude=() masks nothing)"
            )
        return data, seen
    if isinstance(exclude, Dataset):
        raise ConfigError(f"{what}: exclude must be a list of Datasets, e.g. exclude=[split.train]")
    return data, _mapped_csr(model, list(exclude))


def _report_unknown(model: Scorer, test: Dataset, what: str, stacklevel: int) -> dict[str, int]:
    """Count test interactions whose user or item the model does not know; warn when any."""
    assert model.user_vocab is not None and model.item_vocab is not None
    if (test.user_vocab is model.user_vocab or test.user_vocab == model.user_vocab) and (
        test.item_vocab is model.item_vocab or test.item_vocab == model.item_vocab
    ):
        return {}
    u_known = model.user_vocab.encode(test.user_vocab.ids) >= 0
    i_known = model.item_vocab.encode(test.item_vocab.ids) >= 0
    row_ok = u_known[test.users] & i_known[test.items]
    dropped = int((~row_ok).sum())
    if not dropped:
        return {}
    info = {
        "dropped_interactions": dropped,
        "unknown_users": int(unique(test.users[~u_known[test.users]]).size),
        "unknown_items": int(unique(test.items[~i_known[test.items]]).size),
    }
    warnings.warn(
        f"{what}: {dropped:,} of {len(test):,} interactions of '{test.name}' were dropped: "
        f"{info['unknown_users']:,} users and {info['unknown_items']:,} items are unknown to the "
        "model (not in its training data); metrics cover the rest",
        UnknownIdsWarning,
        stacklevel=stacklevel + 1,
    )
    return info


def _train_csr(
    model: Scorer, data: Dataset | Split, exclude: Sequence[Dataset | None] | None
) -> sp.csr_matrix:
    """The training interactions in the model's index space: what the model was fitted on
    (``seen_``), else the split's train part, else the first excluded part."""
    seen = getattr(model, "seen_", None)
    if isinstance(seen, sp.csr_matrix):
        return seen
    if isinstance(data, Split):
        return _mapped_csr(model, [data.train])
    return _mapped_csr(model, list(exclude or [])[:1])


def _warm_cold(
    model: Scorer,
    test: Dataset,
    train: sp.csr_matrix,
    users: np.ndarray,
    per_user: dict[str, np.ndarray],
    what: str,
    stacklevel: int,
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """Metrics over warm and cold users apart, and how much of the test part training covers.

    A user is warm with at least one training interaction; a test interaction is unreachable
    when its item never appears in training. Users and items the model does not know count as
    cold and unreachable. Warns (:class:`ColdStartWarning`) above :data:`COLD_WARN_SHARE`.
    """
    assert model.user_vocab is not None and model.item_vocab is not None
    warm_u = np.diff(train.indptr) > 0  # by model user index
    seen_i = np.bincount(train.indices, minlength=train.shape[1]) > 0  # by model item index
    u_map = model.user_vocab.encode(test.user_vocab.ids)  # test index -> model index (-1)
    i_map = model.item_vocab.encode(test.item_vocab.ids)
    test_u = unique(test.users)
    mu = u_map[test_u]
    cold_users = int((~((mu >= 0) & warm_u[np.maximum(mu, 0)])).sum())
    mi = i_map[test.items]
    unreachable = int((~((mi >= 0) & seen_i[np.maximum(mi, 0)])).sum())
    coverage = {
        "test_users": int(test_u.size),
        "cold_users": cold_users,
        "test_interactions": len(test),
        "unreachable_interactions": unreachable,
    }
    warm = warm_u[users]
    groups = []
    for mask in (warm, ~warm):
        groups.append({k: float(v[mask].mean()) for k, v in per_user.items()} if mask.any() else {})
    cold_share = cold_users / max(1, test_u.size)
    unreach_share = unreachable / max(1, len(test))
    if cold_share > COLD_WARN_SHARE or unreach_share > COLD_WARN_SHARE:
        warnings.warn(
            f"{what}: {cold_users:,} of {test_u.size:,} test users ({cold_share:.1%}) have no "
            f"training interaction and {unreachable:,} of {len(test):,} test interactions "
            f"({unreach_share:.1%}) are on items never seen in training; metrics cover every "
            "test user, metrics_warm and metrics_cold report them apart",
            ColdStartWarning,
            stacklevel=stacklevel + 1,
        )
    return groups[0], groups[1], coverage


def _batch_size(n_items: int, budget_bytes: int = 16 * 2**20) -> int:
    """Users per batch: about 16 MB of float32 scores, so each batch's arrays stay small
    enough for the allocator to reuse (no fresh page faults batch after batch)."""
    return max(16, budget_bytes // max(1, n_items * 4))


@dataclass
class _RankingBatch:
    """What one batch of users contributes: per-user metric values and top-K counts."""

    start: int
    values: dict[str, np.ndarray]
    counts: dict[int, np.ndarray]


def _rank_batch(
    scores: np.ndarray,
    start: int,
    b: np.ndarray,
    excl: sp.csr_matrix,
    test_m: sp.csr_matrix,
    n_rel: np.ndarray,
    ks: list[int],
    metrics: Sequence[str],
    beyond_accuracy: bool,
) -> _RankingBatch:
    """Mask excluded items, take the top K and compute each metric for one batch."""
    n_items = scores.shape[1]
    kmax = max(ks)
    scores = np.array(scores, dtype=np.float32)  # our own copy: masked in place below
    nan = np.isnan(scores)
    if nan.any():
        scores[nan] = -np.inf
    sub = excl[b]
    scores[np.repeat(np.arange(b.size), np.diff(sub.indptr)), sub.indices] = -np.inf
    top = top_k_indices(scores, kmax)
    rel = test_m[b]  # sorted indices per row
    rel_keys = (
        np.repeat(np.arange(b.size, dtype=np.int64), np.diff(rel.indptr)) * n_items + rel.indices
    )
    top_keys = (np.arange(b.size, dtype=np.int64)[:, None] * n_items + top).ravel()
    pos = np.minimum(np.searchsorted(rel_keys, top_keys), max(0, rel_keys.size - 1))
    hits = (
        (rel_keys[pos] == top_keys).reshape(top.shape)
        if rel_keys.size
        else np.zeros(top.shape, bool)
    )
    # never count a masked (-inf) slot as a hit when fewer than K items remain
    hits &= np.isfinite(np.take_along_axis(scores, top, 1))
    values = {f"{m}@{k}": M.RANKING_METRICS[m](hits, n_rel, k) for m in metrics for k in ks}
    counts = (
        {k: np.bincount(top[:, :k].ravel(), minlength=n_items) for k in ks}
        if beyond_accuracy
        else {}
    )
    return _RankingBatch(start, values, counts)


def evaluate_ranking(
    model: Scorer,
    test: Dataset | Split,
    exclude: Sequence[Dataset | None] | None = None,
    *,
    ks: Sequence[int] = (10,),
    metrics: Sequence[str] = ("precision", "recall", "ndcg", "map", "mrr", "hit"),
    batch_size: int | None = None,
    beyond_accuracy: bool = True,
) -> EvalResult:
    """Full-ranking top-K evaluation over the whole catalog.

    Items a user already had are masked by default, exactly as the protocols do: pass the
    :class:`~zenrec.splits.Split` and its test part is evaluated with the train and valid
    items masked; pass a test :class:`Dataset` and the model's training interactions are
    masked. Evaluating without any masking needs an explicit ``exclude=()``.

    Users are scored batch by batch in the calling thread (so a model is never asked for
    scores from two threads at once); masking, top-K and metrics of each batch run on a
    pool of the process's thread count (:mod:`zenrec._threads`) while the next batch is
    scored. Results do not depend on the batch size or the thread count.

    Args:
        model: A fitted recommender.
        test: A Split, or the relevant interactions (every user with at least one is evaluated).
        exclude: Parts whose items are masked for each user (e.g. ``[train, valid]``);
            ``None`` (default): as described above; ``()``: mask nothing.
        ks: Cutoffs.
        metrics: Names from :data:`zenrec.evaluation.metrics.RANKING_METRICS`.
        batch_size: Users scored at once (default: about 16 MB of scores).
        beyond_accuracy: Also compute coverage, Gini index, average popularity and novelty
            of the top-K lists.

    Warns:
        UnknownIdsWarning: Test interactions with users or items the model never saw were
            dropped (the count is also in ``result.extra``).
    """
    return _evaluate_ranking(
        model,
        test,
        exclude,
        ks=ks,
        metrics=metrics,
        batch_size=batch_size,
        beyond_accuracy=beyond_accuracy,
        stacklevel=3,
    )


def _evaluate_ranking(
    model: Scorer,
    test: Dataset | Split,
    exclude: Sequence[Dataset | None] | None,
    *,
    ks: Sequence[int],
    metrics: Sequence[str],
    batch_size: int | None,
    beyond_accuracy: bool,
    stacklevel: int,
) -> EvalResult:
    _check_metrics(metrics, ks)
    model._check_fitted()
    t0 = time.perf_counter()
    ks = sorted({int(k) for k in ks})
    n_items = model.n_items
    train = _train_csr(model, test, exclude)
    test, excl = _resolve(model, test, exclude, "evaluate_ranking")
    dropped = _report_unknown(model, test, "evaluate_ranking", stacklevel)
    test_m = _mapped_csr(model, [test])
    users = np.flatnonzero(np.diff(test_m.indptr) > 0)
    if users.size == 0:
        raise ProtocolError(
            f"test part '{test.name}' has no interactions with known users and items"
        )
    n_rel = np.diff(test_m.indptr)[users]
    bs = batch_size or _batch_size(n_items)
    per_user = {key: np.empty(users.size) for key in metric_keys(metrics, ks)}
    rec_counts = {k: np.zeros(n_items, dtype=np.int64) for k in ks}

    def collect(r: _RankingBatch) -> None:
        for key, v in r.values.items():
            per_user[key][r.start : r.start + v.size] = v
        for k, c in r.counts.items():
            rec_counts[k] += c

    threads = min(configured_threads(), max(1, -(-users.size // bs)))
    with ThreadPoolExecutor(max(1, threads)) as pool:
        pending: deque[Future[_RankingBatch]] = deque()
        for start in range(0, users.size, bs):
            b = users[start : start + bs]
            scores = model.score_indices(b)
            args = (
                scores,
                start,
                b,
                excl,
                test_m,
                n_rel[start : start + bs],
                ks,
                metrics,
                beyond_accuracy,
            )
            if threads <= 1:
                collect(_rank_batch(*args))
                continue
            pending.append(pool.submit(_rank_batch, *args))
            while len(pending) >= threads:  # bound the batches in flight (memory)
                collect(pending.popleft().result())
        while pending:
            collect(pending.popleft().result())
    result = {key: float(v.mean()) for key, v in per_user.items()}
    if beyond_accuracy:
        result.update(_beyond_accuracy(model, rec_counts))
    warm, cold, coverage = _warm_cold(
        model, test, train, users, per_user, "evaluate_ranking", stacklevel
    )
    assert model.user_vocab is not None
    return EvalResult(
        metrics=result,
        per_user=per_user,
        users=model.user_vocab.decode(users),
        seconds=time.perf_counter() - t0,
        mode="full",
        n_users=int(users.size),
        extra=dropped,
        metrics_warm=warm,
        metrics_cold=cold,
        test_coverage=coverage,
    )


def _beyond_accuracy(model: Scorer, rec_counts: dict[int, np.ndarray]) -> dict[str, float]:
    """Coverage, Gini index, average popularity and novelty of the top-K lists."""
    pop = model.item_popularity_
    assert pop is not None
    n_users_train = max(1, len(model.user_vocab or []))
    out: dict[str, float] = {}
    for k, c in rec_counts.items():
        out[f"coverage@{k}"] = float((c > 0).mean())
        out[f"gini@{k}"] = M.gini_index(c)
        out[f"avg_popularity@{k}"] = float((c * pop).sum() / max(1, c.sum()))
        p = np.clip(pop / n_users_train, 1e-12, None)
        out[f"novelty@{k}"] = float((c * -np.log2(p)).sum() / max(1, c.sum()))
    return out


def evaluate_sampled(
    model: Scorer,
    test: Dataset | Split,
    exclude: Sequence[Dataset | None] | None = None,
    *,
    n_negatives: int = 100,
    sampling: str = "uniform",
    ks: Sequence[int] = (10,),
    metrics: Sequence[str] = ("hit", "ndcg", "mrr"),
    seed: int = 0,
) -> EvalResult:
    """Sampled ranking: each user's test items against ``n_negatives`` sampled unseen items.

    Always labelled ``sampled`` (metric keys carry the suffix ``(sampled)``): sampled
    metrics can reorder models and mostly measure AUC (Krichene & Rendle 2020). ``test`` and
    ``exclude`` work as in :func:`evaluate_ranking` (negatives are never masked items).
    """
    if sampling not in ("uniform", "popularity"):
        raise ConfigError(f"sampling must be 'uniform' or 'popularity'; got {sampling!r}")
    if n_negatives < 1:
        raise ConfigError(f"n_negatives must be >= 1; got {n_negatives}")
    _check_metrics(metrics, ks)
    model._check_fitted()
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_items = model.n_items
    train = _train_csr(model, test, exclude)
    test, excl = _resolve(model, test, exclude, "evaluate_sampled")
    dropped = _report_unknown(model, test, "evaluate_sampled", 2)
    test_m = _mapped_csr(model, [test])
    seen = excl.maximum(test_m).tocsr()
    users = np.flatnonzero(np.diff(test_m.indptr) > 0)
    if sampling == "popularity":
        assert model.item_popularity_ is not None
        p = model.item_popularity_.astype(np.float64) + 1e-9
        p /= p.sum()
    else:
        p = None
    ks = sorted({int(k) for k in ks})
    per_user = {key: np.empty(users.size) for key in metric_keys(metrics, ks)}
    for j, u in enumerate(users):
        pos = test_m.indices[test_m.indptr[u] : test_m.indptr[u + 1]]
        banned = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        if n_items - banned.size < n_negatives:
            raise ProtocolError(f"user has too few unseen items for {n_negatives} negatives")
        negs = np.zeros(0, dtype=np.int64)
        while negs.size < n_negatives:
            draw = rng.choice(n_items, size=2 * n_negatives, p=p)
            draw = draw[~np.isin(draw, banned)]
            negs = unique(np.concatenate([negs, draw]))
        negs = rng.permutation(negs)[:n_negatives]
        cand = np.concatenate([pos, negs])
        s = model.score_indices(np.array([u]))[0, cand]
        order = np.lexsort((rng.random(cand.size), -s))
        hits = (order < pos.size)[None, :]
        for m in metrics:
            for k in ks:
                per_user[f"{m}@{k}"][j] = M.RANKING_METRICS[m](hits, np.array([pos.size]), k)[0]
    result = {f"{key}(sampled)": float(v.mean()) for key, v in per_user.items()}
    labelled = {f"{k}(sampled)": v for k, v in per_user.items()}
    warm, cold, coverage = _warm_cold(model, test, train, users, labelled, "evaluate_sampled", 2)
    assert model.user_vocab is not None
    return EvalResult(
        metrics=result,
        per_user=labelled,
        users=model.user_vocab.decode(users),
        seconds=time.perf_counter() - t0,
        mode=f"sampled ({n_negatives} {sampling} negatives)",
        n_users=int(users.size),
        extra=dropped,
        metrics_warm=warm,
        metrics_cold=cold,
        test_coverage=coverage,
    )


def evaluate_rating(model: Scorer, test: Dataset | Split) -> EvalResult:
    """RMSE and MAE of ``model.predict`` on the test ratings (of a Split's test part)."""
    if isinstance(test, Split):
        test = test.test
    if test.ratings is None:
        raise ProtocolError(f"rating metrics need ratings, but '{test.name}' has none")
    t0 = time.perf_counter()
    pred = model.predict(test.user_vocab.decode(test.users), test.item_vocab.decode(test.items))
    err = pred.astype(np.float64) - test.ratings
    users = test.users
    n_u = test.n_users
    cnt = np.bincount(users, minlength=n_u)
    sq = np.bincount(users, weights=err * err, minlength=n_u)
    ab = np.bincount(users, weights=np.abs(err), minlength=n_u)
    has = cnt > 0
    return EvalResult(
        metrics={"rmse": M.rmse(pred, test.ratings), "mae": M.mae(pred, test.ratings)},
        per_user={"rmse": np.sqrt(sq[has] / cnt[has]), "mae": ab[has] / cnt[has]},
        users=test.user_vocab.decode(np.flatnonzero(has)),
        seconds=time.perf_counter() - t0,
        mode="rating",
        n_users=int(has.sum()),
    )


def evaluate_ctr(
    scores: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None = None,
    probabilities: bool = True,
) -> EvalResult:
    """AUC, GAUC (when ``groups``, e.g. users, are given) and LogLoss (for probabilities)."""
    t0 = time.perf_counter()
    out = {"auc": M.auc(scores, labels)}
    if groups is not None:
        out["gauc"] = M.gauc(scores, labels, groups)
    if probabilities:
        out["logloss"] = M.logloss(scores, labels)
    return EvalResult(metrics=out, seconds=time.perf_counter() - t0, mode="ctr")
