"""Every classic model passes the conformance suite; plus model-specific checks."""

import numpy as np
import pytest

from zenrec import ConfigError, Dataset
from zenrec.models import create_model
from zenrec.testing import RecommenderConformance


class TestPop(RecommenderConformance):
    planted_scope = "largest_group"
    history_support = False
    similar_support = False

    def make_model(self):
        return create_model("pop")


class TestItemKNN(RecommenderConformance):
    def make_model(self):
        return create_model("itemknn", k=20)


class TestUserKNN(RecommenderConformance):
    history_support = False
    similar_support = False

    def make_model(self):
        return create_model("userknn", k=20)


class TestEASE(RecommenderConformance):
    def make_model(self):
        return create_model("ease", l2=1.0)


class TestIALS(RecommenderConformance):
    def make_model(self):
        return create_model("ials", factors=4, regularization=1.0, iterations=15, num_threads=1)


class TestBiasedMF(RecommenderConformance):
    def make_model(self):
        return create_model("biasedmf", factors=8, iterations=10)


def test_itemknn_user_whose_items_have_no_neighbours_gets_popular_items():
    """A user whose one item nobody else consumed has an all-zero ItemKNN row: the list is the
    popular items (ties broken by popularity), not the first item indices."""
    users = ["a", "a", "b", "b", "c", "c", "c", "lonely"]
    items = [5, 6, 5, 6, 4, 5, 6, 1]
    m = create_model("itemknn", k=5).fit(Dataset.from_raw(np.array(users), np.array(items)))
    recs = m.recommend(["lonely"], k=3)
    assert recs.score_lists[0].tolist() == [0.0, 0.0, 0.0]
    assert recs.item_lists[0].tolist() == [5, 6, 4]  # by popularity (3, 3, 1), not 2, 3, 4
    assert recs.fallback_kind == ["none"]


def test_bad_parameters_give_one_line_errors():
    with pytest.raises(
        ConfigError, match=r"'factors' parameter of ials.*greater than or equal to 1.*got 0"
    ):
        create_model("ials", factors=0)
    with pytest.raises(ConfigError, match="'lambda' is not a parameter of ease"):
        create_model("ease", **{"lambda": 3})
    with pytest.raises(ConfigError, match="unknown model 'easy'"):
        create_model("easy")


def test_knn_keeps_at_most_k_neighbours(synthetic):
    m = create_model("itemknn", k=7, block_bytes=2**20).fit(synthetic)
    assert m.W_.getnnz(axis=0).max() <= 7
    u = create_model("userknn", k=5).fit(synthetic)
    assert u.S_.getnnz(axis=1).max() <= 5
    # blockwise computation equals one block
    m2 = create_model("itemknn", k=7).fit(synthetic)
    np.testing.assert_allclose(m.W_.toarray(), m2.W_.toarray(), rtol=1e-6)


def test_ease_closed_form_matches_definition(synthetic):
    m = create_model("ease", l2=10.0).fit(synthetic)
    X = synthetic.csr().toarray().astype(np.float64)
    G = X.T @ X + 10.0 * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    B = np.eye(X.shape[1]) - P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0)
    np.testing.assert_allclose(m.B_, B, atol=1e-4)


def test_biasedmf_recovers_planted_ratings():
    rng = np.random.default_rng(0)
    n_u, n_i, k = 200, 150, 3
    P, Q = rng.normal(0, 1, (n_u, k)), rng.normal(0, 1, (n_i, k))
    bu, bi = rng.normal(0, 0.5, n_u), rng.normal(0, 0.5, n_i)
    mask = rng.random((n_u, n_i)) < 0.3
    u, i = np.nonzero(mask)
    r = 3 + bu[u] + bi[i] + (P[u] * Q[i]).sum(1) + rng.normal(0, 0.1, u.size)
    from zenrec.data import Dataset
    from zenrec.splits import global_random_split

    ds = Dataset.from_raw(u, i, r)
    s = global_random_split(ds, (0.9, 0.1), seed=0)
    m = create_model("biasedmf", factors=3, reg=0.01, reg_bias=0.001, iterations=20).fit(s.train)
    pred = m.predict(s.test.user_vocab.decode(s.test.users), s.test.item_vocab.decode(s.test.items))
    rmse = float(np.sqrt(np.mean((pred - s.test.ratings) ** 2)))
    assert rmse < 0.35  # global-mean RMSE is about 2
    # the learned item biases recover the planted ones (up to the shift the factors absorb)
    planted_bi = bi[s.train.item_vocab.ids.astype(int)]
    assert np.corrcoef(m.bi_, planted_bi)[0, 1] > 0.9
    # an unknown user falls back to mu + b_i, an unknown item to mu + b_u, both unknown to mu
    mu = float(s.train.ratings.mean())
    items = s.train.item_vocab.ids[:5]
    np.testing.assert_allclose(
        m.predict(["ghost"] * 5, items), mu + m.bi_[s.train.item_vocab.encode(items)], rtol=1e-6
    )
    user = s.train.user_vocab.ids[3]
    np.testing.assert_allclose(
        m.predict([user], [10**6]), mu + m.bu_[s.train.user_vocab.encode([user])], rtol=1e-6
    )
    np.testing.assert_allclose(m.predict(["ghost"], [10**6]), [mu], rtol=1e-6)


def test_ials_is_deterministic_for_a_seed_and_another_seed_changes_it(synthetic):
    a = create_model("ials", factors=8, iterations=3, seed=1, num_threads=1).fit(synthetic)
    b = create_model("ials", factors=8, iterations=3, seed=1, num_threads=1).fit(synthetic)
    np.testing.assert_allclose(a.item_factors_, b.item_factors_, rtol=1e-5)
    c = create_model("ials", factors=8, iterations=3, seed=2, num_threads=1).fit(synthetic)
    assert np.abs(a.item_factors_ - c.item_factors_).max() > 1e-3


def test_biasedmf_is_deterministic_for_a_seed_and_another_seed_changes_it(synthetic):
    a = create_model("biasedmf", factors=8, iterations=3, seed=1).fit(synthetic)
    b = create_model("biasedmf", factors=8, iterations=3, seed=1).fit(synthetic)
    np.testing.assert_array_equal(a.Q_, b.Q_)
    c = create_model("biasedmf", factors=8, iterations=3, seed=2).fit(synthetic)
    assert np.abs(a.Q_ - c.Q_).max() > 1e-3


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_ease_gram_is_exact_on_any_thread_count(threads):
    import scipy.sparse as sp

    from zenrec._threads import thread_limit
    from zenrec.models.classic.ease import gram

    x = sp.random(400, 900, density=0.03, format="lil", random_state=7, dtype=np.float32)
    x[x.nonzero()] = 1.0
    x[:, 5] = 0.0  # an empty column, and a very popular one
    x[:, 6] = 1.0
    x = sp.csr_matrix(x)
    with thread_limit(threads):
        g = gram(x)
    np.testing.assert_array_equal(g, (x.T @ x).toarray())
