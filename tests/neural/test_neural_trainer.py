"""The shared trainer: early stopping, exact resume, determinism, losses, sampling, DDP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from zenrec.data import synthetic_dataset  # noqa: E402
from zenrec.models import create_model  # noqa: E402
from zenrec.models.neural import TrainingInterrupted  # noqa: E402
from zenrec.splits import user_random_split  # noqa: E402

SMALL = {"factors": 8, "batch_size": 128, "lr": 0.01, "progress": False, "num_threads": 1}


@pytest.fixture(scope="module")
def split():
    ds = synthetic_dataset(n_users=200, n_items=80, interactions_per_user=15, seed=5)
    return user_random_split(ds, (0.8, 0.1, 0.1), seed=0)


def _weights(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.module_.state_dict().items()}


def test_same_seed_same_weights_other_seed_differs(split):
    a = create_model("bprmf", epochs=3, seed=4, **SMALL).fit(split.train)
    b = create_model("bprmf", epochs=3, seed=4, **SMALL).fit(split.train)
    c = create_model("bprmf", epochs=3, seed=5, **SMALL).fit(split.train)
    for k, v in _weights(a).items():
        np.testing.assert_array_equal(v, _weights(b)[k])
    assert not np.allclose(_weights(a)["item.weight"], _weights(c)["item.weight"])


def test_global_rng_is_untouched(split):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    create_model("bprmf", epochs=1, **SMALL).fit(split.train)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_early_stopping_restores_best_weights_and_logs_history(split):
    calls = []
    m = create_model("bprmf", epochs=40, patience=2, eval_every=1, **{**SMALL, "lr": 0.2})
    m.epoch_callback = lambda epoch, metrics: calls.append((epoch, metrics["ndcg@10"]))
    m.fit(split.train, split.valid)
    hist = m.history_
    assert len(hist) < 40, "patience 2 with a large learning rate should stop early"
    assert all({"epoch", "loss", "valid_ndcg@10", "seconds"} <= set(h) for h in hist)
    best = max(hist, key=lambda h: h["valid_ndcg@10"])
    assert m.train_result_.best_epoch == best["epoch"]
    assert [c[0] for c in calls] == [h["epoch"] for h in hist]
    from zenrec.evaluation import evaluate_ranking

    now = evaluate_ranking(m, split.valid, [split.train], ks=[10], metrics=["ndcg"]).metrics
    assert now["ndcg@10"] == pytest.approx(best["valid_ndcg@10"], abs=1e-12)
    assert hist[-1]["epoch"] - best["epoch"] == 2


def test_callback_exceptions_propagate(split):
    class Prune(Exception):
        pass

    def cb(epoch, metrics):
        raise Prune

    m = create_model("bprmf", epochs=5, **SMALL)
    m.epoch_callback = cb
    with pytest.raises(Prune):
        m.fit(split.train, split.valid)


@pytest.mark.parametrize("name", ["bprmf", "twotower"])
def test_resume_after_kill_gives_identical_result(split, tmp_path, name):
    params = {
        "epochs": 5,
        "patience": 0,
        "seed": 2,
        "progress": False,
        "num_threads": 1,
        "batch_size": 128,
        "lr": 0.01,
        "optimizer": "adamw",
        "weight_decay": 1e-3,
        "lr_schedule": "cosine",
        "warmup_epochs": 0.5,
        "grad_clip": 5.0,
    }
    if name == "twotower":
        params.update(dim=8, layers=[8], out_dim=8, history_len=5, id_dropout=0.2)
    full = create_model(name, **params).fit(split.train, split.valid)
    ck = tmp_path / "ck"
    first = create_model(name, **params).set_run_options(checkpoint_dir=ck, stop_after_epoch=2)
    with pytest.raises(TrainingInterrupted):
        first.fit(split.train, split.valid)
    meta = json.loads((ck / "checkpoint.json").read_text())
    assert meta["epoch"] == 2 and (ck / meta["state_file"]).exists()
    assert list(ck.glob("*.tmp*")) == []
    resumed = create_model(name, **params).set_run_options(checkpoint_dir=ck, resume=True)
    resumed.fit(split.train, split.valid)
    assert resumed.train_result_.resumed_from == 2
    for k, v in _weights(full).items():
        np.testing.assert_array_equal(v, _weights(resumed)[k], err_msg=k)
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]


def test_resume_refuses_other_settings(split, tmp_path):
    from zenrec import ConfigError

    m = create_model("bprmf", epochs=3, **SMALL).set_run_options(
        checkpoint_dir=tmp_path, stop_after_epoch=1
    )
    with pytest.raises(TrainingInterrupted):
        m.fit(split.train)
    other = create_model("bprmf", epochs=3, **{**SMALL, "lr": 0.5})
    with pytest.raises(ConfigError, match="different settings"):
        other.set_run_options(checkpoint_dir=tmp_path, resume=True).fit(split.train)


def test_checkpoint_is_safetensors_and_json(split, tmp_path):
    from safetensors.numpy import load_file

    create_model("bprmf", epochs=2, **SMALL).set_run_options(checkpoint_dir=tmp_path).fit(
        split.train
    )
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    arrays = load_file(str(tmp_path / meta["state_file"]))
    assert "model.user.weight" in arrays and "generator" in arrays
    assert any(k.startswith("opt.") for k in arrays)


def test_losses_match_definitions():
    from zenrec.models.neural.losses import BPRLoss, SampledSoftmaxLoss

    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([[1.0], [1.0]])
    expected = -(np.log(1 / (1 + np.exp(-1.0))) + np.log(1 / (1 + np.exp(1.0)))) / 2
    assert BPRLoss()(pos, neg).item() == pytest.approx(expected, rel=1e-6)
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0]])
    items = torch.tensor([7, 8, 7])  # rows 0 and 2 share item 7: masked off-diagonal
    log_q = torch.log(torch.tensor([0.5, 0.25, 0.5]))
    got = SampledSoftmaxLoss()(logits, items, log_q).item()
    adj = logits.numpy() - log_q.numpy()[None, :]
    adj[0, 2] = adj[2, 0] = -np.inf
    ce = [-(adj[r, r] - np.log(np.exp(adj[r]).sum())) for r in range(3)]
    assert got == pytest.approx(float(np.mean(ce)), rel=1e-6)


def test_sampler_avoids_positives_and_follows_popularity():
    from zenrec.models.neural.sampling import NegativeSampler

    users = np.repeat(np.arange(4), 5)
    items = np.tile(np.arange(5), 4)  # every user has items 0..4 of 40
    counts = np.array([100] * 5 + [1] * 34 + [5000])
    s = NegativeSampler(40, counts, "uniform", users=users, items=items)
    g = torch.Generator().manual_seed(0)
    neg = s.sample(torch.arange(4).repeat(500), 4, g)
    assert (neg >= 5).float().mean() > 0.999  # 1/8 collide per draw; 4 draws leave ~0.02%
    p = NegativeSampler(40, counts, "popularity", alpha=1.0)
    draws = p.sample(torch.zeros(2000, dtype=torch.long), 1, g)
    assert (draws == 39).float().mean() > 0.8


def test_sampler_dense_and_sorted_lookups_agree():
    from zenrec.models.neural.sampling import NegativeSampler

    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 30, 200), rng.integers(0, 50, 200)
    counts = np.bincount(items, minlength=50)
    dense = NegativeSampler(50, counts, "uniform", users=users, items=items)
    sorted_keys = NegativeSampler(50, counts, "uniform", users=users, items=items, dense_budget=0)
    assert dense.dense is not None and sorted_keys.keys is not None
    qu = torch.as_tensor(rng.integers(0, 31, 5000))  # user 30 has no training rows
    qi = torch.as_tensor(rng.integers(0, 50, 5000))
    truth = set(zip(users.tolist(), items.tolist(), strict=True))
    expect = torch.tensor([(u, i) in truth for u, i in zip(qu.tolist(), qi.tolist(), strict=True)])
    assert torch.equal(dense.is_positive(qu, qi), expect)
    assert torch.equal(sorted_keys.is_positive(qu, qi), expect)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(dense.sample(qu[:100], 3, g1), sorted_keys.sample(qu[:100], 3, g2))


def test_lr_schedules():
    from zenrec.models.neural.trainer import TrainingConfig, lr_factor

    c = TrainingConfig(epochs=10, lr_schedule="cosine", warmup_epochs=1)
    f = [lr_factor(c, s, 10) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[-1] < 0.01 and all(a >= b for a, b in pairwise(f[10:]))
    # a run cut at epoch 4 of the same 10-epoch schedule follows the same curve up to there
    cut = TrainingConfig(epochs=4, schedule_epochs=10, lr_schedule="cosine", warmup_epochs=1)
    assert [lr_factor(cut, s, 10) for s in range(40)] == f[:40]
    assert lr_factor(TrainingConfig(epochs=4, lr_schedule="cosine"), 39, 10) < 0.01 < f[39]
    st = TrainingConfig(epochs=10, lr_schedule="step", step_epochs=2, step_gamma=0.5)
    assert lr_factor(st, 45, 10) == pytest.approx(0.25)


def _write_csv(path: Path) -> None:
    ds = synthetic_dataset(n_users=150, n_items=60, interactions_per_user=12, seed=9)
    lines = ["user,item,rating"] + [
        f"{u},{i},{r:g}"
        for u, i, r in zip(
            ds.user_vocab.decode(ds.users), ds.item_vocab.decode(ds.items), ds.ratings
        )
    ]
    path.write_text("\n".join(lines) + "\n")


def _run(cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


TRAIN_ARGS = [
    "--protocol",
    "recbole",
    "--model",
    "bprmf",
    "--set",
    "epochs=4",
    "--set",
    "factors=8",
    "--set",
    "batch_size=256",
    "--set",
    "lr=0.01",
    "--set",
    "progress=false",
    "--set",
    "num_threads=1",
    "--set",
    "patience=0",
]


def test_cli_train_writes_bundle_and_resumes(tmp_path):
    from zenrec.models import load_model

    csv = tmp_path / "log.csv"
    _write_csv(csv)
    base = [sys.executable, "-m", "zenrec", "train", "--dataset", str(csv), *TRAIN_ARGS]
    _run([*base, "--output", "full"], tmp_path)
    proc = subprocess.run(
        [*base, "--output", "part", "--stop-after-epoch", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "stopped after epoch 2" in proc.stderr
    _run([*base, "--output", "part", "--resume"], tmp_path)
    full = json.loads((tmp_path / "full" / "result.json").read_text())
    part = json.loads((tmp_path / "part" / "result.json").read_text())
    assert part["resumed_from_epoch"] == 2
    assert part["metrics"] == full["metrics"]
    a = load_model(tmp_path / "full" / "bundle")
    b = load_model(tmp_path / "part" / "bundle")
    np.testing.assert_array_equal(a.item_embeddings(), b.item_embeddings())
    assert len(a.history_) == 4


def test_ddp_two_gloo_processes_match_single_process(tmp_path):
    """torchrun --nproc_per_node=2 on CPU (gloo) gives the single-process result within
    tolerance."""
    from zenrec.models import load_model

    csv = tmp_path / "log.csv"
    _write_csv(csv)
    args = ["train", "--dataset", str(csv), *TRAIN_ARGS]
    _run([sys.executable, "-m", "zenrec", *args, "--output", "single"], tmp_path)
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "zenrec",
            *args,
            "--output",
            "ddp",
        ],
        tmp_path,
    )
    single = load_model(tmp_path / "single" / "bundle")
    ddp = load_model(tmp_path / "ddp" / "bundle")
    np.testing.assert_allclose(
        ddp.item_embeddings(), single.item_embeddings(), atol=1e-4, rtol=1e-3
    )
    rs = json.loads((tmp_path / "single" / "result.json").read_text())
    rd = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert rd["world_size"] == 2
    assert rd["metrics"]["ndcg@10"] == pytest.approx(rs["metrics"]["ndcg@10"], abs=1e-3)


def test_holdout_picks_the_epoch_count_when_no_validation_is_given(split, tmp_path):
    from zenrec.models import load_model

    params = {"epochs": 30, "patience": 2, "eval_every": 1, **{**SMALL, "lr": 0.2}}
    m = create_model("bprmf", **params).fit(split.train)
    h = m.holdout_
    assert h is not None and h["share"] == 0.1 and h["interactions"] > 0
    assert 1 <= h["best_epoch"] < 30, "a large learning rate should stop early on the holdout"
    # the refit runs on all of train for exactly the holdout's best epoch count, no validation
    assert len(m.history_) == h["best_epoch"]
    assert not any("valid_ndcg@10" in r for r in m.history_)
    # it is the probe's run, replayed: the same settings on the 90% part stop at the same epoch
    inner = user_random_split(split.train, (0.9, 0.1), seed=params.get("seed", 0))
    probe = create_model("bprmf", **params).fit(inner.train, inner.test)
    assert probe.train_result_.best_epoch == h["best_epoch"]
    m.save(tmp_path / "b")
    assert load_model(tmp_path / "b").holdout_ == h
    # given validation data, or holdout=0, nothing is held out
    assert create_model("bprmf", **params).fit(split.train, split.valid).holdout_ is None
    full = create_model("bprmf", **{**params, "holdout": 0}).fit(split.train)
    assert full.holdout_ is None and len(full.history_) == 30
    # with a decaying schedule the refit stops at the chosen epoch of the probe's 30-epoch
    # curve: its last learning rate is the probe's there, not decayed to 0
    cos = create_model("bprmf", **{**params, "lr_schedule": "cosine"}).fit(split.train)
    e = cos.holdout_["best_epoch"]
    assert 1 <= e < 30 and len(cos.history_) == e
    assert cos.history_[-1]["lr"] == pytest.approx(
        0.2 * 0.5 * (1 + math.cos(math.pi * e / 30)), rel=0.05
    )


def _expected_stop(curve: list[float], patience: int, min_delta: float) -> int:
    """The epoch (1-based) a run with ``curve`` stops at: patience counts rounds since the last
    round that beat the previous counted round by ``min_delta`` (relative)."""
    ref, bad = None, 0
    for epoch, v in enumerate(curve, 1):
        if ref is None or v > ref * (1 + min_delta):
            ref, bad = v, 0
        else:
            bad += 1
        if bad >= patience:
            return epoch
    return len(curve)


def test_min_delta_ignores_small_gains_for_stopping_but_keeps_the_best_weights(split):
    params = {**SMALL, "lr": 0.005, "eval_every": 1, "seed": 3}
    full = create_model("bprmf", epochs=20, patience=0, **params).fit(split.train, split.valid)
    curve = [h["valid_ndcg@10"] for h in full.history_]
    plain, strict = _expected_stop(curve, 3, 0.0), _expected_stop(curve, 3, 0.05)
    assert strict < plain, f"the curve should hold gains under 5%: {curve}"
    m = create_model("bprmf", epochs=20, patience=3, min_delta=0.05, **params)
    m.fit(split.train, split.valid)
    assert len(m.history_) == strict
    ran = curve[:strict]
    assert m.train_result_.best_epoch == 1 + int(np.argmax(ran))
    assert m.train_result_.best_score == pytest.approx(max(ran), abs=1e-12)
    assert create_model("bprmf", min_delta=0.0).config.min_delta == 0.0


def test_min_delta_stopping_survives_a_resume(split, tmp_path):
    params = {**SMALL, "lr": 0.005, "eval_every": 1, "seed": 3, "patience": 3, "min_delta": 0.05}
    full = create_model("bprmf", epochs=20, **params).fit(split.train, split.valid)
    first = create_model("bprmf", epochs=20, **params).set_run_options(
        checkpoint_dir=tmp_path, stop_after_epoch=5
    )
    with pytest.raises(TrainingInterrupted):
        first.fit(split.train, split.valid)
    resumed = create_model("bprmf", epochs=20, **params).set_run_options(
        checkpoint_dir=tmp_path, resume=True
    )
    resumed.fit(split.train, split.valid)
    assert len(resumed.history_) == len(full.history_) < 20
