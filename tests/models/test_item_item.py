"""RP3beta, EDLAE and SLIM: conformance, the papers' formulas on small data, history scoring."""

import numpy as np
import pytest

from zenrec.models import create_model
from zenrec.testing import RecommenderConformance, planted_blocks


class TestRP3beta(RecommenderConformance):
    def make_model(self):
        return create_model("rp3beta", k=20)


class TestEDLAE(RecommenderConformance):
    def make_model(self):
        return create_model("edlae", dropout=0.3, l2=1.0)


class TestEDLAELowRank(RecommenderConformance):
    def make_model(self):
        return create_model("edlae", dropout=0.3, l2=1.0, rank=6)


class TestSLIM(RecommenderConformance):
    def make_model(self):
        return create_model("slim", alpha=1e-3, l1_ratio=0.1, n_jobs=2)


def test_rp3beta_matches_the_walk_formula(synthetic):
    alpha, beta = 0.8, 0.5
    m = create_model("rp3beta", alpha=alpha, beta=beta, k=10_000, block_bytes=2**20).fit(synthetic)
    X = synthetic.csr().toarray().astype(np.float64)
    P_ui = (X / np.maximum(X.sum(1, keepdims=True), 1)) ** alpha
    P_iu = (X.T / np.maximum(X.sum(0)[:, None], 1)) ** alpha
    W = (P_iu @ P_ui) / np.maximum(X.sum(0), 1)[None, :] ** beta
    np.fill_diagonal(W, 0)
    np.testing.assert_allclose(m.W_.toarray(), W, rtol=1e-4, atol=1e-7)
    small = create_model("rp3beta", k=7, normalize_rows=True).fit(synthetic)
    assert small.W_.getnnz(axis=1).max() <= 7
    sums = np.asarray(small.W_.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums[sums > 0], 1.0, rtol=1e-5)


def test_rp3beta_beta_penalises_popular_items(synthetic):
    pop = np.asarray(synthetic.csr().sum(0)).ravel()
    top_pop = set(np.argsort(-pop)[:10].tolist())

    def share(beta):
        m = create_model("rp3beta", beta=beta, k=50).fit(synthetic)
        recs = m.recommend(synthetic.user_vocab.ids[:100], k=10)
        idx = m.item_vocab.encode(np.concatenate(recs.item_lists))
        return np.isin(idx, list(top_pop)).mean()

    assert share(0.9) < share(0.0)


def test_edlae_closed_forms_match_definitions(synthetic):
    p, lam = 0.4, 5.0
    X = synthetic.csr().toarray().astype(np.float64)
    G = X.T @ X
    L = np.diag(p / (1 - p) * np.diag(G) + lam)
    P = np.linalg.inv(G + L)
    B = np.eye(len(G)) - P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0)
    m = create_model("edlae", dropout=p, l2=lam).fit(synthetic)
    np.testing.assert_allclose(m.B_, B, atol=1e-4)
    # DLAE (no emphasis) is the ridge solution (G + Lambda)^-1 G
    d = create_model("edlae", dropout=p, l2=lam, emphasis="none").fit(synthetic)
    np.testing.assert_allclose(d.B_, P @ G, atol=1e-4)
    # dropout 0 with full emphasis is EASE
    e = create_model("ease", l2=lam).fit(synthetic)
    np.testing.assert_allclose(
        create_model("edlae", dropout=0.0, l2=lam).fit(synthetic).B_, e.B_, atol=1e-5
    )


def test_edlae_low_rank_is_the_best_rank_r_solution(synthetic):
    p, lam, r = 0.3, 2.0, 5
    X = synthetic.csr().toarray().astype(np.float64)
    G = X.T @ X
    M = G + np.diag(p / (1 - p) * np.diag(G) + lam)

    def objective(B):
        return np.linalg.norm(X - X @ B) ** 2 + np.trace(B.T @ (M - G) @ B)

    low = create_model("edlae", dropout=p, l2=lam, rank=r).fit(synthetic)
    B_r = low.left_.astype(np.float64) @ low.right_.T
    assert np.linalg.matrix_rank(B_r, tol=1e-4) == r
    full = np.linalg.solve(M, G)
    rng = np.random.default_rng(0)
    U, s, Vt = np.linalg.svd(full)
    naive = (U[:, :r] * s[:r]) @ Vt[:r]  # the truncated SVD of the full solution is worse
    assert objective(B_r) <= objective(naive) + 1e-6
    for _ in range(3):
        noisy = B_r + 1e-3 * rng.normal(size=(r, len(G))).T @ rng.normal(size=(r, len(G)))
        assert objective(B_r) <= objective(noisy) + 1e-6
    assert objective(full) <= objective(B_r)


