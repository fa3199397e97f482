"""Peer libraries are located by configuration, never by a path into zenrec's repository."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from zenrec._errors import ConfigError
from zenrec.runs.peers import (
    PEER_LIBRARIES,
    PEER_SCRIPTS,
    PeerEntry,
    peer_command,
    peer_python,
    run_peer_script,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "zenrec"


def test_the_library_names_no_repository_path():
    hits = [
        f"{p.relative_to(SRC)}:{n}"
        for p in sorted(SRC.rglob("*"))
        if p.is_file() and p.suffix in (".py", ".toml", ".html", ".json", ".md")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "benchmarks/" in line
    ]
    assert not hits, f"src/zenrec names the repository's benchmarks/ folder: {hits}"


def test_runner_scripts_ship_inside_the_package():
    for lib in PEER_LIBRARIES.values():
        assert lib.runner_path.parent == PEER_SCRIPTS and lib.runner_path.is_file()
        assert SRC in lib.runner_path.parents


def test_not_configured_is_one_line_naming_the_setting_and_the_fix():
    with pytest.raises(ConfigError) as err:
        peer_python("recbole", environ={})
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("RecBole is not configured: set ZENREC_PEER_PYTHON_RECBOLE")
    assert "'python' in its [[peers]] entry" in msg and "setup_peers.sh" in msg
    with pytest.raises(ConfigError, match="ZENREC_PEER_PYTHON_SURPRISE"):
        peer_python("surprise", environ={})


def test_configured_interpreter_that_does_not_exist_names_where_it_came_from(tmp_path):
    env = {"ZENREC_PEER_PYTHON_RECBOLE": str(tmp_path / "none" / "python")}
    with pytest.raises(
        ConfigError,
        match=r"RecBole is not installed: .*none/python does not exist "
        r"\(from ZENREC_PEER_PYTHON_RECBOLE=",
    ):
        peer_python("recbole", environ=env)


def test_precedence_entry_then_environment(tmp_path):
    a, b = tmp_path / "a-python", tmp_path / "b-python"
    a.touch()
    b.touch()
    env = {"ZENREC_PEER_PYTHON_RECBOLE": str(b)}
    assert peer_python("recbole", environ=env) == b
    assert peer_python("recbole", "a-python", root=tmp_path, environ=env) == a
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").touch()
    got = peer_python("recbole", venv="venv", root=tmp_path, environ=env)
    assert got == tmp_path / "venv" / "bin" / "python"


def test_skipped_peer_cell_carries_the_reason(tmp_path):
    peer = PeerEntry(library="recbole", model="EASE")
    argv, version, reason = peer_command(
        peer, tmp_path, tmp_path, tmp_path / "o.json", 1, environ={}
    )
    assert argv is None and version is None
    assert reason is not None and "ZENREC_PEER_PYTHON_RECBOLE" in reason


FAKE_INTERPRETER = f"""#!{sys.executable}
import json, sys
from pathlib import Path
runner, args = Path(sys.argv[1]), sys.argv[2:]
out = Path(args[args.index("--out") + 1])
out.write_text(json.dumps({{"metrics": {{"ndcg@10": 0.5}}, "fit_seconds": 1.0,
                           "runner": runner.name, "runner_exists": runner.is_file(),
                           "args": args}}))
"""


def test_run_peer_script_runs_the_shipped_runner_with_the_configured_interpreter(
    tmp_path, monkeypatch
):
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text(FAKE_INTERPRETER)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("ZENREC_PEER_PYTHON_RECBOLE", str(fake))
    got = run_peer_script("recbole", "EASE", tmp_path, params={"reg_weight": 250.0})
    assert got["runner"] == "recbole_run.py" and got["runner_exists"]
    assert got["args"][:4] == ["--split-dir", str(tmp_path.resolve()), "--model", "EASE"]
    assert got["args"][-1] == f"--set=reg_weight={json.dumps(250.0)}"
    monkeypatch.delenv("ZENREC_PEER_PYTHON_RECBOLE")
    with pytest.raises(ConfigError, match="not configured: set ZENREC_PEER_PYTHON_RECBOLE"):
        run_peer_script("recbole", "EASE", tmp_path)
