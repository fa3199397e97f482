"""Synthetic interactions with planted structure, for tests and scale benchmarks.

Users and items get latent factors from a few clusters; each user draws items with
probability increasing in factor affinity plus a Zipf-like popularity bias (Gumbel top-k
sampling, chunked so 20M interactions fit in memory). Ratings follow the affinity,
timestamps increase along each user's draws, and features reveal the clusters.
"""

from __future__ import annotations

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
    for label, v, lo in [("n_users", n_users, 1), ("n_items", n_items, 2),
                         ("interactions_per_user", interactions_per_user, 1),
                         ("n_factors", n_factors, 1), ("n_clusters", n_clusters, 1)]:
        if int(v) < lo:
            raise ConfigError(f"synthetic_dataset: '{label}' must be an int >= {lo}; got {v}")
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (n_clusters, n_factors)).astype(np.float32)
    ucl = rng.integers(0, n_clusters, n_users)
    icl = rng.integers(0, n_clusters, n_items)
    U = centers[ucl] + 0.3 * rng.normal(0, 1, (n_users, n_factors)).astype(np.float32)
    V = centers[icl] + 0.3 * rng.normal(0, 1, (n_items, n_factors)).astype(np.float32)
    pop_rank = rng.permutation(n_items)
    pop = -popularity_skew * np.log1p(pop_rank).astype(np.float32)
    counts = np.clip(rng.poisson(interactions_per_user, n_users), 3, max(3, n_items - 1))
    users_out, items_out, aff_out = [], [], []
    if candidate_factor is None and n_items > 5000:
        candidate_factor = 8
    pop_p = np.exp(pop - pop.max())
    pop_p /= pop_p.sum()
    for start in range(0, n_users, chunk_users):
        stop = min(n_users, start + chunk_users)
        kmax = int(counts[start:stop].max())
        if candidate_factor:
            n_c = min(n_items, candidate_factor * kmax)
            cand = rng.choice(n_items, size=(stop - start, n_c), p=pop_p)  # (B, C)
            aff = np.einsum("bf,bcf->bc", U[start:stop], V[cand]) / np.sqrt(n_factors)
            g = aff + noise * rng.gumbel(size=aff.shape).astype(np.float32)
            # duplicates among candidates: keep the first occurrence only
            srt = np.sort(cand, axis=1)
            dup_vals = np.where(np.diff(srt, axis=1) == 0, srt[:, 1:], -1)
            for row in np.flatnonzero((dup_vals >= 0).any(axis=1)):
                _, first = np.unique(cand[row], return_index=True)
                mask = np.ones(n_c, dtype=bool)
                mask[first] = False
                g[row, mask] = -np.inf
        else:
            cand = None
            aff = U[start:stop] @ V.T / np.sqrt(n_factors)  # (B, I)
            g = aff + pop[None, :] + noise * rng.gumbel(size=aff.shape).astype(np.float32)
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
    u = np.concatenate(users_out)
    i = np.concatenate(items_out).astype(np.int64)
    a = np.concatenate(aff_out)
    qs = np.quantile(a, [0.1, 0.3, 0.6, 0.85])
    ratings = (1 + np.searchsorted(qs, a)).astype(np.float32)
    # Timestamps: each user's draws in order of preference rank, one hour apart, random start.
    real_counts = np.bincount(u, minlength=n_users)
    first = np.concatenate([[0], np.cumsum(real_counts)[:-1]])
    pos = np.arange(u.size) - np.repeat(first, real_counts)
    start_t = rng.integers(1_500_000_000, 1_600_000_000, n_users)
    times = start_t[u] + 3600 * pos
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
    labels = [f"c{j}" for j in range(n_clusters)]
    ds.user_features = {
        "segment": Feature("segment", "categorical", ucl[uv.encode(uids)].astype(np.int64), labels),
        "activity": Feature("activity", "numeric", real_counts.astype(np.float32)),
    }
    ds.item_features = {
        "genre": Feature(
            "genre", "multi", icl.astype(np.int64), labels, np.arange(n_items + 1, dtype=np.int64)
        ),
        "title": Feature("title", "text", np.array([f"Item {x}" for x in iids])),
        "popularity_rank": Feature("popularity_rank", "numeric", pop_rank.astype(np.float32)),
    }
    ds.context = {"hour": ((times // 3600) % 24).astype(np.int64)}
    return ds
