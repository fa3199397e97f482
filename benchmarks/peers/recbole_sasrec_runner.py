"""Resumable RecBole SASRec training loop; runs inside RecBole's interpreter, not zenrec's.

``recbole_sasrec.py`` writes the split as RecBole benchmark files into ``STATE/data/seq/`` and
copies this file to ``STATE/runner.py``, so a run can be resumed without the zenrec checkout:

    OMP_NUM_THREADS=1 nice -n 19 $ZENREC_PEER_PYTHON_RECBOLE STATE/runner.py --state STATE

The loop is RecBole 1.2.1's ``Trainer.fit`` (train an epoch, validate, ``early_stopping`` with
``stopping_step``, keep the best model) with three additions: one JSON line per epoch appended to
``STATE/epochs.jsonl`` (train loss, validation metrics, wall and process CPU seconds), the whole
training state (model, optimizer, stopping counter, best score, the train loader's shuffling
generator and the RNGs) written to ``STATE/last.npz`` after every epoch, and a restart that
continues from ``last.npz``. Checkpoints are numpy archives of arrays plus a JSON header, read
with ``allow_pickle=False``: loading one runs no code (RecBole's own ``.pth`` files are
pickles). With the same settings, a resumed run reproduces the losses of
an uninterrupted one. When the stopping rule fires or ``--epochs`` is reached, the best model is
scored on the test part and ``STATE/result.json`` is written.
"""

import argparse
import hashlib
import json
import os
import random
import sys
import time

import numpy as np
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import early_stopping, get_model, get_trainer, init_seed


