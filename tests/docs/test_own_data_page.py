"""docs/own-data.md, run as a reader would run it: every block, in order, on ml-latest-small.

``python`` blocks run in one namespace, ``bash`` blocks run each ``zenrec`` command as a
subprocess, and a ``toml`` block whose first line is ``# NAME.toml`` is saved as NAME.toml,
all in one working directory. A ``text`` block is what the nearest runnable block above it
prints: each of its lines must appear, in order, in that output (standard output, then
standard error or the warnings raised), words equal, numbers with a decimal point within
``TOLERANCE``, whole numbers exact, line breaks ignored (the command line wraps at 100
columns). Set ``ZENREC_DOC_TRANSCRIPT=FILE`` to write every block with its output.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from datahelp import DATA, data_dir

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "own-data.md"

TOLERANCE = 0.0005
"""Largest difference allowed between a shown and a printed decimal number. Every figure the
page shows came out identical with one thread (the test suite's setting) and with two
(measured); 0.0005, a few units of the fourth decimal, leaves room for another CPU's float
summation order, while any change of behaviour the page describes (who is cold, what they
are served, what is filtered) moves its figures by far more."""

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", flags=re.S | re.M)
NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
TOKEN = re.compile(rf"{NUMBER}|[^\s\d]+")


def page_blocks(text: str | None = None) -> list[tuple[str, str]]:
    """(language, body) of every fenced block of the page, in order."""
    return FENCE.findall(PAGE.read_text() if text is None else text)


@dataclass
class Ran:
    """One runnable block and what it printed."""

    lang: str
    code: str
    out: str
    warned: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # the text blocks that follow it

    @property
    def everything(self) -> str:
        return self.out + "\n" + "\n".join(self.warned)


def _commands(body: str) -> list[str]:
    lines = body.replace("\\\n", " ").splitlines()
    return [x.strip() for x in lines if x.strip() and not x.strip().startswith("#")]


def run_page(workdir: Path) -> tuple[list[Ran], dict[str, Any]]:
    ns: dict[str, Any] = {"__name__": "__docs__"}
    import zenrec

    # the commands import the zenrec this test imports, from any working directory
    src = str(Path(zenrec.__file__).resolve().parents[1])
    path = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "ZENREC_DATA": str(DATA),
        "COLUMNS": "100",
        "ZENREC_THREADS": "1",
        "PYTHONIOENCODING": "utf-8",  # the tables' box characters, whatever the locale
    }
    ran: list[Ran] = []
    old = Path.cwd()
    os.chdir(workdir)
    try:
        for j, (lang, body) in enumerate(page_blocks()):
            if lang == "text":
                assert ran, f"block {j + 1}: an output block before any code"
                ran[-1].shown.append(body)
            elif lang == "toml":
                first = body.splitlines()[0]
                assert re.fullmatch(r"# [\w.-]+\.toml", first), f"block {j + 1}: {first!r}"
                Path(first[2:]).write_text(body)
            elif lang == "python":
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf), warnings.catch_warnings(record=True) as w:
                    warnings.simplefilter("always")
                    exec(compile(body, f"{PAGE.name} block {j + 1}", "exec"), ns)
                warned = [f"{x.category.__name__}: {x.message}" for x in w]
                ran.append(Ran(lang, body, buf.getvalue(), warned))
            elif lang == "bash":
                out = []
                for cmd in _commands(body):
                    args = shlex.split(cmd)
                    assert args[0] == "zenrec", f"block {j + 1}: only zenrec commands: {cmd}"
                    r = subprocess.run(
                        [sys.executable, "-m", "zenrec", *args[1:]],
                        capture_output=True,
                        text=True,
                        env=env,
                        timeout=300,
                    )
                    assert r.returncode == 0, f"{cmd}\n{r.stderr}"
                    out.append(r.stdout + r.stderr)
                ran.append(Ran(lang, body, "\n".join(out)))
            else:
                raise AssertionError(f"block {j + 1}: no rule to run a {lang!r} block")
    finally:
        os.chdir(old)
    return ran, ns


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def same_token(shown: str, printed: str) -> bool:
    if re.fullmatch(NUMBER, shown) and re.fullmatch(NUMBER, printed):
        a, b = shown.replace(",", ""), printed.replace(",", "")
        if "." in a or "." in b:
            return abs(float(a) - float(b)) <= TOLERANCE
        return a == b
    return shown == printed


def find_lines(shown: str, printed: str) -> str | None:
    """The first line of ``shown`` not found (in order) in ``printed``, or None."""
    have = tokens(printed)
    at = 0
    for line in shown.splitlines():
        want = tokens(line)
        if not want:
            continue
        for start in range(at, len(have) - len(want) + 1):
            if all(same_token(w, h) for w, h in zip(want, have[start:], strict=False)):
                at = start + len(want)
                break
        else:
            return line
    return None


def test_the_line_matcher_is_strict():
    out = "ndcg@10: warm users 0.0783, cold users 0.3307 | cold users 62 of\n80; unseen 1,200"
    assert find_lines("cold users 0.3310 | cold users 62 of 80", out) is None
    assert find_lines("warm users 0.0783\nunseen 1,200", out) is None
    assert find_lines("cold users 0.3330", out) == "cold users 0.3330"
    assert find_lines("cold users 63 of 80", out) == "cold users 63 of 80"
    assert find_lines("unseen 1,200\nwarm users 0.0783", out) == "warm users 0.0783"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    data_dir("ml-latest-small")
    workdir = tmp_path_factory.mktemp("own-data")
    ran, ns = run_page(workdir)
    transcript = os.environ.get("ZENREC_DOC_TRANSCRIPT")
    if transcript:  # for writing the page: the code as run with its output
        Path(transcript).write_text(
            "\n\n".join(
                f">>> {r.lang} block\n{r.code}--- output\n{r.out}"
                + "".join(f"--- warning\n{x}\n" for x in r.warned)
                for r in ran
            )
        )
    return ran, ns, workdir


def test_every_shown_output_is_printed(page):
    ran, _, _ = page
    assert sum(len(r.shown) for r in ran) >= 10
    for r in ran:
        for shown in r.shown:
            missing = find_lines(shown, r.everything)
            assert missing is None, f"shown {missing!r}\nnot printed by\n{r.code}\n{r.everything}"


def test_cold_users_are_reported_and_served_popularity(page):
    ran, ns, _ = page
    late = ns["late"]
    cov = late.test_coverage
    assert 0 < cov["cold_users"] < cov["test_users"]
    assert 0 < cov["unreachable_interactions"] < cov["test_interactions"]
    assert {"ndcg@10", "recall@10"} <= set(late.metrics_warm) & set(late.metrics_cold)
    # the one warning the page raises on purpose; section 3 and 5 silence it
    warned = [x for r in ran for x in r.warned]
    assert len(warned) == 1 and warned[0].startswith("ColdStartWarning: evaluate_ranking: 62 of 80")
    recs = ns["recs"]
    assert recs.fallback.tolist() == [True]
    assert recs.fallback_kind == ["popularity"]


def test_the_leaderboards(page):
    _, ns, _ = page
    board, per_user = ns["board"], ns["per_user"]
    assert list(board["model"]) != list(per_user["model"])  # the two splits rank differently
    for frame in (board, per_user):
        assert sorted(frame["model"]) == ["ease", "ials", "itemknn", "pop"]
        assert {"ndcg@10 (warm)", "ndcg@10 (cold)", "cold_share", "fit_seconds"} <= set(
            frame.columns
        )
    assert (board["cold_share"] > 0.5).all() and (per_user["cold_share"] == 0).all()
    # every model serves cold users the same popularity list, which suits this log's new users
    # (their first ratings are the popular films); rows of zeros would rank items by index
    assert board["ndcg@10 (cold)"].nunique() == 1
    assert (board["ndcg@10 (cold)"] > 2 * board["ndcg@10 (warm)"]).all()
    assert per_user["ndcg@10 (cold)"].isna().all()
    # the splits' table: only the global cutoff keeps the future out of training
    assert "temporal" in ns["rows"][0]["split"]
    future = {row["split"]: row["future"] for row in ns["rows"]}
    assert future["temporal"] == 0 and future["temporal-user"] > 0.2


def test_cli_equals_python(page):
    _, ns, workdir = page
    rec = json.loads((workdir / "runs" / "ease-temporal.json").read_text())
    ease = ns["board"].set_index("model").loc["ease"]
    for key, value in rec["metrics"].items():
        if key in ease.index:
            assert value == pytest.approx(ease[key], abs=1e-9), key
    assert rec["metrics_warm"]["ndcg@10"] == pytest.approx(ease["ndcg@10 (warm)"], abs=1e-9)
    cov = rec["test_coverage"]
    assert cov["cold_users"] / cov["test_users"] == pytest.approx(ease["cold_share"])
    tuned = json.loads((workdir / "runs" / "tune-ials-temporal" / "tune.json").read_text())
    assert tuned["protocol"]["name"] == "temporal" and tuned["n_finished"] == 3
    assert tuned["validation"].startswith("the protocol's validation part (global time split")


@pytest.mark.parametrize("block", range(len(page_blocks())))
def test_every_block_is_short(block):
    lang, body = page_blocks()[block]
    assert len(body.splitlines()) <= 30, (lang, body[:80])


def test_page_is_linked():
    assert "own-data.md" in (ROOT / "mkdocs.yml").read_text()
    assert "own-data.md" in (ROOT / "docs" / "index.md").read_text()
    readme = (ROOT / "README.md").read_text()
    python_section = readme.split("## In Python", 1)[1].split("\n## ", 1)[0]
    assert "docs/own-data.md" in python_section
