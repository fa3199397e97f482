"""LazyAdam: torch's Adam/AdamW on dense gradients, per-row Adam on sparse ones; and the
trainer's sparse-embedding switch."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from zenrec.models.neural.optim import LazyAdam  # noqa: E402


@pytest.mark.parametrize("decoupled", [False, True])
def test_dense_gradients_match_torch_adam(decoupled):
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(7, 3, generator=g)
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    ref_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    ref = ref_cls([a], lr=0.05, weight_decay=0.1)
    lazy = LazyAdam([b], lr=0.05, weight_decay=0.1, decoupled=decoupled)
    for _ in range(6):
        grad = torch.randn(7, 3, generator=g)
        a.grad, b.grad = grad.clone(), grad.clone()
        ref.step()
        lazy.step()
    torch.testing.assert_close(b.data, a.data, rtol=1e-6, atol=1e-7)


def test_sparse_rows_follow_adam_and_untouched_rows_stay():
    emb_dense = torch.nn.Embedding(6, 4)
    emb_sparse = torch.nn.Embedding(6, 4, sparse=True)
    emb_sparse.weight.data.copy_(emb_dense.weight.data)
    ref = torch.optim.Adam(emb_dense.parameters(), lr=0.1, weight_decay=0.01)
    lazy = LazyAdam(emb_sparse.parameters(), lr=0.1, weight_decay=0.01)
    every = torch.tensor([0, 1, 2, 3, 4, 5, 2, 2])  # all rows, one repeated (summed)
    for _ in range(4):
        for emb, opt in ((emb_dense, ref), (emb_sparse, lazy)):
            opt.zero_grad()
            (emb(every) ** 2).sum().backward()
            opt.step()
    assert emb_sparse.weight.grad.is_sparse
    torch.testing.assert_close(emb_sparse.weight.data, emb_dense.weight.data, rtol=1e-6, atol=1e-7)
    # a step that touches rows 1 and 4 only leaves the others (and their moments) alone
    before = emb_sparse.weight.data.clone()
    m_before = lazy.state[emb_sparse.weight]["exp_avg"].clone()
    lazy.zero_grad()
    emb_sparse(torch.tensor([1, 4])).sum().backward()
    lazy.step()
    moved = (emb_sparse.weight.data != before).any(dim=1)
    assert moved.tolist() == [False, True, False, False, True, False]
    m_after = lazy.state[emb_sparse.weight]["exp_avg"]
    torch.testing.assert_close(m_after[[0, 2, 3, 5]], m_before[[0, 2, 3, 5]], rtol=0, atol=0)


def _fit(params, train, valid=None):
    from zenrec.models import create_model

    return create_model("bprmf", **params).fit(train, valid)


def test_trainer_switches_to_sparse_on_large_tables_and_still_learns(tmp_path):
    from zenrec.data import synthetic_dataset
    from zenrec.evaluation import evaluate_ranking
    from zenrec.splits import user_random_split

    ds = synthetic_dataset(n_users=600, n_items=150, interactions_per_user=20, seed=3)
    s = user_random_split(ds, (0.8, 0.1, 0.1), seed=0)
    base = {
        "factors": 16,
        "epochs": 8,
        "lr": 0.02,
        "progress": False,
        "num_threads": 1,
        "patience": 0,
        "seed": 1,
    }
    # 750 table rows; a batch of 64 with 4 negatives touches 384 rows a step -> auto = sparse
    lazy = _fit({**base, "batch_size": 64}, s.train)
    assert lazy.train_result_.sparse_embeddings
    dense = _fit({**base, "batch_size": 64, "sparse_embeddings": "off"}, s.train)
    big_batch = _fit({**base, "batch_size": 4096}, s.train)  # touches more rows than exist -> dense
    same_as_dense = _fit({**base, "batch_size": 4096, "sparse_embeddings": "off"}, s.train)
    assert (
        not dense.train_result_.sparse_embeddings and not big_batch.train_result_.sparse_embeddings
    )
    w = {k: v.detach().numpy() for k, v in big_batch.module_.state_dict().items()}
    for k, v in same_as_dense.module_.state_dict().items():
        np.testing.assert_array_equal(w[k], v.detach().numpy())
    ndcg = {
        name: evaluate_ranking(m, s.test, [s.train, s.valid], ks=[10], metrics=["ndcg"]).metrics[
            "ndcg@10"
        ]
        for name, m in (("lazy", lazy), ("dense", dense))
    }
    pop = evaluate_ranking(
        _pop(s.train), s.test, [s.train, s.valid], ks=[10], metrics=["ndcg"]
    ).metrics["ndcg@10"]
    assert ndcg["lazy"] > 1.3 * pop, (ndcg, pop)  # planted clusters are learnt
    assert ndcg["lazy"] > 0.85 * ndcg["dense"], ndcg
    # the embeddings' sparse flags are restored after fit
    assert not any(getattr(m, "sparse", False) for m in lazy.module_.modules())


def _pop(train):
    from zenrec.models import create_model

    return create_model("pop").fit(train)


def test_sparse_training_resumes_exactly(tmp_path):
    from zenrec.data import synthetic_dataset
    from zenrec.models import create_model
    from zenrec.models.neural import TrainingInterrupted
    from zenrec.splits import user_random_split

    s = user_random_split(
        synthetic_dataset(n_users=200, n_items=80, interactions_per_user=15, seed=5),
        (0.8, 0.1, 0.1),
        seed=0,
    )
    params = {
        "factors": 8,
        "batch_size": 32,
        "epochs": 4,
        "lr": 0.01,
        "progress": False,
        "num_threads": 1,
        "patience": 0,
        "seed": 2,
        "sparse_embeddings": "on",
        "weight_decay": 1e-4,
    }
    full = create_model("bprmf", **params).fit(s.train, s.valid)
    ck = tmp_path / "ck"
    with pytest.raises(TrainingInterrupted):
        create_model("bprmf", **params).set_run_options(checkpoint_dir=ck, stop_after_epoch=2).fit(
            s.train, s.valid
        )
    assert json.loads((ck / "checkpoint.json").read_text())["epoch"] == 2
    resumed = (
        create_model("bprmf", **params)
        .set_run_options(checkpoint_dir=ck, resume=True)
        .fit(s.train, s.valid)
    )
    for k, v in full.module_.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), resumed.module_.state_dict()[k].numpy(), err_msg=k)


def test_sparse_on_refuses_what_it_cannot_do():
    from zenrec import ConfigError
    from zenrec.data import synthetic_dataset
    from zenrec.models import create_model

    ds = synthetic_dataset(n_users=50, n_items=30, seed=0)
    with pytest.raises(ConfigError, match="sparse_embeddings=on needs optimizer adam or adamw"):
        create_model(
            "bprmf", sparse_embeddings="on", optimizer="sgd", epochs=1, progress=False
        ).fit(ds)
