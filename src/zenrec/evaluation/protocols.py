"""Protocol presets: filter + split + evaluation mode + cutoffs + metrics, under one name.

Each preset reproduces a published protocol (ANCHORS.md) and is printed with every result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from zenrec._errors import ConfigError
from zenrec.data.dataset import Dataset
from zenrec.data.filters import apply_filters
from zenrec.evaluation.ctr import evaluate_ctr_samples, evaluate_multitask
from zenrec.evaluation.evaluator import (
    EvalResult,
    evaluate_ranking,
    evaluate_rating,
    evaluate_sampled,
)
from zenrec.splits import (
    Split,
    kfold_splits,
    leave_one_out,
    user_random_split,
    user_stratified_split,
)

__all__ = ["PROTOCOLS", "Protocol", "ProtocolRun", "get_protocol", "run_protocol"]


@dataclass(frozen=True)
class Protocol:
    """A named evaluation protocol.

    Attributes:
        name: Preset name.
        description: What it reproduces, printed with results.
        split: Split kind.
        mode: ``full`` (full ranking), ``sampled``, ``rating``, ``ctr`` (each held-out
            positive with ``n_negatives`` sampled negatives, AUC/GAUC/LogLoss) or
            ``multitask`` (per-task metrics on rated data).
        ks: Cutoffs.
        metrics: Metric names (ranking) or ``rmse``/``mae``.
        main_metric: The metric used for model selection and leaderboards.
        default_seed: Seed of the published protocol.
        filters: Filters applied to every dataset (``min_user_count``...).
        dataset_filters: Extra filters for named datasets (e.g. ML-1M ``rating >= 3``).
        n_negatives: Negatives per user (``sampled``) or per positive (``ctr``).
    """

    name: str
    description: str
    split: Literal["user_random", "user_stratified", "kfold", "loo"]
    mode: Literal["full", "sampled", "rating", "ctr", "multitask"]
    ks: tuple[int, ...]
    metrics: tuple[str, ...]
    main_metric: str
    default_seed: int
    filters: dict[str, Any] = field(default_factory=dict)
    dataset_filters: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_negatives: int = 0
    split_params: dict[str, Any] = field(default_factory=dict)

    @property
    def seed_note(self) -> str | None:
        """What a benchmark's seeds vary under this protocol when its split ignores the seed
        (``None`` when the split draws from the seed)."""
        if self.split != "loo":
            return None
        what = "the model and the sampled negatives" if self.n_negatives else "the model only"
        return f"the {self.name} split ignores the seed (leave-one-out by time): seeds vary {what}"

    def filters_for(self, dataset_name: str) -> dict[str, Any]:
        return {**self.filters, **self.dataset_filters.get(dataset_name, {})}

    def summary(self, dataset_name: str | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "split": self.split,
            "split_params": self.split_params,
            "mode": self.mode,
            "ks": list(self.ks),
            "metrics": list(self.metrics),
            "main_metric": self.main_metric,
            "filters": self.filters_for(dataset_name) if dataset_name else self.filters,
            "n_negatives": self.n_negatives or None,
        }

    def splits(self, ds: Dataset, seed: int) -> list[Split]:
        if self.split == "user_random":
            return [user_random_split(ds, self.split_params.get("ratios", (0.8, 0.1, 0.1)), seed)]
        if self.split == "user_stratified":
            return [user_stratified_split(ds, self.split_params.get("ratio", 0.75), seed)]
        if self.split == "kfold":
            return list(kfold_splits(ds, self.split_params.get("k", 5), seed))
        if self.split == "loo":
            return [leave_one_out(ds, valid=True)]
        raise ConfigError(f"unknown split kind {self.split!r}")  # pragma: no cover

    def evaluate(
        self, model: Any, split: Split, part: Literal["valid", "test"] = "test", seed: int = 0
    ) -> EvalResult:
        exclude: list[Dataset | None]
        if part == "valid":
            if split.valid is None:
                raise ConfigError(f"protocol '{self.name}' has no validation part")
            target, exclude = split.valid, [split.train]
        else:
            target, exclude = split.test, [split.train, split.valid]
        if self.mode == "rating":
            return evaluate_rating(model, target)
        if self.mode == "ctr":
            return evaluate_ctr_samples(
                model, target, exclude, n_negatives=self.n_negatives, seed=seed
            )
        if self.mode == "multitask":
            return evaluate_multitask(model, target, threshold=self.split_params.get("liked", 4.0))
        if self.mode == "sampled":
            return evaluate_sampled(
                model,
                target,
                exclude,
                n_negatives=self.n_negatives,
                ks=self.ks,
                metrics=self.metrics,
                seed=seed,
            )
        return evaluate_ranking(model, target, exclude, ks=self.ks, metrics=self.metrics)


PROTOCOLS: dict[str, Protocol] = {
    "recbole": Protocol(
        name="recbole",
        description=(
            "RecBole's general protocol: per-user random split 8:1:1 (RecBole's rounding), "
            "full ranking over all items, train (and valid, for test) items excluded; ML-1M "
            "keeps ratings >= 3 as RecBole-GNN's published table does"
        ),
        split="user_random",
        split_params={"ratios": (0.8, 0.1, 0.1)},
        mode="full",
        ks=(5, 10, 20),
        metrics=("recall", "mrr", "ndcg", "hit", "precision", "map"),
        main_metric="ndcg@10",
        default_seed=2020,
        dataset_filters={"ml-1m": {"min_rating": 3.0}},
    ),
    "msrec": Protocol(
        name="msrec",
        description=(
            "Microsoft Recommenders' ML-100K table: per-user stratified split 75/25 (seed 42), "
            "top-10 among items unseen in train, all ratings relevant"
        ),
        split="user_stratified",
        split_params={"ratio": 0.75},
        mode="full",
        ks=(10,),
        metrics=("map", "ndcg", "precision", "recall", "hit", "mrr"),
        main_metric="ndcg@10",
        default_seed=42,
    ),
    "surprise-cv5": Protocol(
        name="surprise-cv5",
        description="Surprise's rating benchmark: 5-fold cross-validation of explicit ratings, RMSE/MAE",
        split="kfold",
        split_params={"k": 5},
        mode="rating",
        ks=(),
        metrics=("rmse", "mae"),
        main_metric="rmse",
        default_seed=0,
    ),
    "loo-full": Protocol(
        name="loo-full",
        description=(
            "Temporal leave-one-out (last item test, previous valid), users and items with >= 5 "
            "interactions, full ranking over all items"
        ),
        split="loo",
        mode="full",
        ks=(10,),
        metrics=("hit", "ndcg", "mrr"),
        main_metric="ndcg@10",
        default_seed=0,
        filters={"min_user_count": 5, "min_item_count": 5},
    ),
    "loo-uni100": Protocol(
        name="loo-uni100",
        description=(
            "SAMPLED: temporal leave-one-out, the test item ranked against 100 uniformly sampled "
            "unseen items (SASRec paper protocol; not comparable to full ranking)"
        ),
        split="loo",
        mode="sampled",
        ks=(10,),
        metrics=("hit", "ndcg", "mrr"),
        main_metric="ndcg@10(sampled)",
        default_seed=0,
        filters={"min_user_count": 5, "min_item_count": 5},
        n_negatives=100,
    ),
    "ctr": Protocol(
        name="ctr",
        description=(
            "Click-through prediction: per-user random split 8:1:1 of the interactions (all are "
            "positives); each valid/test positive paired with 4 negatives sampled per seed from "
            "the user's unseen items; AUC, GAUC (per user) and LogLoss (models that predict a "
            "probability)"
        ),
        split="user_random",
        split_params={"ratios": (0.8, 0.1, 0.1)},
        mode="ctr",
        ks=(),
        metrics=("auc", "gauc", "logloss"),
        main_metric="auc",
        default_seed=0,
        n_negatives=4,
    ),
    "multitask": Protocol(
        name="multitask",
        description=(
            "Multi-task on rated data: per-user random split 8:1:1; task 'rating' (RMSE, MAE of "
            "the predicted rating) and task 'liked' (rating >= 4: AUC, LogLoss); a single-task "
            "model reports its own task"
        ),
        split="user_random",
        split_params={"ratios": (0.8, 0.1, 0.1), "liked": 4.0},
        mode="multitask",
        ks=(),
        metrics=("rating/rmse", "rating/mae", "liked/auc", "liked/logloss"),
        main_metric="rating/rmse",
        default_seed=0,
    ),
}


def get_protocol(name: str) -> Protocol:
    p = PROTOCOLS.get(name)
    if p is None:
        raise ConfigError(f"unknown protocol '{name}'; presets are {', '.join(PROTOCOLS)}")
    return p


def prepare_dataset(
    ds: Dataset, protocol: Protocol, user_filters: dict[str, Any] | None = None
) -> Dataset:
    """Apply the user's filters merged with the preset's own (the preset's still apply)."""
    f = {
        **protocol.filters_for(ds.name),
        **{k: v for k, v in (user_filters or {}).items() if v is not None},
    }
    pf = protocol.filters_for(ds.name)
    # A preset threshold is a floor: a user may tighten but not loosen it.
    if "min_rating" in pf and f.get("min_rating") is not None:
        f["min_rating"] = max(float(pf["min_rating"]), float(f["min_rating"]))
    for key in ("min_user_count", "min_item_count"):
        if key in pf:
            f[key] = max(int(pf[key]), int(f.get(key) or 0))
    return apply_filters(
        ds,
        min_rating_value=f.get("min_rating"),
        min_user_count=int(f.get("min_user_count") or 0),
        min_item_count=int(f.get("min_item_count") or 0),
        duplicates=f.get("duplicates", "last"),
        start=f.get("start"),
        end=f.get("end"),
    )


@dataclass
class ProtocolRun:
    """Result of fitting and evaluating one model under a protocol (all folds)."""

    metrics: dict[str, float]
    fold_metrics: list[dict[str, float]]
    fit_seconds: float
    eval_seconds: float
    results: list[EvalResult]
    models: list[Any]
    splits: list[Split]


def run_protocol(
    make_model: Callable[[], Any],
    ds: Dataset,
    protocol: Protocol,
    seed: int | None = None,
    *,
    splits: list[Split] | None = None,
    on_fold: Callable[[int, int], None] | None = None,
) -> ProtocolRun:
    """Fit a fresh model on each fold's train part and evaluate it on test once."""
    seed = protocol.default_seed if seed is None else seed
    splits = splits if splits is not None else protocol.splits(ds, seed)
    fold_metrics, results, models = [], [], []
    fit_s = eval_s = 0.0
    for j, sp_ in enumerate(splits):
        model = make_model()
        t0 = time.perf_counter()
        model.fit(sp_.train, sp_.valid)
        fit_s += time.perf_counter() - t0
        res = protocol.evaluate(model, sp_, "test", seed=seed)
        eval_s += res.seconds
        fold_metrics.append(res.metrics)
        results.append(res)
        models.append(model)
        if on_fold:
            on_fold(j + 1, len(splits))
    keys = fold_metrics[0].keys()
    mean = {k: float(np.mean([fm[k] for fm in fold_metrics])) for k in keys}
    return ProtocolRun(mean, fold_metrics, fit_s, eval_s, results, models, splits)
