"""DIN's activation unit: the split first layer equals the paper's concatenated form, the
one-call candidate scoring equals pair-by-pair scoring (in training too), and user_id=False."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from zenrec.data import synthetic_dataset
from zenrec.models import create_model, load_model
from zenrec.models.neural.din import DIN
from zenrec.models.neural.nn import ScoringModule
from zenrec.models.neural.nn_seq import DINNet

FAST = {"progress": False, "num_threads": 1}


def _net(att: list[int], softmax: bool, user_id: bool = True) -> DINNet:
    torch.manual_seed(0)
    net = DINNet([], [], 10, 30, 8, att, [16], softmax, user_id)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.3)
    return net


def _concatenated(net: DINNet, u: tuple, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's form: MLP_att([e, q, e - q, e * q]) on the concatenated (B, T, 4D) input."""
    hist = u[1]
    e = net.item(hist)  # (B, T, D)
    q = v[:, : net.dim].unsqueeze(1).expand_as(e)
    w = net.att(torch.cat([e, q, e - q, e * q], -1)).squeeze(-1)  # (B, T)
    valid = hist > 0
    if net.softmax:
        w = torch.nan_to_num(torch.softmax(w.masked_fill(~valid, float("-inf")), -1))
    else:
        w = w * valid
    score = net.mlp(torch.cat([u[0], (w.unsqueeze(-1) * e).sum(1), v], 1)).squeeze(-1)
    return score, w


def _inputs(net: DINNet, b: int = 5, t: int = 7):
    g = torch.Generator().manual_seed(1)
    hist = torch.randint(0, 31, (b, t), generator=g)
    hist[0, :3] = 0  # left padding
    u = net.user_repr({"user": torch.arange(1, b + 1), "history": hist})
    v = net.item_repr({"item": torch.randint(1, 31, (b,), generator=g)})
    return u, v


@pytest.mark.parametrize("att,softmax", [([16, 8], False), ([], False), ([8], True)])
def test_split_first_layer_equals_the_concatenated_activation_unit(att, softmax):
    net = _net(att, softmax)
    u, v = _inputs(net)
    with torch.no_grad():
        ref_score, ref_w = _concatenated(net, u, v)
        torch.testing.assert_close(net.attention(u, v), ref_w, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net.score_pairs(u, v), ref_score, atol=1e-5, rtol=1e-5)


def test_candidates_and_matrix_equal_pair_by_pair_scores():
    net = _net([16, 8], False)
    u, _ = _inputs(net)
    items = net.item_repr({"item": torch.arange(1, 31)})  # (N, D)
    with torch.no_grad():
        m = net.score_matrix(u, items)  # (B, N)
        for b in range(u[0].shape[0]):
            row = (u[0][b : b + 1].expand(30, -1), u[1][b : b + 1].expand(30, -1))
            torch.testing.assert_close(m[b], net.score_pairs(row, items), atol=1e-5, rtol=1e-5)
        k = items[:12].view(3, 4, -1)  # three users, four candidates each
        c = net.score_candidates((u[0][:3], u[1][:3]), k)
        loop = torch.stack(
            [
                net.score_pairs(
                    (u[0][b : b + 1].expand(4, -1), u[1][b : b + 1].expand(4, -1)), k[b]
                )
                for b in range(3)
            ]
        )
        torch.testing.assert_close(c, loop, atol=1e-5, rtol=1e-5)


def test_training_loss_of_the_candidate_path_equals_the_repeated_pairs_path():
    ds = synthetic_dataset(n_users=30, n_items=25, seed=0)
    m = DIN(dim=8, attention_layers=[8], layers=[8], history_len=5, epochs=1, **FAST).fit(ds)
    task = m._make_task(ds)
    module = m._require_module()
    b = task.batch(torch.arange(64), torch.Generator().manual_seed(3))
    fast = task.loss(module, b)

    class Pairs(ScoringModule):  # the generic path: the user side repeated per negative
        user_repr, item_repr = module.user_repr, module.item_repr
        score_pairs = module.score_pairs

    slow = task.loss(Pairs(), b)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)


def test_din_without_user_id_scores_users_by_history_and_features_only(tmp_path):
    net = _net([8], False, user_id=False)
    assert net.user is None
    hist = torch.tensor([[0, 3, 4, 5], [0, 3, 4, 5]])
    u = net.user_repr({"user": torch.tensor([1, 2]), "history": hist})
    v = net.item_repr({"item": torch.tensor([7, 7])})
    with torch.no_grad():
        s = net.score_pairs(u, v)
    assert s[0] == s[1]  # two users, same history: same score
    with_id = _net([8], False, user_id=True)
    u2 = with_id.user_repr({"user": torch.tensor([1, 2]), "history": hist})
    with torch.no_grad():
        s2 = with_id.score_pairs(u2, with_id.item_repr({"item": torch.tensor([7, 7])}))
    assert s2[0] != s2[1]

    ds = synthetic_dataset(n_users=30, n_items=25, seed=0)
    m = create_model(
        "din",
        user_id=False,
        dim=8,
        attention_layers=[8],
        layers=[8],
        history_len=5,
        epochs=1,
        **FAST,
    ).fit(ds)
    users, items = ds.user_vocab.decode([0, 1, 2]), ds.item_vocab.decode([0, 1, 2])
    loaded = load_model(m.save(tmp_path / "b"))
    np.testing.assert_array_equal(loaded.predict(users, items), m.predict(users, items))
