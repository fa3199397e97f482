"""docs/architecture.md names only modules that exist: every ``zenrec.x.y`` name, every
``src/zenrec/x/y.py`` or backticked ``x/y.py`` path, and every file and folder of its layout block.
Names are resolved against src/ (no import), so a module that moved or was renamed fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PAGE = ROOT / "docs" / "architecture.md"


def _module_file(dotted: str) -> Path | None:
    """The source file of module or package ``dotted`` under src/, or None."""
    base = SRC.joinpath(*dotted.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def dotted_names(text: str) -> list[str]:
    return sorted(set(re.findall(r"\bzenrec(?:\.[A-Za-z_][A-Za-z0-9_]*)+", text)))


def path_names(text: str) -> list[str]:
    """``src/zenrec/...`` paths anywhere, and backticked relative ``x/y.py`` paths, as paths
    relative to src/ (``./x/y.py`` when ``x`` is a folder of the repository root, e.g. tests)."""
    found = {p.removeprefix("src/") for p in re.findall(r"\bsrc/zenrec/[\w/]+\.py\b", text)}
    for p in re.findall(r"`([\w]+(?:/[\w]+)*/[\w]+\.py)`", text):
        if p.startswith("zenrec/"):
            found.add(p)
        elif (ROOT / p.split("/")[0]).is_dir():
            found.add(f"./{p}")
        else:
            found.add(f"zenrec/{p}")
    return sorted(found)


def layout_names(text: str) -> list[str]:
    """Files and folders of the ``## Layout`` block, as paths relative to src/."""
    block = re.search(r"^## Layout\n+```\n(.*?)^```", text, re.S | re.M)
    assert block, "docs/architecture.md has no ## Layout code block"
    lines = block.group(1).splitlines()
    assert lines[0].strip() == "src/zenrec/", lines[0]
    stack: list[tuple[int, str]] = [(0, "zenrec/")]
    out: list[str] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        tokens = [t.strip(",;:()") for t in line.split()]
        if tokens[0].endswith("/"):
            while stack[-1][0] >= indent:
                stack.pop()
            here = stack[-1][1] + tokens[0]
            stack.append((indent, here))
            out.append(here)
            tokens = tokens[1:]
        else:
            while stack[-1][0] >= indent and len(stack) > 1:
                stack.pop()
            here = stack[-1][1]
        for t in tokens:
            if re.fullmatch(r"[\w]+\.py|[\w]+/|[\w]+/\*\.\w+", t):
                out.append(here + t)
    return out


def _exists(name: str) -> bool:
    if name.startswith("zenrec."):  # a module, or a module and one attribute defined in it
        parts = name.split(".")
        for n in range(len(parts), 0, -1):
            f = _module_file(".".join(parts[:n]))
            if f is not None:
                rest = parts[n:]
                return not rest or (
                    len(rest) == 1 and re.search(rf"\b{rest[0]}\b", f.read_text()) is not None
                )
        return False
    if name.startswith("./"):
        return (ROOT / name).is_file()
    if "*" in name:
        return any(SRC.glob(name))
    return (SRC / name).is_dir() if name.endswith("/") else (SRC / name).is_file()


def _names() -> list[str]:
    text = PAGE.read_text()
    return sorted(set(dotted_names(text)) | set(path_names(text)) | set(layout_names(text)))


def _params() -> list[str]:
    return _names()


def test_the_page_names_modules_of_every_kind():
    # the extraction itself works: each kind of reference is found on the page
    text = PAGE.read_text()
    assert "zenrec.evaluation.topk.top_k_indices" in dotted_names(text)
    assert "zenrec/cli/main.py" in path_names(text)
    layout = layout_names(text)
    assert {"zenrec/models/classic/ease.py", "zenrec/tuning/spaces/*.toml"} <= set(layout)
    assert "zenrec/models/neural/trainer.py" in layout and "zenrec/serving/routers/" in layout
    assert len(_names()) >= 80


@pytest.mark.parametrize("name", _params())
def test_architecture_names_an_existing_module(name):
    assert _exists(name), f"docs/architecture.md names {name}, which is not in src/"


def test_a_missing_module_is_caught():
    assert not _exists("zenrec.models.neural.models_that_never_existed")
    assert not _exists("zenrec.evaluation.topk.no_such_function")
    assert not _exists("zenrec/serving/no_such_module.py")
    assert _exists("zenrec.evaluation.topk.top_k_indices")
