"""The benchmark scripts are not imported by the tests, so a moved module would rot them
silently: resolve every ``zenrec`` name they import."""

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
# the repository's scripts only: not the peers' virtual environments (benchmarks/.venv-*)
SCRIPTS = sorted(
    p
    for p in BENCH.rglob("*.py")
    if not any(part.startswith(".") for part in p.relative_to(BENCH).parts)
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(BENCH)))
def test_benchmark_imports_resolve(script):
    tree = ast.parse(script.read_text(), filename=str(script))
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zenrec"):
            try:
                mod = importlib.import_module(node.module)
            except ImportError as e:
                missing.append(f"line {node.lineno}: {node.module} ({e})")
                continue
            for alias in node.names:
                if alias.name != "*" and not hasattr(mod, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        missing.append(f"line {node.lineno}: {node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("zenrec"):
                    try:
                        importlib.import_module(alias.name)
                    except ImportError as e:
                        missing.append(f"line {node.lineno}: {alias.name} ({e})")
    assert not missing, f"{script.name}: " + "; ".join(missing)


SUITE = sorted(
    p
    for p in BENCH.rglob("*")
    if p.is_file()
    and p.name != "README.md"
    and not any(part.startswith(".") or part == "out" for part in p.relative_to(BENCH).parts)
)


def test_readme_lists_every_script_and_config():
    readme = (BENCH / "README.md").read_text()
    missing = [
        str(p.relative_to(BENCH)) for p in SUITE if f"`{p.relative_to(BENCH)}`" not in readme
    ]
    assert not missing, f"benchmarks/README.md does not list: {missing}"


def test_scripts_hold_no_host_locks_or_retry_loops():
    # the suite runs its sections one at a time itself (make bench*): no lock files, no loops
    # that restart a command until a time limit lets it finish
    bad = [
        f"{p.relative_to(BENCH)}: {needle}"
        for p in SUITE
        for needle in ("flock", "zenrec-bench.lock", "timeout 590")
        if needle in p.read_text(encoding="utf-8")
    ]
    assert not bad, bad
