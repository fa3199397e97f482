"""Tune a RecBole 1.2.1 model on exactly zenrec's split, the way ``zenrec tune`` tunes zenrec's.

Run from the repository root with zenrec's interpreter; RecBole runs with the interpreter that
``ZENREC_PEER_PYTHON_RECBOLE`` names (``benchmarks/peers/setup_peers.sh recbole`` creates it):

    ZENREC_DATA=/work/shared/data OPENBLAS_NUM_THREADS=1 .venv/bin/python \
        benchmarks/peers/recbole_tune.py --dataset ml-100k --protocol recbole \
        --model SLIMElastic --trials 8 --out runs/recbole-tune

The same search as zenrec's: Optuna's TPE sampler seeded with the split seed, the same number
of startup trials (``min(10, max(2, trials // 3))``, constant liar), trial 0 = the model's
RecBole defaults (enqueued), and the same number of trials as the zenrec study it is set
beside. Each trial is one run of zenrec's RecBole runner (``zenrec.runs.peers.run_peer_script``)
with ``--set`` values on the split that zenrec's protocol makes (exported to
``OUT/MODEL/split/`` once); it trains on train, stops early on the validation part (RecBole's
``stopping_step`` 10, one validation per epoch) and the objective is **RecBole's own
validation NDCG@10** of its kept epoch (``valid_metrics`` of the runner's record). Test
figures never enter the choice.

A trial that draws settings an earlier trial ran (TPE repeats itself on small categorical
grids) counts as a trial, as in ``zenrec tune``, but reuses that trial's record instead of
refitting: RecBole reseeds every run with the same seed, so the refit would give the same model.

Resumable: the study lives in ``OUT/MODEL/optuna.db`` (SQLite) and every trial's whole runner
record in ``OUT/MODEL/trials/NNN.json``; a rerun (after Ctrl-C, a crash or a timeout) continues
until the study has ``--trials`` finished trials. At the end ``OUT/MODEL/best.json`` holds the
best trial's settings, its validation NDCG@10, its test metrics and fit seconds. That test
figure is the best trial's own run (the runner evaluates test once after each fit and the
tuner does not read it before the search is over): RecBole reseeds every run with the same
seed, so refitting the chosen settings on the same train part gives the same model, and zenrec's
``tune`` does the same refit on the ``recbole`` protocol, whose tuning train part is its train
part.

Search spaces (``SPACES``, all categorical) come from RecBole's own hyper-tuning files
(``hyper.test`` in each model's page of RecBole's documentation, and the ML-1M results pages of
RecBole's benchmark): SLIMElastic ``alpha`` x ``l1_ratio`` (the union of the two grids);
MultiVAE ``learning_rate`` (the documented grid) plus ``latent_dimension`` and ``dropout_prob``
around the defaults (zenrec's space searches its latent size and dropout too); LightGCN
``learning_rate`` x ``n_layers`` x ``reg_weight`` (documented) plus ``embedding_size``
(zenrec's space searches its dimension). Every default is inside its space.

``--quick`` checks the script on a tiny split: it fits one epoch per trial.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from zenrec import ConfigError
from zenrec.data import load_dataset
from zenrec.data.spec import DataSpec
from zenrec.evaluation.protocols import get_protocol
from zenrec.runs.evaluate import protocol_splits
from zenrec.runs.peers import export_peer_split, peer_python, run_peer_script

# RecBole model -> {config key: choices}; the first value listed is not special, the defaults are
DEFAULTS: dict[str, dict[str, Any]] = {
    "SLIMElastic": {"alpha": 0.2, "l1_ratio": 0.02},
    "MultiVAE": {"learning_rate": 0.001, "latent_dimension": 128, "dropout_prob": 0.5},
    "LightGCN": {"learning_rate": 0.001, "n_layers": 2, "reg_weight": 1e-05, "embedding_size": 64},
}
SPACES: dict[str, dict[str, list[Any]]] = {
    "SLIMElastic": {
        "alpha": [0.2, 0.4, 0.5, 0.6, 0.8, 1.0],
        "l1_ratio": [0.5, 0.1, 0.05, 0.02, 0.01, 0.005],
    },
    "MultiVAE": {
        "learning_rate": [0.01, 0.005, 0.001, 0.0005, 0.0001],
        "latent_dimension": [64, 128, 200],
        "dropout_prob": [0.3, 0.5, 0.7],
    },
    "LightGCN": {
        "learning_rate": [0.01, 0.005, 0.001, 0.0005, 0.0001],
        "n_layers": [1, 2, 3, 4],
        "reg_weight": [1e-05, 1e-04, 1e-03, 1e-02],
        "embedding_size": [32, 64, 128],
    },
}
OBJECTIVE = "ndcg@10"


def export(args: argparse.Namespace, directory: Path) -> Path:
    """zenrec's split of the dataset under the protocol (seed ``args.seed``), as files."""
    if (directory / "split.json").exists():
        return directory
    ds = load_dataset(args.dataset)
    protocol = get_protocol(args.protocol)
    splits, _data, _filters, _sha = protocol_splits(
        ds, protocol, DataSpec(source=args.dataset), args.seed
    )
    if len(splits) != 1 or splits[0].valid is None or not len(splits[0].valid):
        raise ConfigError(
            f"protocol {args.protocol!r} has no validation part of its own; tune RecBole under "
            "a protocol with one (recbole, loo-full): RecBole masks a validation part carved "
            "out of train as history"
        )
    export_peer_split(
        splits,
        directory,
        manifest={"dataset": ds.name, "protocol": protocol.summary(ds.name), "seed": args.seed},
    )
    return directory


