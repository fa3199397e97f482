"""docs/python-api.md, run as a notebook would run it: every ```python block, in order, in one
namespace, on ML-100K. A block that raises fails the test; the printed output is checked
against what the page promises."""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from pathlib import Path

import pytest

from datahelp import data_dir

PAGE = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def run_page(workdir: Path) -> list[tuple[str, str, list[str]]]:
    """Run every python block of the page in ``workdir``: (code, printed output, warnings)."""
    ns: dict[str, object] = {"__name__": "__docs__"}
    out: list[tuple[str, str, list[str]]] = []
    old = Path.cwd()
    os.chdir(workdir)
    try:
        for j, code in enumerate(python_blocks(PAGE.read_text())):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                exec(compile(code, f"{PAGE.name} block {j + 1}", "exec"), ns)
            out.append(
                (code, buf.getvalue(), [f"{w.category.__name__}: {w.message}" for w in caught])
            )
    finally:
        os.chdir(old)
    return out


def test_page_has_the_whole_workflow():
    blocks = python_blocks(PAGE.read_text())
    joined = "\n".join(blocks)
    for call in (
        "load_dataset(",
        "read_interactions(",
        "with_item_features(",
        "user_stratified_split(",
        ".fit(",
        "zenrec.evaluate(",
        "exclude=()",
        "run_protocol(",
        "metrics_warm",
        "zenrec.compare(",
        ".to_frame(",
        "recommend(",
        "to_frame(titles=True)",
        ".save(",
        "load_model(",
        "zenrec.tune(",
        "zenrec.benchmark(",
    ):
        assert call in joined, call


def test_python_api_page_runs(tmp_path):
    data_dir("ml-100k")
    results = run_page(tmp_path)
    text = "\n".join(o for _, o, _ in results)
    transcript = os.environ.get("ZENREC_DOC_TRANSCRIPT")
    if transcript:  # for reports: the code as run with its output
        Path(transcript).write_text(
            "\n\n".join(
                f">>> block {j + 1}\n{c}--- output\n{o}" + "".join(f"--- warning\n{x}\n" for x in w)
                for j, (c, o, w) in enumerate(results)
            )
        )
    # the only warnings are the ones the page shows on purpose: D4 has no row, Z9 is not in the
    # log; most test users of the temporal split have no training interaction
    warned = [(j, x) for j, (_, _, w) in enumerate(results) for x in w]
    assert len(warned) == 2 and warned[0][1].startswith(
        "FeatureCoverageWarning: DataFrame: item features"
    ), warned
    assert warned[1][1].startswith(
        "ColdStartWarning: evaluate_ranking: 97 of 166 test users (58.4%) have no training"
    ), warned
    assert "'test_users': 166, 'cold_users': 97" in "\n".join(o for _, o, _ in results)
    assert "e.g. ['D4']" in warned[0][1] and "e.g. ['Z9']" in warned[0][1]
    assert "Dataset(name='ml-100k', interactions=100000, users=943, items=1682" in text
    assert (
        "DataFrame row 1 (0-based): column 'rating' (rating) is 'five', expected a number" in text
    )
    assert "cover 3 of 4 items; 1 items have no row" in text
    assert re.search(r"NDCG@10 = 0\.471\d", text)  # EASE, msrec split, masked
    assert re.search(r"unmasked NDCG@10 = 0\.08\d\d", text)  # the trap: seen items in the top-10
    assert "When Harry Met Sally... (1989)" in text  # titles beside the items
    assert (tmp_path / "runs" / "ease-ml100k" / "bundle.json").exists()
    assert (tmp_path / "runs" / "doc-bench" / "summary.csv").exists()


@pytest.mark.parametrize("block", range(len(python_blocks(PAGE.read_text()))))
def test_every_block_is_short(block):
    assert len(python_blocks(PAGE.read_text())[block].splitlines()) <= 25


def test_readme_python_block_runs(tmp_path):
    data_dir("ml-100k")
    readme = (PAGE.parents[1] / "README.md").read_text()
    blocks = python_blocks(readme)
    assert len(blocks) == 1 and "docs/python-api.md" in readme
    buf = io.StringIO()
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(buf), warnings.catch_warnings():
            warnings.simplefilter("error")
            exec(compile(blocks[0], "README.md", "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(old)
    assert buf.getvalue().startswith("0.4745")  # EASE (l2 "auto"), msrec split, masked
    assert (tmp_path / "runs" / "ease" / "bundle.json").exists()
