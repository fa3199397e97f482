"""Synthetic interactions with planted structure, for tests and scale benchmarks.

Users and items get latent factors from a few clusters; each user draws items with
probability increasing in factor affinity plus a Zipf-like popularity bias (Gumbel top-k
sampling, chunked so 20M interactions fit in memory). Ratings follow the affinity,
timestamps increase along each user's draws, and features reveal the clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zenrec._errors import ConfigError
from zenrec.data.dataset import Dataset, Feature
from zenrec.data.vocab import Vocabulary

__all__ = ["synthetic_dataset"]


def synthetic_dataset(
    n_users: int = 500,
    n_items: int = 300,
    interactions_per_user: int = 20,
    *,
    n_factors: int = 8,
    n_clusters: int = 5,
    popularity_skew: float = 1.0,
    noise: float = 0.5,
    seed: int = 0,
    string_ids: bool = False,
    chunk_users: int = 2000,
    candidate_factor: int | None = None,
) -> Dataset:
    """Generate a :class:`Dataset` with known structure.

    Args:
        n_users: Number of users.
        n_items: Number of items.
        interactions_per_user: Mean interactions per user (Poisson, at least 3).
        n_factors: Latent dimension of the planted factors.
        n_clusters: Clusters of users and items (revealed as features ``segment``/``genre``).
        popularity_skew: Exponent of the Zipf popularity bias (0 = none).
        noise: Gumbel temperature: lower means users follow their factors more strictly.
        seed: Random seed.
        string_ids: Use string raw ids (``"u12"``) instead of integers offset by 1000.
        chunk_users: Users per sampling chunk (bounds memory at chunk x n_items floats).
        candidate_factor: When set (default: 8 if ``n_items > 5000``), each user's items are
            drawn among ``candidate_factor x count`` popularity-sampled candidates instead of
            the whole catalog, so 20M interactions over a large catalog take minutes, not hours.

    Examples:
        >>> ds = synthetic_dataset(n_users=20, n_items=30, seed=1)
        >>> ds.n_users, ds.has_time, "genre" in ds.item_features
        (20, True, True)
    """
    for label, v, lo in [
        ("n_users", n_users, 1),
        ("n_items", n_items, 2),
        ("interactions_per_user", interactions_per_user, 1),
        ("n_factors", n_factors, 1),
        ("n_clusters", n_clusters, 1),
    ]:
        if int(v) < lo:
            raise ConfigError(f"synthetic_dataset: '{label}' must be an int >= {lo}; got {v}")
    rng = np.random.default_rng(seed)
    world = _plant(rng, n_users, n_items, n_factors, n_clusters, popularity_skew)
    counts = np.clip(rng.poisson(interactions_per_user, n_users), 3, max(3, n_items - 1))
    if candidate_factor is None and n_items > 5000:
        candidate_factor = 8
    u, i, a = _draw_interactions(rng, world, counts, noise, chunk_users, candidate_factor)
    ratings = _ratings_from_affinity(a)
    times = _timestamps(rng, u, n_users)
    return _assemble(world, u, i, ratings, times, string_ids)


@dataclass
class _Planted:
    """The hidden structure: cluster of each user/item, latent factors, popularity."""

    ucl: np.ndarray
    icl: np.ndarray
    U: np.ndarray
    V: np.ndarray
    pop_rank: np.ndarray
    pop: np.ndarray
    """Log popularity bias of each item (0 for the most popular, decreasing)."""
    n_clusters: int

    @property
    def n_factors(self) -> int:
        return int(self.U.shape[1])


def _plant(
    rng: np.random.Generator,
    n_users: int,
    n_items: int,
    n_factors: int,
    n_clusters: int,
    popularity_skew: float,
) -> _Planted:
    """Cluster centres, user/item factors around them and a Zipf-like popularity order."""
    centers = rng.normal(0, 1, (n_clusters, n_factors)).astype(np.float32)
    ucl = rng.integers(0, n_clusters, n_users)
    icl = rng.integers(0, n_clusters, n_items)
    U = centers[ucl] + 0.3 * rng.normal(0, 1, (n_users, n_factors)).astype(np.float32)
    V = centers[icl] + 0.3 * rng.normal(0, 1, (n_items, n_factors)).astype(np.float32)
    pop_rank = rng.permutation(n_items)
    pop = -popularity_skew * np.log1p(pop_rank).astype(np.float32)
    return _Planted(ucl, icl, U, V, pop_rank, pop, n_clusters)


def _draw_interactions(
    rng: np.random.Generator,
    w: _Planted,
    counts: np.ndarray,
    noise: float,
    chunk_users: int,
    candidate_factor: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's ``counts[u]`` items by Gumbel top-k, ``chunk_users`` users at a time.

    Returns (user index, item index, affinity) per interaction, users in order and each user's
    items in order of preference.
    """
    n_users = counts.size
    pop_p = np.exp(w.pop - w.pop.max())
    pop_p /= pop_p.sum()
    users_out, items_out, aff_out = [], [], []
    for start in range(0, n_users, chunk_users):
        stop = min(n_users, start + chunk_users)
        kmax = int(counts[start:stop].max())
        if candidate_factor:
            cand, aff, g = _candidate_scores(
                rng, w, start, stop, kmax, candidate_factor, pop_p, noise
            )
        else:
            cand = None
            aff = w.U[start:stop] @ w.V.T / np.sqrt(w.n_factors)  # (B, I)
            g = aff + w.pop[None, :] + noise * rng.gumbel(size=aff.shape).astype(np.float32)
        kk = min(kmax, g.shape[1])
        top = np.argpartition(-g, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(g, top, 1), axis=1)
        top = np.take_along_axis(top, order, 1)
        for r in range(stop - start):
            k = min(int(counts[start + r]), int(np.isfinite(g[r]).sum()))
            cols = top[r, :k]
            users_out.append(np.full(k, start + r, dtype=np.int64))
            items_out.append(cand[r, cols] if cand is not None else cols)
            aff_out.append(aff[r, cols])
    return (
        np.concatenate(users_out),
        np.concatenate(items_out).astype(np.int64),
        np.concatenate(aff_out),
    )