def quick_split(directory: Path, out: Path, users: int = 60) -> Path:
    """A tiny copy in ``out`` of an exported split (its first ``users`` users), for ``--quick``."""
    out.mkdir(parents=True, exist_ok=True)
    keep: set[str] = set()
    for part in ("train", "valid", "test"):
        lines = (directory / f"{part}.tsv").read_text().splitlines()
        if part == "train":
            keep = {ln.split("\t", 1)[0] for ln in lines[1:]}
            keep = set(sorted(keep, key=lambda u: (len(u), u))[:users])
        rows = [ln for ln in lines[1:] if ln.split("\t", 1)[0] in keep]
        (out / f"{part}.tsv").write_text("\n".join([lines[0], *rows]) + "\n")
    return out


def run_trial(
    model: str, split: Path, params: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """One RecBole run of ``params`` on the split; its runner record."""
    sets = {"seed": args.seed, **params}
    if args.quick:
        sets["epochs"] = 1
    threads = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    return run_peer_script("recbole", model, split, params=sets, env=threads, timeout=args.timeout)


def tune(args: argparse.Namespace) -> dict[str, Any]:
    """Run (or continue) the study and write ``best.json``; returns its content."""
    model = args.model
    space, defaults = SPACES[model], DEFAULTS[model]
    run_dir = Path(args.out).resolve() / (model + ("-quick" if args.quick else ""))
    (run_dir / "trials").mkdir(parents=True, exist_ok=True)
    if args.split_dir:
        split = Path(args.split_dir).resolve()
    else:
        name = f"split-{args.dataset}-{args.protocol}-s{args.seed}"
        split = export(args, Path(args.out).resolve() / name)
    if args.quick:
        split = quick_split(split, run_dir / "split-quick")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"recbole-{model}-{args.dataset}-{args.protocol}-s{args.seed}",
        storage=f"sqlite:///{run_dir / 'optuna.db'}",
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(
            seed=args.seed,
            constant_liar=True,
            n_startup_trials=min(10, max(2, args.trials // 3)),
        ),
    )
    if not study.trials:
        study.enqueue_trial(defaults)  # trial 0: RecBole's defaults
    # a trial left RUNNING by a killed process is failed and asked again
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params)

    def done() -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    while done() < args.trials:
        trial = study.ask()
        params = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
        t0 = time.perf_counter()
        same = next(
            (
                t
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.params == params
            ),
            None,
        )
        if same is not None:
            # RecBole reseeds every run with the same seed: the repeat would fit the same model
            rec = json.loads((run_dir / "trials" / f"{same.number:03d}.json").read_text())
            rec["repeat_of"] = same.number
        else:
            try:
                rec = run_trial(model, split, params, args)
            except RuntimeError as exc:
                print(f"trial {trial.number} {params} failed: {exc}", flush=True)
                study.tell(trial, state=TrialState.FAIL)
                continue
        value = float(rec["valid_metrics"][OBJECTIVE])
        rec["trial"], rec["params"], rec["wall_seconds"] = (
            trial.number,
            params,
            time.perf_counter() - t0,
        )
        (run_dir / "trials" / f"{trial.number:03d}.json").write_text(json.dumps(rec, indent=2))
        trial.set_user_attr("fit_seconds", rec["fit_seconds"])
        study.tell(trial, value)
        print(
            f"trial {trial.number} {params}: valid {OBJECTIVE} {value:.4f}, fit "
            f"{rec['fit_seconds']:.1f} s (best so far {study.best_value:.4f})",
            flush=True,
        )
    best = study.best_trial
    rec = json.loads((run_dir / "trials" / f"{best.number:03d}.json").read_text())
    default_trial = next(
        (
            t
            for t in study.get_trials(deepcopy=False)
            if t.params == defaults and t.value is not None
        ),
        None,
    )
    summary = {
        "library": "recbole",
        "model": model,
        "dataset": args.dataset,
        "protocol": args.protocol,
        "seed": args.seed,
        "trials": done(),
        "sampler": f"TPE (seed {args.seed}, constant liar, "
        f"{min(10, max(2, args.trials // 3))} startup trials); trial 0 = RecBole's defaults",
        "space": space,
        "objective": f"RecBole's validation {OBJECTIVE} (best epoch)",
        "best_trial": best.number,
        "best_params": best.params,
        "best_valid": best.value,
        "default_valid": None if default_trial is None else default_trial.value,
        "test": rec["metrics"],
        "fit_seconds": rec["fit_seconds"],
        "trial_fit_seconds": [t.user_attrs.get("fit_seconds") for t in study.trials],
        "quick": args.quick,
    }
    (run_dir / "best.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, choices=sorted(SPACES), help="RecBole model")
    ap.add_argument("--trials", type=int, required=True, help="finished trials to reach")
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--protocol", default="recbole")
    ap.add_argument("--seed", type=int, default=2020, help="split seed = RecBole seed = TPE seed")
    ap.add_argument("--out", default="runs/recbole-tune")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per RecBole run")
    ap.add_argument(
        "--split-dir", help="an exported split (train/valid/test.tsv) instead of zenrec's own"
    )
    ap.add_argument("--quick", action="store_true", help="tiny split, one epoch: checks only")
    args = ap.parse_args(argv)
    if args.trials < 1:
        sys.exit(f"--trials must be >= 1. Got {args.trials}.")
    try:
        peer_python("recbole")
        tune(args)
    except ConfigError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
