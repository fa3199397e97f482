"""The thread policy, EASE's fast path, the bounded in-batch softmax and pruning on time."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from zenrec._errors import ConfigError
from zenrec._threads import configured_threads, resolve_threads, set_threads, thread_limit


def test_tests_run_on_one_thread():
    from threadpoolctl import threadpool_info

    assert configured_threads() == 1
    assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")


def test_resolve_threads_order(monkeypatch):
    monkeypatch.setenv("ZENREC_THREADS", "3")
    assert resolve_threads(None) == 3
    assert resolve_threads(5) == 5  # explicit wins over the variable
    monkeypatch.setenv("ZENREC_THREADS", "0")
    assert resolve_threads(None) >= 1  # 0: all cores
    monkeypatch.setenv("ZENREC_THREADS", "many")
    with pytest.raises(ConfigError, match="ZENREC_THREADS"):
        resolve_threads(None)
    with pytest.raises(ConfigError, match="'threads'"):
        resolve_threads(-1)


def test_thread_limit_restores():
    from threadpoolctl import threadpool_info

    with thread_limit(2) as n:
        assert n == 2 and configured_threads() == 2
        assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} <= {2}
    assert configured_threads() == 1
    assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")


def test_set_threads_sets_the_pools_environment(monkeypatch):
    for var in ("OMP_NUM_THREADS", "POLARS_MAX_THREADS"):
        monkeypatch.delenv(var, raising=False)
    try:
        assert set_threads(2) == 2
        import os

        assert os.environ["POLARS_MAX_THREADS"] == "2" and os.environ["OMP_NUM_THREADS"] == "2"
    finally:
        set_threads(1)


def test_every_computing_cli_command_takes_threads():
    from zenrec.cli.main import _leaf_commands, build_parser

    leaves = _leaf_commands(build_parser())
    assert len(leaves) >= 8
    for p in leaves:
        assert any("--threads" in a.option_strings for a in p._actions), p.prog


def test_cli_rejects_bad_threads(capsys):
    from zenrec.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["data", "info", "ml-100k", "--threads", "-2"])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_spd_inverse_matches_general_inverse():
    from zenrec.models.classic.ease import spd_inverse

    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 150))
    g = a.T @ a + 3.0 * np.eye(150)
    want = scipy.linalg.inv(g)
    got64 = spd_inverse(np.asfortranarray(g.copy()))
    got32 = spd_inverse(np.asfortranarray(g.astype(np.float32)))
    assert got64 is not None and got32 is not None
    np.testing.assert_allclose(got64, want, atol=1e-12)
    np.testing.assert_allclose(got32, want, atol=1e-5)
    np.testing.assert_array_equal(got64, got64.T)
    assert spd_inverse(np.asfortranarray(-np.eye(4))) is None  # not positive definite


def test_ease_float32_matches_float64_closed_form(synthetic):
    """B from the float32 Cholesky path against the paper's formula in float64."""
    from zenrec.models.classic.ease import EASE

    m32 = EASE(l2=20.0).fit(synthetic)
    X = m32.seen_.toarray().astype(np.float64)
    P = np.linalg.inv(X.T @ X + 20.0 * np.eye(X.shape[1]))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(m32.B_, B, atol=1e-4)
    users = np.arange(50)
    np.testing.assert_allclose(m32.score_indices(users), X[:50] @ B, atol=1e-3)


def test_ease_blocked_threaded_scoring_equals_one_product(synthetic, monkeypatch):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import zenrec.models.classic.ease as ease_mod
    from zenrec.models.classic.ease import EASE

    m = EASE(l2=20.0).fit(synthetic)
    users = np.arange(synthetic.n_users)
    assert users.size == 300
    want = (m.seen_[users] @ m.B_).astype(np.float32)
    pools: list[int] = []
    blocks: list[tuple[int, int]] = []  # (first row of the block, thread that computed it)

    class SpyPool(ThreadPoolExecutor):
        def __init__(self, workers: int) -> None:
            pools.append(workers)
            super().__init__(workers)

        def map(self, fn, *iterables, **kw):
            def spied(s):
                blocks.append((s, threading.get_ident()))
                return fn(s)

            return super().map(spied, *iterables, **kw)

    monkeypatch.setattr(ease_mod, "ThreadPoolExecutor", SpyPool)
    with thread_limit(2):
        got = m.score_indices(users)  # 300 users: two row blocks of 256 on two threads
    np.testing.assert_array_equal(got, want)
    assert pools == [2]
    assert sorted(s for s, _ in blocks) == [0, 256]
    assert threading.get_ident() not in {t for _, t in blocks}  # not on the caller's thread
    pools.clear()
    blocks.clear()
    np.testing.assert_array_equal(m.score_indices(users), want)  # one thread: no pool at all
    assert pools == [] and blocks == []


