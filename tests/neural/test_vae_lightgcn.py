"""Mult-VAE and LightGCN: conformance, paper-specific behaviour, history fold-in."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from zenrec.models import create_model
from zenrec.models.neural.lightgcn import normalized_adjacency
from zenrec.testing import RecommenderConformance, planted_blocks

FAST = {"progress": False, "num_threads": 1}


class TestMultVAE(RecommenderConformance):
    similar_support = False  # no item embeddings of its own (a decoder per item)

    def make_model(self):
        return create_model(
            "multvae",
            hidden=32,
            latent=8,
            epochs=60,
            batch_size=32,
            lr=5e-3,
            anneal_epochs=20,
            **FAST,
        )


class TestLightGCN(RecommenderConformance):
    def make_model(self):
        return create_model(
            "lightgcn", dim=16, layers=2, epochs=60, batch_size=256, lr=0.02, reg=1e-4, **FAST
        )


def test_normalized_adjacency_is_symmetric_d_half():
    import scipy.sparse as sp

    R = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    A = normalized_adjacency(R).toarray()
    assert A.shape == (5, 5)
    np.testing.assert_allclose(A, A.T)
    # user 0 (degree 2) - item 1 (degree 2): 1 / sqrt(2 * 2)
    assert A[0, 2 + 1] == pytest.approx(0.5)
    # user 1 (degree 2) - item 2 (degree 1): 1 / sqrt(2)
    assert A[1, 2 + 2] == pytest.approx(1 / np.sqrt(2))
    assert np.allclose(A[:2, :2], 0) and np.allclose(A[2:, 2:], 0)


def test_lightgcn_layers_average_propagation():
    planted = planted_blocks()
    m = create_model("lightgcn", dim=8, layers=2, epochs=2, batch_size=512, **FAST).fit(
        planted.train
    )
    L = m.item_layers_
    assert L.shape == (3, planted.train.n_items, 8)
    A = normalized_adjacency(m.seen_).toarray()
    n_u = m.seen_.shape[0]
    E0 = np.concatenate(
        [m.module_.user.weight.detach().numpy(), m.module_.item.weight.detach().numpy()]
    )
    E1 = A @ E0
    E2 = A @ E1
    np.testing.assert_allclose(L[1], E1[n_u:], atol=1e-5)
    np.testing.assert_allclose(m.user_emb_, ((E0 + E1 + E2) / 3)[:n_u], atol=1e-5)


def test_lightgcn_propagation_gradient_matches_dense_autograd():
    """The CSR propagation's hand-written backward (A^T = A) gives torch's dense gradient."""
    import torch

    from zenrec.models.neural.nn import LightGCNModule

    planted = planted_blocks()
    m = create_model("lightgcn", dim=4, layers=3, epochs=1, batch_size=512, **FAST).fit(
        planted.train
    )
    module = LightGCNModule(*m.seen_.shape, dim=4, layers=3)
    adj = m._adjacency()
    w = torch.randn(sum(m.seen_.shape), 4, dtype=torch.float64).float()
    users, items = module(adj)
    (torch.cat([users, items]) * w).sum().backward()
    got = torch.cat([module.user.weight.grad, module.item.weight.grad]).numpy()
    A = torch.as_tensor(normalized_adjacency(m.seen_).toarray())
    e = torch.cat([module.user.weight, module.item.weight]).detach().clone().requires_grad_(True)
    layers = [e]
    for _ in range(3):
        layers.append(A @ layers[-1])
    (torch.stack(layers).mean(0) * w).sum().backward()
    np.testing.assert_allclose(got, e.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_lightgcn_fold_in_ranks_history_like_the_trained_user():
    planted = planted_blocks()
    m = create_model("lightgcn", dim=16, layers=2, epochs=60, batch_size=256, lr=0.02, **FAST)
    m.fit(planted.train)
    tr = planted.train
    hits = []
    for u in list(planted.withheld)[::5]:
        hist = tr.items[tr.users == tr.user_vocab.encode([u])[0]]
        s = m._score_from_items(hist)
        s[hist] = -np.inf
        hits.append(m.item_vocab.decode([int(np.argmax(s))])[0] == planted.withheld[u])
    assert np.mean(hits) >= 0.9
    sim = m._similar_items(np.array([0]))
    assert sim.shape == (1, tr.n_items) and sim[0, :8].mean() > sim[0, 8:].mean()


def test_multvae_kl_annealing_and_history_scoring():
    planted = planted_blocks()
    m = create_model(
        "multvae",
        hidden=32,
        latent=8,
        epochs=10,
        batch_size=32,
        lr=5e-3,
        anneal_epochs=4,
        anneal_cap=0.3,
        **FAST,
    ).fit(planted.train)
    steps_per_epoch = -(-planted.train.n_users // 32)
    assert int(m.module_.steps) == 10 * steps_per_epoch
    tr = planted.train
    u = next(iter(planted.withheld))
    uidx = tr.user_vocab.encode([u])[0]
    s = m._score_from_items(tr.items[tr.users == uidx])
    np.testing.assert_allclose(s, m.score_indices(np.array([uidx]))[0], rtol=1e-5, atol=1e-5)
    assert m._similar_items(np.array([0])) is None


def test_multvae_seed_changes_weights_and_leaves_global_rng():
    planted = planted_blocks()
    state = torch.random.get_rng_state()
    a = create_model("multvae", hidden=16, latent=4, epochs=2, batch_size=32, seed=0, **FAST).fit(
        planted.train
    )
    b = create_model("multvae", hidden=16, latent=4, epochs=2, batch_size=32, seed=0, **FAST).fit(
        planted.train
    )
    c = create_model("multvae", hidden=16, latent=4, epochs=2, batch_size=32, seed=1, **FAST).fit(
        planted.train
    )
    assert torch.equal(torch.random.get_rng_state(), state)
    wa, wb, wc = (x.module_.enc.weight.detach() for x in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
