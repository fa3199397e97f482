"""The CI rule of tests/conftest.py.

With CI=true, a neural test skipped for want of torch fails the run.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest_without_torch(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    # a module named torch that fails to import, as on a machine without torch
    (tmp_path / "torch.py").write_text(
        "raise ModuleNotFoundError("
        '"No module named \'torch\' (blocked by the test)", name="torch")\n'
    )
    env = {
        **os.environ,
        "CI": ci,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/neural/test_neural_trainer.py",
            "tests/test_package.py::test_error_hierarchy",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_neural_skip_fails_the_run_in_ci(tmp_path):
    r = _pytest_without_torch(tmp_path, "true")
    assert r.returncode == 1, r.stdout[-2000:]
    assert "neural tests skipped in CI (CI=true): failing the run" in r.stdout
    assert "tests/neural/test_neural_trainer.py: Skipped: could not import 'torch'" in r.stdout


def test_neural_skip_is_a_plain_skip_outside_ci(tmp_path):
    r = _pytest_without_torch(tmp_path, "")
    assert r.returncode == 0, r.stdout[-2000:]
    assert "1 passed, 1 skipped" in r.stdout and "failing the run" not in r.stdout
