"""Data-dependent defaults: resolved from the training data, recorded, overridable."""

import numpy as np

from zenrec.models import create_model, load_model
from zenrec.models.defaults import data_stats, item_l2


def test_auto_l2_follows_the_data_and_is_recorded(synthetic, tmp_path):
    m = create_model("ease").fit(synthetic)
    stats = data_stats(synthetic.csr())
    assert m.resolved_params_["l2"] == item_l2(stats) == max(10.0, 10 * stats.per_user)
    explicit = create_model("ease", l2=m.resolved_params_["l2"]).fit(synthetic)
    np.testing.assert_array_equal(m.B_, explicit.B_)
    loaded = load_model(m.save(tmp_path / "b"))
    assert loaded.params()["l2"] == "auto" and loaded.resolved_params_ == m.resolved_params_
    # a denser dataset gets a larger lambda
    from zenrec.data import synthetic_dataset

    dense = synthetic_dataset(n_users=200, n_items=100, interactions_per_user=40, seed=1)
    assert create_model("ease").fit(dense).resolved_params_["l2"] > m.resolved_params_["l2"]


def test_edlae_auto_l2_matches_ease_rule(synthetic):
    e = create_model("edlae").fit(synthetic)
    assert e.resolved_params_["l2"] == item_l2(data_stats(synthetic.csr()))


def test_ials_auto_factors_and_regularisation_scale_with_the_data(synthetic):
    from zenrec.data import synthetic_dataset
    from zenrec.models.defaults import als_factors, als_regularization

    m = create_model("ials", iterations=2, num_threads=1).fit(synthetic)
    stats = data_stats(synthetic.csr())
    assert m.resolved_params_ == {
        "factors": als_factors(stats),
        "regularization": als_regularization(stats, 5.0),
    }
    assert m.item_factors_.shape[1] == m.resolved_params_["factors"]
    sparse = synthetic_dataset(n_users=2000, n_items=400, interactions_per_user=3, seed=2)
    reg_sparse = (
        create_model("ials", iterations=1, num_threads=1)
        .fit(sparse)
        .resolved_params_["regularization"]
    )
    assert reg_sparse > m.resolved_params_["regularization"]  # sparser data, stronger penalty
    # explicit values win
    e = create_model("ials", factors=8, regularization=1.0, iterations=1, num_threads=1).fit(
        synthetic
    )
    assert e.resolved_params_ == {"factors": 8, "regularization": 1.0}


def test_auto_parameter_errors_stay_one_line():
    import pytest

    from zenrec import ConfigError

    with pytest.raises(
        ConfigError,
        match=(
            r"^the 'factors' parameter of ials: .*greater than or equal to 1 \(or 'auto'\); "
            r"got 0$"
        ),
    ):
        create_model("ials", factors=0)


def test_rp3beta_auto_beta_is_smaller_on_sparse_data(synthetic):
    from zenrec.data import synthetic_dataset
    from zenrec.models.defaults import rp3_beta

    m = create_model("rp3beta").fit(synthetic)
    assert m.resolved_params_["beta"] == rp3_beta(data_stats(synthetic.csr()))
    sparse = synthetic_dataset(n_users=2000, n_items=400, interactions_per_user=3, seed=2)
    assert create_model("rp3beta").fit(sparse).resolved_params_["beta"] < m.resolved_params_["beta"]


def test_itemknn_auto_shrink_grows_on_sparse_data_and_is_recorded(synthetic, tmp_path):
    from zenrec.data import synthetic_dataset
    from zenrec.models.defaults import knn_shrink

    m = create_model("itemknn").fit(synthetic)
    stats = data_stats(synthetic.csr())
    assert m.resolved_params_["shrink"] == knn_shrink(stats) == min(300.0, 300.0 / stats.per_user)
    explicit = create_model("itemknn", shrink=m.resolved_params_["shrink"]).fit(synthetic)
    assert (m.W_ != explicit.W_).nnz == 0
    loaded = load_model(m.save(tmp_path / "b"))
    assert loaded.params()["shrink"] == "auto" and loaded.resolved_params_ == m.resolved_params_
    sparse = synthetic_dataset(n_users=2000, n_items=400, interactions_per_user=3, seed=2)
    assert (
        create_model("itemknn").fit(sparse).resolved_params_["shrink"]
        > 3 * m.resolved_params_["shrink"]
    )
    assert create_model("itemknn", shrink=0).fit(sparse).resolved_params_ == {"shrink": 0.0}
    # UserKNN keeps a fixed shrink; its neighbour count follows the data
    assert create_model("userknn").config.shrink == 0.0