def files_digest(seq_dir):
    h = hashlib.sha256()
    for part in ("train", "valid", "test"):
        with open(os.path.join(seq_dir, f"seq.{part}.inter"), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def save_arrays(path, tensors, meta):
    """Write ``tensors`` (name -> tensor) and the JSON-able ``meta`` to one ``.npz``, atomically."""
    arrays = {f"t/{k}": v.detach().cpu().numpy() for k, v in tensors.items()}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def load_arrays(path):
    """(name -> tensor, meta) from :func:`save_arrays`; no pickle is read."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        tensors = {k[2:]: torch.from_numpy(z[k].copy()) for k in z.files if k.startswith("t/")}
    return tensors, meta


def split_prefix(tensors, prefix):
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def flatten_optimizer(sd):
    """An optimizer ``state_dict`` as (tensors, JSON-able rest)."""
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}/{k}"] = v
            else:
                scalars[f"{pid}/{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors, rest):
    state = {}
    for key, v in list(tensors.items()) + list(rest["scalars"].items()):
        pid, k = key.split("/", 1)
        state.setdefault(int(pid), {})[k] = v
    return {"state": state, "param_groups": rest["param_groups"]}


def atomic_json(obj, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--state", required=True, help="run folder: data/seq/*.inter, logs, checkpoints"
    )
    ap.add_argument("--epochs", type=int, default=300, help="RecBole's default epochs")
    ap.add_argument("--stopping-step", type=int, default=10, help="RecBole's default")
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--session-epochs",
        type=int,
        default=0,
        help="stop this process after this many epochs (0: no limit); resume later",
    )
    args = ap.parse_args()
    state = os.path.abspath(args.state)
    pid_file = os.path.join(state, "running.pid")
    if os.path.exists(pid_file):
        with open(pid_file) as f:
            other = int(f.read().strip() or 0)
        try:
            os.kill(other, 0)
            alive = 0 < other != os.getpid()
        except (ProcessLookupError, PermissionError, ValueError):
            alive = False
        if alive:
            sys.exit(f"process {other} is training in {state} ({pid_file}); wait for it or end it.")
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    try:
        train_and_test(args, state)
    finally:
        os.remove(pid_file)


def train_and_test(args, state):
    data_dir = os.path.join(state, "data")
    torch.set_num_threads(args.threads)
    settings = {
        "epochs": args.epochs,
        "stopping_step": args.stopping_step,
        "max_len": args.max_len,
        "seed": 2020,
        "data_sha256": files_digest(os.path.join(data_dir, "seq")),
    }
    os.chdir(data_dir)
    cfg = {
        "data_path": data_dir,
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "eval_args": {"group_by": "user", "order": "TO", "mode": "full"},
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "epochs": args.epochs,
        "eval_step": 1,
        "stopping_step": args.stopping_step,
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": os.path.join(state, "saved"),
        "seed": settings["seed"],
        "reproducibility": True,
        "worker": 0,
        "log_wandb": False,
    }
    config = Config(model="SASRec", dataset="seq", config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model = get_model("SASRec")(config, train._dataset).to("cpu")
    trainer = get_trainer(config["MODEL_TYPE"], "SASRec")(config, model)
    trainer.eval_collector.data_collect(train)

    last_path = os.path.join(state, "last.npz")
    best_path = os.path.join(state, "best.npz")
    log_path = os.path.join(state, "epochs.jsonl")
    start_epoch, stopped = 0, False
    if os.path.exists(last_path):
        arrays, ck = load_arrays(last_path)
        if ck["settings"] != settings:
            sys.exit(
                f"{last_path} was written with settings {ck['settings']}, this run has "
                f"{settings}. Use the same data and options, or a new --state folder."
            )
        model.load_state_dict(split_prefix(arrays, "model/"))
        opt = unflatten_optimizer(split_prefix(arrays, "opt/"), ck["optimizer"])
        trainer.optimizer.load_state_dict(opt)
        trainer.cur_step = ck["cur_step"]
        trainer.best_valid_score = ck["best_valid_score"]
        trainer.best_valid_result = ck["best_valid_result"]
        train.generator.set_state(arrays["rng/train_generator"])
        torch.set_rng_state(arrays["rng/torch"])
        name, pos, has_gauss, cached = ck["numpy_rng"]
        np.random.set_state((name, arrays["rng/numpy"].numpy(), pos, has_gauss, cached))
        version, internal, gauss = ck["python_rng"]
        random.setstate((version, tuple(internal), gauss))
        start_epoch, stopped = ck["epoch"] + 1, ck["stopped"]
        # Drop log lines of epochs after the checkpoint (a process killed between the two writes).
        if os.path.exists(log_path):
            with open(log_path) as f:
                lines = [ln for ln in f if ln.strip() and json.loads(ln)["epoch"] < start_epoch]
            with open(log_path + ".tmp", "w") as f:
                f.writelines(lines)
            os.replace(log_path + ".tmp", log_path)
        print(f"resuming at epoch {start_epoch} (stopping counter {trainer.cur_step})", flush=True)

    done_here = 0
    epoch = start_epoch
    while not stopped and epoch < args.epochs:
        if args.session_epochs and done_here >= args.session_epochs:
            print(f"session limit reached after epoch {epoch - 1}; resume to continue", flush=True)
            return
        w0, c0 = time.perf_counter(), time.process_time()
        loss = trainer._train_epoch(train, epoch, show_progress=False)
        w1, c1 = time.perf_counter(), time.process_time()
        score, result = trainer._valid_epoch(valid, show_progress=False)
        w2, c2 = time.perf_counter(), time.process_time()
        trainer.best_valid_score, trainer.cur_step, stopped, improved = early_stopping(
            score,
            trainer.best_valid_score,
            trainer.cur_step,
            max_step=args.stopping_step,
            bigger=True,
        )
        if improved:
            trainer.best_valid_result = dict(result)
            save_arrays(best_path, model.state_dict(), {"epoch": epoch})
        opt_tensors, opt_rest = flatten_optimizer(trainer.optimizer.state_dict())
        np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
        py_version, py_internal, py_gauss = random.getstate()
        tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
        tensors.update({f"opt/{k}": v for k, v in opt_tensors.items()})
        tensors["rng/train_generator"] = train.generator.get_state()
        tensors["rng/torch"] = torch.get_rng_state()
        tensors["rng/numpy"] = torch.from_numpy(np_keys.copy())
        save_arrays(
            last_path,
            tensors,
            {
                "settings": settings,
                "epoch": epoch,
                "stopped": stopped,
                "optimizer": opt_rest,
                "cur_step": trainer.cur_step,
                "best_valid_score": float(trainer.best_valid_score),
                "best_valid_result": trainer.best_valid_result
                and {k: float(v) for k, v in dict(trainer.best_valid_result).items()},
                "numpy_rng": [np_name, int(np_pos), int(np_has_gauss), float(np_cached)],
                "python_rng": [py_version, list(py_internal), py_gauss],
            },
        )
        rec = {
            "epoch": epoch,
            "train_loss": float(loss),
            "valid": {k.lower(): float(v) for k, v in dict(result).items()},
            "improved": bool(improved),
            "stopping_counter": int(trainer.cur_step),
            "train_wall_s": round(w1 - w0, 3),
            "valid_wall_s": round(w2 - w1, 3),
            "wall_s": round(w2 - w0, 3),
            "train_cpu_s": round(c1 - c0, 3),
            "cpu_s": round(c2 - c0, 3),
            "torch_threads": torch.get_num_threads(),
            "pid": os.getpid(),
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
        print(json.dumps(rec), flush=True)
        epoch += 1
        done_here += 1

    best_state, best = load_arrays(best_path)
    model.load_state_dict(best_state)
    res = trainer.evaluate(test, load_best_model=False, show_progress=False)
    with open(log_path) as f:
        log = [json.loads(ln) for ln in f if ln.strip()]
    atomic_json(
        {
            "library": "recbole",
            "model": "SASRec",
            "epochs_run": len(log),
            "best_epoch": int(best["epoch"]),
            "stopped_early": bool(stopped),
            "best_valid": trainer.best_valid_result
            and {k.lower(): float(v) for k, v in dict(trainer.best_valid_result).items()},
            "metrics": {k.lower(): float(v) for k, v in dict(res).items()},
            "fit_seconds": sum(r["wall_s"] for r in log),
            "fit_cpu_seconds": sum(r["cpu_s"] for r in log),
            "torch_threads": torch.get_num_threads(),
            "users": int(dataset.user_num - 1),
            "items": int(dataset.item_num - 1),
        },
        os.path.join(state, "result.json"),
    )
    with open(os.path.join(state, "result.json")) as f:
        print(f.read(), flush=True)


if __name__ == "__main__":
    main()
