"""Markdown tables of benchmark summaries: mean [95% CI] over seeds and tests vs the baseline."""

from __future__ import annotations

import math
from typing import Any

from zenrec.runs.peers import PEER_LIBRARIES

__all__ = [
    "ZERO_WIDTH",
    "fmt_ci",
    "fmt_seconds",
    "library_cell",
    "markdown_table",
    "seed_notes",
    "summary_markdown",
    "warm_cells",
    "warm_header",
]

ZERO_WIDTH = "(zero width)"
"""The mark of an interval whose seeds all gave the same value."""


def zero_width(lo: Any, hi: Any) -> bool:
    """Whether an interval is a point (every seed gave the same value)."""
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return False
    return math.isclose(lo, hi, rel_tol=1e-12, abs_tol=1e-12)


def fmt_ci(mean: float, lo: float, hi: float, digits: int = 4) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if lo is None or (isinstance(lo, float) and math.isnan(lo)):
        return f"{mean:.{digits}f}"
    mark = f" {ZERO_WIDTH}" if zero_width(lo, hi) else ""
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]{mark}"


def seed_notes(grp: Any, metrics: list[str]) -> str | None:
    """A sentence under a (dataset, protocol) table: what the seeds varied, and what a
    zero-width interval means; ``None`` when there is nothing to say."""
    notes = (
        sorted({n for n in grp["seed_note"].to_list() if n}) if "seed_note" in grp.columns else []
    )
    points = any(
        zero_width(r.get(f"{m}_ci_low"), r.get(f"{m}_ci_high"))
        for r in grp.iter_rows(named=True)
        for m in metrics
    )
    out = [n[0].upper() + n[1:] + "." for n in notes]
    if points:
        out.append(
            f"An interval marked {ZERO_WIDTH} is a point: every seed gave the same value, so it "
            "measures no variation of the split or the data, only that the model is deterministic."
        )
    return " ".join(out) or None


def fmt_seconds(s: float | None) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    return f"{s:.2f}"


def library_cell(row: dict[str, Any]) -> str:
    """``zenrec``, or the peer library with its version; a peer that did not run says why."""
    lib = row.get("library") or "zenrec"
    if lib == "zenrec":
        return lib + (f" {row['library_version']}" if row.get("library_version") else "")
    version = row.get("library_version")
    name = f"{lib} {version}" if version else lib
    if not row.get("n_seeds"):
        note = str(row.get("note") or "did not run")
        for state in ("not configured", "not installed"):
            if f" is {state}:" in note or note.startswith(state):
                var = PEER_LIBRARIES[lib].env_var if lib in PEER_LIBRARIES else "its interpreter"
                return f"{lib} ({state}: set {var})"
        return f"{name} (not run: {note[:120]})"
    return f"{name} (peer)"


def _has_cold(grp: Any, main: str | None) -> bool:
    """Whether some row of a summary block has cold test users and a warm figure for ``main``."""
    if main is None or "cold_share" not in grp.columns or f"{main} (warm)" not in grp.columns:
        return False
    return bool((grp["cold_share"].fill_null(0.0).fill_nan(0.0) > 0).any())


def warm_header(grp: Any, main: str | None) -> list[str]:
    """Header cells of the warm figure beside the main metric, when cold users exist."""
    return [f"{main} warm users", "cold users"] if _has_cold(grp, main) else []


def warm_cells(grp: Any, main: str | None, row: dict[str, Any]) -> list[str]:
    """The main metric over warm test users and the cold users' share, for one summary row."""
    if not _has_cold(grp, main):
        return []
    share = row.get("cold_share")
    cold = "-" if share is None or math.isnan(share) else f"{share:.1%}"
    return [fmt_ci(row.get(f"{main} (warm)"), None, None), cold]  # type: ignore[arg-type]


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"


def summary_markdown(
    summary: Any,
    significance: Any = None,
    baseline: str | None = None,
    metrics: list[str] | None = None,
) -> str:
    """One table per (dataset, protocol): mean [95% CI] of each metric, fit seconds, tests."""
    import polars as pl

    if summary is None or summary.height == 0:
        return "(no finished cells)"
    blocks = []
    for (dname, pname), grp in summary.group_by(["dataset", "protocol"], maintain_order=True):
        ms = metrics or [
            c.removesuffix("_ci_low")
            for c in grp.columns
            if c.endswith("_ci_low")
            and c.split("@")[0] not in ("coverage", "avg_popularity", "gini", "novelty")
        ]
        main = ms[0] if ms else None
        header = [
            "model",
            "library",
            "tuned",
            "seeds",
            *[f"{m} (95% CI)" for m in ms],
            *warm_header(grp, main),
            "fit s",
        ]
        if significance is not None and main is not None:
            header += [
                f"Δ{main} vs {baseline}",
                "p Wilcoxon (Holm)",
                "p t-test (Holm)",
                "significant",
            ]
        rows = []
        for r in grp.iter_rows(named=True):
            row = [
                r["label"],
                library_cell(r),
                "yes" if r["tuned"] else "no",
                r["n_seeds"],
                *[fmt_ci(r.get(m), r.get(f"{m}_ci_low"), r.get(f"{m}_ci_high")) for m in ms],
                *warm_cells(grp, main, r),
                fmt_seconds(r.get("fit_seconds")),
            ]
            if (
                significance is not None
                and main is not None
                and (r.get("library") or "zenrec") != "zenrec"
            ):
                row += ["n/a (peer: no per-user values)", "-", "-", "-"]
            elif significance is not None and main is not None:
                s = significance.filter(
                    (pl.col("dataset") == dname)
                    & (pl.col("protocol") == pname)
                    & (pl.col("metric") == main)
                    & (pl.col("model") == r["label"])
                )
                if s.height:
                    x = s.row(0, named=True)
                    row += [
                        f"{x['mean_diff']:+.4f}",
                        _p(x["wilcoxon_p_holm"]),
                        _p(x["ttest_p_holm"]),
                        "yes" if x["significant"] else "no",
                    ]
                else:
                    row += ["(baseline)" if r["label"] == baseline else "-", "-", "-", "-"]
            rows.append(row)
        blocks.append(f"**{dname}, protocol {pname}**\n\n" + markdown_table(header, rows))
        if warm_header(grp, main):
            blocks.append(
                f"Some test users have no training interaction (cold users): '{main} warm users' "
                "is the main metric over the others; the main column covers every test user."
            )
        note = seed_notes(grp, ms)
        if note:
            blocks.append(note)
        if "library" in grp.columns and (grp["library"].fill_null("zenrec") != "zenrec").any():
            blocks.append(
                "Peer rows ran in their own environment on zenrec's split of the same cell; they "
                "have no per-user values and are left out of the significance tests."
            )
    return "\n\n".join(blocks)