def _candidate_scores(
    rng: np.random.Generator,
    w: _Planted,
    start: int,
    stop: int,
    kmax: int,
    candidate_factor: int,
    pop_p: np.ndarray,
    noise: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Large catalogs: popularity-sampled candidates per user, their affinity and Gumbel keys
    (a repeated candidate keeps only its first occurrence)."""
    n_items = w.V.shape[0]
    n_c = min(n_items, candidate_factor * kmax)
    cand = rng.choice(n_items, size=(stop - start, n_c), p=pop_p)  # (B, C)
    aff = np.einsum("bf,bcf->bc", w.U[start:stop], w.V[cand]) / np.sqrt(w.n_factors)
    g = aff + noise * rng.gumbel(size=aff.shape).astype(np.float32)
    srt = np.sort(cand, axis=1)
    dup_vals = np.where(np.diff(srt, axis=1) == 0, srt[:, 1:], -1)
    for r in np.flatnonzero((dup_vals >= 0).any(axis=1)):
        _, first = np.unique(cand[r], return_index=True)
        mask = np.ones(n_c, dtype=bool)
        mask[first] = False
        g[r, mask] = -np.inf
    return cand, aff, g


def _ratings_from_affinity(a: np.ndarray) -> np.ndarray:
    """1-5 stars by affinity quantile (10 %, 30 %, 60 %, 85 %)."""
    qs = np.quantile(a, [0.1, 0.3, 0.6, 0.85])
    return (1 + np.searchsorted(qs, a)).astype(np.float32)


def _timestamps(rng: np.random.Generator, u: np.ndarray, n_users: int) -> np.ndarray:
    """Each user's draws in order of preference rank, one hour apart, from a random start."""
    real_counts = np.bincount(u, minlength=n_users)
    first = np.concatenate([[0], np.cumsum(real_counts)[:-1]])
    pos = np.arange(u.size) - np.repeat(first, real_counts)
    start_t = rng.integers(1_500_000_000, 1_600_000_000, n_users)
    return start_t[u] + 3600 * pos


def _assemble(
    w: _Planted,
    u: np.ndarray,
    i: np.ndarray,
    ratings: np.ndarray,
    times: np.ndarray,
    string_ids: bool,
) -> Dataset:
    """The Dataset with raw ids, and features that reveal the clusters."""
    n_users, n_items = w.ucl.size, w.icl.size
    if string_ids:
        uids = np.array([f"u{j}" for j in range(n_users)])
        iids = np.array([f"i{j}" for j in range(n_items)])
    else:
        uids = np.arange(n_users, dtype=np.int64) + 1000
        iids = np.arange(n_items, dtype=np.int64) + 1000
    uv, iv = Vocabulary(uids), Vocabulary(iids)
    ds = Dataset.from_raw(
        uids[u], iids[i], ratings, times, user_vocab=uv, item_vocab=iv, name="synthetic"
    )
    labels = [f"c{j}" for j in range(w.n_clusters)]
    real_counts = np.bincount(u, minlength=n_users)
    ds.user_features = {
        "segment": Feature(
            "segment", "categorical", w.ucl[uv.encode(uids)].astype(np.int64), labels
        ),
        "activity": Feature("activity", "numeric", real_counts.astype(np.float32)),
    }
    ds.item_features = {
        "genre": Feature(
            "genre", "multi", w.icl.astype(np.int64), labels, np.arange(n_items + 1, dtype=np.int64)
        ),
        "title": Feature("title", "text", np.array([f"Item {x}" for x in iids])),
        "popularity_rank": Feature("popularity_rank", "numeric", w.pop_rank.astype(np.float32)),
    }
    ds.context = {"hour": ((times // 3600) % 24).astype(np.int64)}
    return ds
