"""benchmarks/peers/recbole_tune.py: the RecBole side of a tuned-vs-tuned comparison.

RecBole itself is replaced by a fake runner (RecBole's venv is not part of the test setup):
what is checked is the search around it: trial 0 is RecBole's defaults, the choice is made on
the runner's validation figure (never on test), the study resumes, and a failed run is not a
finished trial.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "peers" / "recbole_tune.py"


@pytest.fixture
def rt(monkeypatch):
    spec = importlib.util.spec_from_file_location("recbole_tune_under_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setenv("ZENREC_PEER_PYTHON_RECBOLE", sys.executable)
    return mod


def _split(tmp_path: Path) -> Path:
    d = tmp_path / "split"
    d.mkdir()
    for part in ("train", "valid", "test"):
        (d / f"{part}.tsv").write_text("user_id\titem_id\trating\n1\t1\t1\n2\t2\t1\n")
    return d


def _valid(params):
    # a known optimum inside SLIMElastic's grid; test figures run the other way, so a tuner
    # that chose on test would pick another trial
    return 1.0 - abs(params["alpha"] - 0.8) - abs(params["l1_ratio"] - 0.005)


def _fake(calls, fail=()):
    def run_trial(model, split, params, args):
        calls.append(dict(params))
        if len(calls) in fail:
            raise RuntimeError("exit code 1: boom")
        v = _valid(params)
        return {
            "metrics": {"ndcg@10": 1.0 - v},
            "valid_metrics": {"ndcg@10": v},
            "fit_seconds": 0.5,
        }

    return run_trial


def _argv(tmp_path, split, trials):
    out = str(tmp_path / "out")
    return ["--model", "SLIMElastic", "--trials", str(trials), "--split-dir", str(split)] + [
        "--out",
        out,
    ]


def test_defaults_first_and_choice_on_validation(rt, tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(rt, "run_trial", _fake(calls))
    split = _split(tmp_path)
    rt.main(_argv(tmp_path, split, 6))
    assert calls[0] == rt.DEFAULTS["SLIMElastic"]
    assert len(calls) == len({tuple(sorted(c.items())) for c in calls})  # repeats not refitted
    best = json.loads((tmp_path / "out" / "SLIMElastic" / "best.json").read_text())
    top = max(calls, key=_valid)
    assert best["best_params"] == top
    assert best["best_valid"] == pytest.approx(_valid(top))
    # the test figure reported is the chosen trial's own run
    assert best["test"]["ndcg@10"] == pytest.approx(1.0 - _valid(top))
    assert best["default_valid"] == pytest.approx(_valid(rt.DEFAULTS["SLIMElastic"]))
    assert len(list((tmp_path / "out" / "SLIMElastic" / "trials").glob("*.json"))) == 6


def test_resume_runs_only_the_missing_trials(rt, tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(rt, "run_trial", _fake(calls))
    split = _split(tmp_path)
    rt.main(_argv(tmp_path, split, 3))
    rt.main(_argv(tmp_path, split, 5))
    trials = sorted((tmp_path / "out" / "SLIMElastic" / "trials").glob("*.json"))
    assert [f.name for f in trials] == [f"{n:03d}.json" for n in range(5)]
    assert len(calls) <= 5
    best = json.loads((tmp_path / "out" / "SLIMElastic" / "best.json").read_text())
    assert best["trials"] == 5


def test_failed_run_is_not_a_finished_trial(rt, tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(rt, "run_trial", _fake(calls, fail=(2,)))
    split = _split(tmp_path)
    rt.main(_argv(tmp_path, split, 3))
    trials = sorted(f.name for f in (tmp_path / "out" / "SLIMElastic" / "trials").glob("*.json"))
    assert trials == ["000.json", "002.json", "003.json"]  # trial 1 failed: one more was run
    best = json.loads((tmp_path / "out" / "SLIMElastic" / "best.json").read_text())
    assert best["trials"] == 3


def test_every_default_is_in_its_space(rt):
    for model, defaults in rt.DEFAULTS.items():
        for key, value in defaults.items():
            assert value in rt.SPACES[model][key], (model, key)
        assert set(defaults) == set(rt.SPACES[model])


def test_repeated_settings_reuse_the_earlier_run(rt, tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(rt, "run_trial", _fake(calls))
    monkeypatch.setitem(rt.SPACES, "SLIMElastic", {"alpha": [0.2, 0.8], "l1_ratio": [0.02]})
    split = _split(tmp_path)
    rt.main(_argv(tmp_path, split, 5))
    assert len(calls) == 2  # two distinct settings: the other three trials are repeats
    run_dir = tmp_path / "out" / "SLIMElastic"
    best = json.loads((run_dir / "best.json").read_text())
    assert best["trials"] == 5 and best["best_params"] == {"alpha": 0.8, "l1_ratio": 0.02}
    repeats = [json.loads(f.read_text()).get("repeat_of") for f in run_dir.glob("trials/*.json")]
    assert sum(r is not None for r in repeats) == 3
