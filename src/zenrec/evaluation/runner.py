"""One evaluation run end to end, as a JSON-ready record (used by the CLI and benchmarks)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from zenrec._errors import DataError
from zenrec._io import versions
from zenrec.data.dataset import Dataset
from zenrec.data.readers import _ids, _numbers, _times, file_sha256, read_table
from zenrec.data.vocab import Vocabulary
from zenrec.evaluation.protocols import Protocol, prepare_dataset, run_protocol
from zenrec.models.registry import create_model
from zenrec.splits import Split

__all__ = ["evaluate_model", "load_split_dir"]


def load_split_dir(path: str | Path, base: Dataset | None = None) -> tuple[Split, str]:
    """Read a fixed split (``train.tsv``, ``valid.tsv``, ``test.tsv``, optional ``items.txt``).

    Files may be gzipped (``train.tsv.gz``). Columns: ``user_id item_id [rating [timestamp]]``.
    Features of ``base`` (the same dataset loaded normally) are carried over by raw id.
    Returns the split and a sha256 over the files.
    """
    d = Path(path)
    parts: dict[str, Any] = {}
    files: list[Path] = []
    for name in ("train", "valid", "test"):
        f = d / f"{name}.tsv"
        if not f.exists() and (d / f"{name}.tsv.gz").exists():
            f = d / f"{name}.tsv.gz"
        if not f.exists():
            if name == "valid":
                continue
            raise DataError(f"{d}: split directory lacks {name}.tsv; expected train/valid/test .tsv files")
        files.append(f)
        df, first = read_table(f, sep="\t")
        parts[name] = (df, f, first)
    ids = {name: (_ids(df, "user_id", f, first, "user id"), _ids(df, "item_id", f, first, "item id"))
           for name, (df, f, first) in parts.items()}
    uv = Vocabulary.from_values(np.concatenate([u for u, _ in ids.values()]))
    items_file = d / "items.txt"
    if items_file.exists():
        files.append(items_file)
        catalog, _ = read_table(items_file, sep="\t", header=False, columns=["item_id"])
        iv = Vocabulary.from_values(_ids(catalog, "item_id", items_file, 1, "item id"))
    else:
        iv = Vocabulary.from_values(np.concatenate([i for _, i in ids.values()]))
    sha = file_sha256(*files)
    out = {}
    for name, (df, f, first) in parts.items():
        ratings = _numbers(df, "rating", f, first, "rating") if "rating" in df.columns else None
        times = _times(df, "timestamp", f, first) if "timestamp" in df.columns else None
        users, items = ids[name]
        ds = Dataset.from_raw(users, items, ratings, times, user_vocab=uv, item_vocab=iv,
                              name=f"{d.name}:{name}", source_sha256=sha)
        if base is not None:
            ds.item_features = {k: f.take(base.item_vocab.encode(iv.ids)) for k, f in base.item_features.items()}
            ds.user_features = {k: f.take(base.user_vocab.encode(uv.ids)) for k, f in base.user_features.items()}
        out[name] = ds
    return Split(out["train"], out.get("valid"), out["test"], f"fixed split from {d}"), sha


def evaluate_model(
    dataset: Dataset,
    protocol: Protocol,
    model_name: str,
    params: dict[str, Any] | None = None,
    *,
    seed: int | None = None,
    user_filters: dict[str, Any] | None = None,
    split_dir: str | Path | None = None,
    on_fold: Any = None,
) -> tuple[dict[str, Any], Any]:
    """Filter, split, fit and evaluate; returns (JSON record, ProtocolRun)."""
    params = dict(params or {})
    seed = protocol.default_seed if seed is None else seed
    probe = create_model(model_name, **params)  # validate parameters before any work
    if protocol.mode == "rating" and getattr(probe, "task", "ranking") != "rating":
        from zenrec._errors import ConfigError

        raise ConfigError(
            f"protocol '{protocol.name}' evaluates predicted ratings (RMSE/MAE), but '{model_name}' "
            "is a ranking model; use a rating model (e.g. biasedmf, or mlpranker with head=rating) "
            "or a ranking protocol (recbole, msrec, loo-full)"
        )
    t0 = time.perf_counter()
    if split_dir is not None:
        split, split_sha = load_split_dir(split_dir, base=dataset)
        splits = [split]
        data = split.train
        filters = [f"fixed split {split_dir}"]
    else:
        data = prepare_dataset(dataset, protocol, user_filters)
        splits = protocol.splits(data, seed)
        split_sha = None
        filters = data.filters
    prep_s = time.perf_counter() - t0
    run = run_protocol(lambda: create_model(model_name, **params), data, protocol, seed,
                       splits=splits, on_fold=on_fold)
    first = splits[0]
    record = {
        "model": model_name,
        "hyperparameters": run.models[0].params(),
        "dataset": dataset.name,
        "dataset_sha256": split_sha or dataset.source_sha256,
        "data_fingerprint": None if split_dir else data.fingerprint(),
        "filters": filters,
        "protocol": protocol.summary(dataset.name),
        "split": {"description": first.description, "folds": len(splits),
                  "sizes": [list(s.sizes()) for s in splits]},
        "seed": seed,
        "metrics": run.metrics,
        "fold_metrics": run.fold_metrics if len(splits) > 1 else None,
        "n_users_evaluated": run.results[0].n_users,
        "evaluation_mode": run.results[0].mode,
        "fit_seconds": run.fit_seconds,
        "eval_seconds": run.eval_seconds,
        "prepare_seconds": prep_s,
        "versions": versions(),
        "command": " ".join(["zenrec", *sys.argv[1:]]) if sys.argv and "zenrec" in sys.argv[0] else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return record, run