def test_userknn_auto_k_follows_interactions_per_user(synthetic, tmp_path):
    from zenrec.data import synthetic_dataset
    from zenrec.models.defaults import DataStats, user_knn_k

    m = create_model("userknn").fit(synthetic)
    stats = data_stats(synthetic.csr())
    k = m.resolved_params_["k"]
    assert k == user_knn_k(stats) == min(stats.n_users - 1, max(20, round(10_000 / stats.per_user)))
    assert int(m.S_.getnnz(axis=1).max()) <= k
    explicit = create_model("userknn", k=k).fit(synthetic)
    assert (m.S_ != explicit.S_).nnz == 0
    loaded = load_model(m.save(tmp_path / "u"))
    assert loaded.params()["k"] == "auto" and loaded.resolved_params_ == {"k": k}
    assert (loaded.S_ != m.S_).nnz == 0
    # few interactions per user: many more neighbours, up to every other user
    sparse = synthetic_dataset(n_users=2000, n_items=400, interactions_per_user=3, seed=2)
    ks = create_model("userknn").fit(sparse).resolved_params_["k"]
    assert ks == 1999 and ks > 10 * user_knn_k(
        DataStats(n_users=10**6, n_items=400, nnz=10**8, per_user=100.0, per_item=1.0, density=0.25)
    )
    assert create_model("userknn", k=7).fit(sparse).resolved_params_ == {"k": 7}


def test_neural_auto_batch_gives_small_data_enough_steps(tmp_path):
    from zenrec.models.defaults import interaction_batch, user_batch

    # 64-128 steps per epoch, powers of two within 256..4096; ML-1M's 575k rows keep 4096
    assert interaction_batch(575_000) == 4096 and interaction_batch(33_000) == 512
    assert interaction_batch(100) == 256
    for n in (20_000, 50_000, 100_000, 200_000):
        b = interaction_batch(n)
        assert b & (b - 1) == 0 and 64 <= n / b < 128
    assert user_batch(6040) == 500 and user_batch(610) == 122 and user_batch(50) == 32
    from zenrec.data import synthetic_dataset

    ds = synthetic_dataset(n_users=300, n_items=60, interactions_per_user=12, seed=3)
    m = create_model("bprmf", factors=4, epochs=2, progress=False, num_threads=1).fit(ds)
    assert m.resolved_params_ == {"batch_size": interaction_batch(len(ds))}
    steps = -(-len(ds) // m.resolved_params_["batch_size"])
    assert m.params()["batch_size"] == "auto" and steps >= 1
    loaded = load_model(m.save(tmp_path / "b"))
    assert loaded.params()["batch_size"] == "auto"
    assert loaded.resolved_params_ == {"batch_size": interaction_batch(len(ds))}
    gmf = create_model("gmf", factors=4, epochs=1, progress=False).fit(ds)
    assert gmf.resolved_params_ == {"batch_size": interaction_batch(len(ds))}
    vae = create_model("multvae", hidden=8, latent=4, epochs=1, progress=False).fit(ds)
    assert vae.resolved_params_ == {"batch_size": user_batch(ds.n_users)}
    assert load_model(vae.save(tmp_path / "v")).resolved_params_ == vae.resolved_params_
    # an explicit batch is used as given and nothing is resolved
    assert (
        create_model("bprmf", batch_size=64, epochs=1, progress=False).fit(ds).resolved_params_
        == {}
    )


def test_slim_auto_alpha_is_recboles_cap_or_weaker_on_sparse_data(tmp_path):
    from zenrec.data import synthetic_dataset
    from zenrec.models.defaults import slim_alpha

    dense = synthetic_dataset(n_users=100, n_items=60, interactions_per_user=30, seed=1)
    m = create_model("slim", n_jobs=1).fit(dense)
    assert m.resolved_params_ == {"alpha": 0.2}  # EASE's rule asks for more: RecBole's 0.2 caps it
    explicit = create_model("slim", alpha=0.2, n_jobs=1).fit(dense)
    assert (m.W_ != explicit.W_).nnz == 0
    loaded = load_model(m.save(tmp_path / "b"))
    assert loaded.params()["alpha"] == "auto" and loaded.resolved_params_ == m.resolved_params_
    # many users with few interactions each: the L2 of EASE's rule, far below 0.2, so that
    # co-occurrences of a few users are not all thresholded away
    sparse = synthetic_dataset(n_users=3000, n_items=200, interactions_per_user=3, seed=2)
    s = create_model("slim", n_jobs=1).fit(sparse)
    stats = data_stats(sparse.csr())
    assert s.resolved_params_["alpha"] == slim_alpha(stats, 0.02) < 0.05
    assert s.W_.nnz > 5 * create_model("slim", alpha=0.2, n_jobs=1).fit(sparse).W_.nnz
