"""The rule "no private names imported across packages", checked on every module of src/zenrec.

A name or module whose name starts with ``_`` is private to the top-level subpackage that
defines it (``zenrec.models``, ``zenrec.evaluation``...): other modules of that subpackage may
import it, other subpackages may not (give it a public name, or move it to a shared helper).
The top-level helper modules (``zenrec._io``, ``zenrec._errors``, ``zenrec._validation``...) are
shared by design: any module may import their public names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Known violations, each with the reason it stands; empty: the rule holds everywhere.
ALLOWED: set[str] = set()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _owner(module: str) -> str:
    """The top-level subpackage (or top-level module) a dotted zenrec module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """``"A imports B._x"`` for each private name or module that ``module`` imports from
    another top-level subpackage of zenrec."""
    owner = _owner(module)
    package = module if is_package else module.rpartition(".")[0]
    found = []

    def check(target: str, names: list[str]) -> None:
        parts = target.split(".")
        if parts[0] != "zenrec" or len(parts) < 2 or parts[1] == owner:
            return
        # the top-level helpers (zenrec._io...) are shared modules; their _names are private
        inner = parts[2:] if not _private(parts[1]) else []
        for name in names:
            if any(_private(p) for p in inner) or _private(name):
                found.append(f"{module} imports {target}.{name}")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([target] if target else [])])
            check(target, [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                head, _, last = alias.name.rpartition(".")
                check(head, [last])
    return found


def test_no_private_names_are_imported_across_packages() -> None:
    found = []
    for path in sorted((SRC / "zenrec").rglob("*.py")):
        found += violations(
            _module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py"
        )
    new = sorted(set(found) - ALLOWED)
    assert not new, "private names imported across packages (make them public):\n" + "\n".join(new)
    stale = sorted(ALLOWED - set(found))
    assert not stale, "fixed, so remove from ALLOWED:\n" + "\n".join(stale)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "zenrec.models.base",
            "def f():\n    from zenrec.evaluation.evaluator import _frame_backend\n",
            ["zenrec.models.base imports zenrec.evaluation.evaluator._frame_backend"],
        ),
        (
            "zenrec.cli.x",
            "from zenrec.models.neural import _helpers\nimport zenrec.models._linalg\n",
            [
                "zenrec.cli.x imports zenrec.models.neural._helpers",
                "zenrec.cli.x imports zenrec.models._linalg",
            ],
        ),
        (
            "zenrec.cli.x",
            "from zenrec.models._linalg import cosine_similarities\n"
            "from zenrec._io import _atomic\n",
            [
                "zenrec.cli.x imports zenrec.models._linalg.cosine_similarities",
                "zenrec.cli.x imports zenrec._io._atomic",
            ],
        ),
        (
            "zenrec.cli.x",
            "from ..models.base import _py\n",
            ["zenrec.cli.x imports zenrec.models.base._py"],
        ),
        # allowed: within one subpackage, public names of shared helpers, dunders, other libraries
        ("zenrec.models.neural.mf", "from zenrec.models._linalg import implicit_fold_in\n", []),
        ("zenrec.models.classic.knn", "from ..base import _py\n", []),
        ("zenrec.cli.x", "from zenrec._io import atomic_dir\nfrom zenrec import __version__\n", []),
        ("zenrec.cli.x", "from numpy import _core\nimport zenrec.models.base\n", []),
    ],
)
def test_the_rule_flags_cross_package_private_imports_only(
    module: str, source: str, expected: list[str]
) -> None:
    assert violations(module, source) == expected