def test_inbatch_softmax_groups_equal_their_mean():
    # A real BPR-MF task under the softmax loss: with inbatch_negatives=4 a batch of 10 is
    # three groups (4, 4, 2), each positive contrasted with its own group's items only.
    torch = pytest.importorskip("torch")
    from zenrec.data import synthetic_dataset
    from zenrec.models.neural import BPRMF

    ds = synthetic_dataset(n_users=50, n_items=40, interactions_per_user=8, seed=0)
    opts = {"factors": 8, "epochs": 1, "batch_size": 64, "progress": False}
    opts |= {"loss": "softmax", "logq_correction": False}
    grouped = BPRMF(inbatch_negatives=4, **opts).fit(ds)
    whole = BPRMF(inbatch_negatives=0, **opts).fit(ds)
    module = grouped.module_
    task, task_whole = grouped._make_task(ds), whole._make_task(ds)
    b = task.batch(torch.arange(10), torch.Generator().manual_seed(0))
    assert b["i"].numel() == 10

    def part(s: int, e: int) -> dict:
        return {k: v[s:e] for k, v in b.items()}

    got = task.loss(module, b)
    want = (
        4 * task.loss(module, part(0, 4))  # a batch no larger than 4 is one group
        + 4 * task.loss(module, part(4, 8))
        + 2 * task.loss(module, part(8, 10))
    ) / 10
    assert torch.allclose(got, want)
    # the grouping changes the loss: contrasting against the whole batch is another value
    assert not torch.allclose(got, task_whole.loss(module, b))
    assert torch.allclose(task_whole.loss(module, part(0, 4)), task.loss(module, part(0, 4)))


def test_time_budget_starts_with_the_first_trial_and_scales_the_median():
    optuna = pytest.importorskip("optuna")
    from zenrec.tuning.tuner import TIME_PRUNE_FACTOR, time_budget

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    assert time_budget(study) is None
    running = study.ask()  # a running trial does not count
    assert time_budget(study) is None
    study.tell(running, 0.1)
    assert time_budget(study) is None  # finished without its seconds: no reference yet
    t = study.ask()
    t.set_user_attr("fit_seconds", 2.0)
    study.tell(t, 0.1)
    assert time_budget(study) == pytest.approx(TIME_PRUNE_FACTOR * 2.0)
    t = study.ask()
    t.set_user_attr("fit_seconds", 10.0)
    study.tell(t, 0.1)
    assert time_budget(study) == pytest.approx(TIME_PRUNE_FACTOR * 6.0)
    t = study.ask()
    t.set_user_attr("fit_seconds", 4.0)
    study.tell(t, state=optuna.trial.TrialState.PRUNED)
    assert time_budget(study) == pytest.approx(TIME_PRUNE_FACTOR * 4.0)


def test_history_splits_epoch_time_into_training_and_validation(synthetic):
    pytest.importorskip("torch")
    from zenrec.models.neural.mf import BPRMF
    from zenrec.splits import global_random_split

    split = global_random_split(synthetic, (0.8, 0.1, 0.1), seed=0)
    m = BPRMF(factors=8, epochs=2, eval_every=1, batch_size=256, progress=False)
    m.fit(split.train, split.valid)
    for h in m.history_:
        assert h["train_seconds"] > 0 and h["valid_seconds"] > 0
        assert h["train_seconds"] + h["valid_seconds"] <= h["seconds"] + 1e-6


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, None),  # v2, no limit
        ({"cpu.max": "200000 100000\n"}, 2.0),  # v2, limits.cpu: 2
        ({"cpu.max": "150000 100000\n"}, 1.5),  # v2, limits.cpu: 1500m
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "300000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 3),
        ({}, None),  # no cgroup files (not Linux, or not mounted)
        ({"cpu.max": "garbage"}, None),
    ],
)
def test_cgroup_cpu_limit_reads_v1_and_v2(tmp_path, files, expected):
    from zenrec._threads import cgroup_cpu_limit

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_limit(tmp_path) == expected


def test_all_cores_is_bounded_by_the_cgroup_limit(monkeypatch, tmp_path):
    import os

    import zenrec._threads as th

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(64)), raising=False)
    monkeypatch.setattr(th, "_CGROUP_ROOT", tmp_path)
    assert th.available_cores() == 64  # no limit file: every core of the node
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert th.available_cores() == 2  # 1.5 CPUs rounded up
    monkeypatch.delenv("ZENREC_THREADS", raising=False)
    assert resolve_threads(None) == 2
    assert resolve_threads(None, default=1) == 1  # a command's own default
    monkeypatch.setenv("ZENREC_THREADS", "3")
    assert resolve_threads(None, default=1) == 3  # the variable wins over it
    monkeypatch.setenv("ZENREC_THREADS", "0")
    assert resolve_threads(None, default=1) == 2  # 0: all (allowed) cores
