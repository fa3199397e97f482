"""Helpers shared by the benchmark scripts: medians, machine facts, atomic result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ZENREC_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "docs" / "results"


def machine() -> dict[str, Any]:
    from threadpoolctl import threadpool_info

    blas = [f"{i.get('internal_api')} {i.get('num_threads')} threads" for i in threadpool_info()]
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "blas": sorted(set(blas)),
    }


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def write_json(path: Path, payload: Any) -> None:
    from zenrec._io import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=2, default=str))


def write_text(path: Path, text: str) -> None:
    from zenrec._io import atomic_write_text

    atomic_write_text(path, text)


def run_json(
    cmd: list[str], env: dict[str, str] | None = None, timeout: int = 3600
) -> dict[str, Any]:
    """Run a peer script that prints one JSON record on its last stdout line."""
    res = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=ROOT,
    )
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def now_utc() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def page_head(question: str, command: str, facts: dict[str, Any], prose: str = "") -> list[str]:
    """The top of a generated results page: the question it answers as the title, then the
    command and the date of the run beside the machine, then at most a few lines of prose."""
    blas = ", ".join(facts.get("blas", []))
    lines = [
        f"# {question}",
        "",
        f"Command: `{command}`  ",
        f"Measured: {now_utc()}; {facts.get('cpu_count')} cores, {facts.get('platform')}, "
        f"Python {facts.get('python')}" + (f", BLAS {blas}" if blas else "") + ".",
        "",
    ]
    return lines + ([prose, ""] if prose else [])


def peer_record(library: str, model: str, split_dir: Path, **kw: Any) -> dict[str, Any] | None:
    """One run of a peer library through zenrec's own runner (``zenrec.runs.peers``), or None
    with the one-line reason on stderr when the peer is not configured."""
    from zenrec import ConfigError
    from zenrec.runs.peers import run_peer_script

    try:
        return run_peer_script(library, model, split_dir, **kw)
    except ConfigError as exc:
        print(f"skipping {library} {model}: {exc}", file=sys.stderr)
        return None