def test_slim_matches_a_direct_elasticnet_and_is_sparse_nonnegative(synthetic):
    from sklearn.linear_model import ElasticNet

    alpha, l1 = 2e-3, 0.2
    m = create_model(
        "slim", alpha=alpha, l1_ratio=l1, neighbors=0, max_iter=2000, tol=1e-8, n_jobs=2
    ).fit(synthetic)
    W = m.W_.toarray()
    assert (W >= 0).all() and np.allclose(np.diag(W), 0)
    X = synthetic.csr().toarray().astype(np.float64)
    for j in (0, 5, 17):
        Xj = X.copy()
        Xj[:, j] = 0
        ref = (
            ElasticNet(
                alpha=alpha,
                l1_ratio=l1,
                positive=True,
                fit_intercept=False,
                max_iter=5000,
                tol=1e-10,
            )
            .fit(Xj, X[:, j])
            .coef_
        )
        np.testing.assert_allclose(W[:, j], ref, atol=2e-3)
    assert 0 < m.W_.nnz < 0.5 * W.size
    # one thread and many threads give the same weights
    one = create_model(
        "slim", alpha=alpha, l1_ratio=l1, neighbors=0, max_iter=2000, tol=1e-8, n_jobs=1
    ).fit(synthetic)
    np.testing.assert_allclose(one.W_.toarray(), W, atol=1e-6)


def test_slim_working_set_grows_to_the_exact_solution(synthetic, monkeypatch):
    # neighbors=0 starts each column from its WORKING_SET most co-occurring items and adds the
    # items whose optimality conditions fail: with a start of 2 items it must still reach the
    # solution over every item, which has far more than 2 regressors per column
    from zenrec.models.classic import slim

    params = {
        "alpha": 2e-3,
        "l1_ratio": 0.2,
        "neighbors": 0,
        "max_iter": 2000,
        "tol": 1e-8,
        "n_jobs": 1,
    }
    full = create_model("slim", **params).fit(synthetic).W_.toarray()
    assert np.median((full > 0).sum(axis=0)) > 4
    monkeypatch.setattr(slim, "WORKING_SET", 2)
    grown = create_model("slim", **params).fit(synthetic).W_.toarray()
    np.testing.assert_allclose(grown, full, atol=1e-5)
    # restricting the regressors to 2 (fsSLIM) is not the same problem
    assert not np.allclose(
        create_model("slim", **{**params, "neighbors": 2}).fit(synthetic).W_.toarray(),
        full,
        atol=1e-3,
    )


def test_slim_neighbors_limits_regressors(synthetic):
    m = create_model("slim", alpha=1e-4, l1_ratio=0.01, neighbors=5, n_jobs=1).fit(synthetic)
    assert m.W_.getnnz(axis=0).max() <= 5


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("rp3beta", {"k": 20}),
        ("edlae", {"l2": 1.0}),
        ("edlae", {"l2": 1.0, "rank": 6}),
        ("slim", {"alpha": 1e-3, "n_jobs": 1}),
    ],
)
def test_history_and_similarity_hooks(name, params):
    planted = planted_blocks()
    m = create_model(name, **params).fit(planted.train)
    tr = planted.train
    u = next(iter(planted.withheld))
    uidx = tr.user_vocab.encode([u])[0]
    hist = tr.items[tr.users == uidx]
    if not hasattr(m, "_score_from_items"):
        pytest.skip(f"{name} has no history hook on this branch")
    s = m._score_from_items(hist)
    assert s.shape == (tr.n_items,) and s.dtype == np.float32
    np.testing.assert_allclose(s, m.score_indices(np.array([uidx]))[0], rtol=1e-5, atol=1e-6)
    sim = m._similar_items(np.array([0, 9]))
    assert sim.shape == (2, tr.n_items)
    assert sim[0, :8].sum() > sim[0, 8:].sum()  # item 0 is most similar to its own block
