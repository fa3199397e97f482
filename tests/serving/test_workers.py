"""``zenrec serve --workers N`` on Linux: workers forked from a parent that loaded the bundle once,
supervised (a killed worker is replaced, SIGTERM stops all, a killed parent leaves no orphans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from _net import server_process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers: Linux only"),
]

ZENREC = [sys.executable, "-m", "zenrec"]


def children(pid: int) -> list[int]:
    """Child processes of ``pid`` (from ``/proc/PID/task/*/children``)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "children") as f:
            out += [int(x) for x in f.read().split()]
    return sorted(out)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def smaps(pid: int) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        out[key] = int(value.split()[0])
    return out


def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def model_info_pids(url: str) -> set[int]:
    """The pids of the live workers, from ``zenrec_model_info{pid=...}`` in ``/metrics``."""
    text = httpx.get(url + "/metrics", timeout=10).text
    return {
        int(line.split('pid="')[1].split('"')[0])
        for line in text.splitlines()
        if line.startswith("zenrec_model_info{")
    }


def recommend_on_new_connections(url: str, n: int) -> None:
    def one(u: int) -> int:
        # a new connection per request, four at once: the kernel hands them to either worker
        return httpx.post(
            url + "/v1/recommend", json={"user_id": u, "k": 3}, timeout=10
        ).status_code

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(one, range(1, n + 1))) == {200}


def test_forked_workers_share_the_parent_and_are_supervised(bundles, tmp_path):
    logdir = tmp_path / "log"

    def argv(port: int) -> list[str]:
        return [
            *ZENREC,
            "serve",
            str(bundles["ease"]),
            "--port",
            str(port),
            "--workers",
            "2",
            "--request-log",
            str(logdir),
            "--request-log-salt-env",
            "ZENREC_TEST_SALT",
        ]

    with server_process(argv, ready="/readyz", timeout=90, env={"ZENREC_TEST_SALT": "s"}) as srv:
        parent = srv.proc.pid
        first = wait_for(lambda: len(children(parent)) == 2 and children(parent), 30, "2 workers")
        wait_for(lambda: model_info_pids(srv.url) == set(first), 30, "both workers ready")
        own = Path(f"/proc/{parent}/cmdline").read_bytes()
        for pid in first:
            # forked from the loaded parent (same command line), not a spawned interpreter
            # (whose command line is `python -c "from multiprocessing.spawn import ..."`)
            assert Path(f"/proc/{pid}/cmdline").read_bytes() == own
            # and most of its memory is the parent's pages, shared: a forked worker has about
            # 15% of its RSS private (ML-100K EASE), a spawned one that imported and loaded
            # everything itself about 60%
            m = smaps(pid)
            private = m["Private_Clean"] + m["Private_Dirty"]
            assert private < 0.35 * m["Rss"], m
        recommend_on_new_connections(srv.url, 120)

        victim = first[0]
        os.kill(victim, signal.SIGKILL)
        now = wait_for(
            lambda: (c := children(parent)) and len(c) == 2 and victim not in c and c,
            30,
            "a replacement worker",
        )
        (new,) = set(now) - set(first)
        # the replacement serves (forked again from the parent: no reload), and the killed
        # worker's samples left /metrics' live gauges
        wait_for(lambda: model_info_pids(srv.url) == set(now), 30, "the replacement ready")
        assert Path(f"/proc/{new}/cmdline").read_bytes() == own
        recommend_on_new_connections(srv.url, 40)
    assert srv.returncode == 0, srv.stderr[-2000:]
    # SIGTERM to the parent stopped every worker; nothing is left behind
    assert not any(alive(p) for p in [*first, new])
    assert '"message": "worker died; restarting it"' in srv.stderr
    # both original workers answered requests (one request-log file per process)
    answered = {
        int(f.stem.split("-")[1]) for f in logdir.glob("requests-*.jsonl") if f.read_text().strip()
    }
    assert set(first) <= answered, (first, answered)


def test_killed_parent_leaves_no_orphans(bundles):
    def argv(port: int) -> list[str]:
        return [*ZENREC, "serve", str(bundles["ease"]), "--port", str(port), "--workers", "2"]

    with server_process(argv, ready="/readyz", timeout=90) as srv:
        parent = srv.proc.pid
        kids = wait_for(lambda: len(children(parent)) == 2 and children(parent), 30, "workers")
        srv.proc.kill()  # no chance to forward anything: the kernel tells the workers
        try:
            wait_for(lambda: not any(alive(p) for p in kids), 30, "the orphaned workers to exit")
        finally:  # orphans would hold the stderr pipe open (and the test) forever
            for p in kids:
                if alive(p):
                    os.kill(p, signal.SIGKILL)


def test_worker_startup_failure_stops_the_server(bundles, tmp_path):
    """A worker whose app cannot start (its request-log directory is a file) is not restarted
    in a loop: the server exits non-zero."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    r = subprocess.run(
        [
            *ZENREC,
            "serve",
            str(bundles["ease"]),
            "--port",
            "0",
            "--workers",
            "2",
            "--request-log",
            str(not_a_dir),
            "--request-log-salt-env",
            "ZENREC_TEST_SALT",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ZENREC_TEST_SALT": "s"},
    )
    assert r.returncode == 1, r.stderr[-2000:]
    assert '"message": "worker failed to start; stopping"' in r.stderr
    assert '"message": "worker died; restarting it"' not in r.stderr


def test_without_fork_the_workers_are_spawned(bundles):
    """Where fork is not supported (macOS, Windows), `--workers N` falls back to uvicorn's
    spawned workers, each loading the bundle itself; they serve and stop the same way."""
    code = (
        "import sys, zenrec.serving.workers as w; w.fork_supported = lambda: False; "
        "from zenrec.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )

    def argv(port: int) -> list[str]:
        return [sys.executable, "-c", code, "serve", str(bundles["ease"]), "--port", str(port)] + [
            "--workers",
            "2",
        ]

    with server_process(argv, ready="/readyz", timeout=120) as srv:
        wait_for(lambda: len(model_info_pids(srv.url)) == 2, 60, "both workers ready")
        spawned = [
            p
            for p in children(srv.proc.pid)
            if b"multiprocessing" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        assert len(spawned) >= 2  # the two workers (and multiprocessing's resource tracker)
        recommend_on_new_connections(srv.url, 20)
        text = httpx.get(srv.url + "/metrics", timeout=10).text
        assert 'zenrec_requests_total{endpoint="/v1/recommend",status="200"} 20.0' in text
    assert srv.returncode == 0, srv.stderr[-2000:]


@pytest.fixture(scope="module")
def bprmf_bundle(tmp_path_factory, ml100k) -> Path:
    from zenrec.models import create_model

    # 64 factors: an embedding lookup of all 1,682 items is large enough for torch to run it
    # in parallel (above its grain of 32,768 elements)
    model = create_model("bprmf", factors=64, epochs=1, progress=False, seed=0).fit(ml100k)
    return model.save(tmp_path_factory.mktemp("bprmf") / "bundle")


def test_forked_torch_workers_with_two_threads_answer(bprmf_bundle):
    """A torch model served by forked workers with two threads each: an OpenMP team started in
    the parent would hang every worker's first parallel torch op (libgomp is not fork-safe), so
    the parent loads with one thread and each worker sizes its own pools after the fork."""

    def argv(port: int) -> list[str]:
        return [*ZENREC, "serve", str(bprmf_bundle), "--port", str(port), "--workers", "2"] + [
            "--threads",
            "2",
        ]

    with server_process(argv, ready="/readyz", timeout=120) as srv:
        kids = wait_for(
            lambda: len(children(srv.proc.pid)) == 2 and children(srv.proc.pid), 30, "workers"
        )
        wait_for(lambda: model_info_pids(srv.url) == set(kids), 30, "both workers ready")
        recommend_on_new_connections(srv.url, 40)  # known users: BPR-MF's torch scorer
    assert srv.returncode == 0, srv.stderr[-2000:]
    assert '"message": "killing worker"' not in srv.stderr
