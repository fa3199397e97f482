"""Protocol presets: filter + split + evaluation mode + cutoffs + metrics, under one name.

Each preset reproduces a published protocol (ANCHORS.md) and is printed with every result.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from zenrec._errors import ConfigError, ProtocolError
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
    time_cutoff_split,
    time_fraction_split,
    to_unix_seconds,
    user_random_split,
    user_stratified_split,
    user_temporal_split,
)

__all__ = [
    "PROTOCOLS",
    "SPLIT_OPTIONS",
    "Protocol",
    "ProtocolRun",
    "get_protocol",
    "prepare_dataset",
    "run_protocol",
]


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
        split_params: Parameters of the split (``ratios``, ``test_fraction``...); the options
            a user may change are listed in :data:`SPLIT_OPTIONS` (see :meth:`with_split`).
    """

    name: str
    description: str
    split: Literal["user_random", "user_stratified", "kfold", "loo", "temporal", "user_temporal"]
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
        how = {"loo": "leave-one-out", "temporal": "one time cutoff", "user_temporal": "per user"}
        if self.split not in how:
            return None
        what = "the model and the sampled negatives" if self.n_negatives else "the model only"
        return (
            f"the {self.name} split ignores the seed ({how[self.split]} by time): seeds vary {what}"
        )

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

    def with_split(self, **options: Any) -> Protocol:
        """The same preset with some split options changed (``None`` values are ignored).

        The ``temporal`` preset takes ``test_fraction``, ``valid_fraction``, ``test_start``
        and ``valid_start`` (unix seconds or an ISO 8601 date; both dates, or both fractions);
        ``temporal-user`` takes ``ratios``.

        Example:
            >>> get_protocol("temporal").with_split(test_fraction=0.2).split_params["test_fraction"]
            0.2
        """
        options = {k: v for k, v in options.items() if v is not None}
        if not options:
            return self
        allowed = SPLIT_OPTIONS.get(self.split, ())
        bad = sorted(set(options) - set(allowed))
        if bad:
            raise ConfigError(
                f"protocol '{self.name}' has no split option {bad[0]!r}; "
                + (f"its options are {', '.join(allowed)}" if allowed else "it takes none")
            )
        params = {**self.split_params, **options}
        if self.split == "temporal":
            params = _temporal_params(self.name, params, set(options))
        changed = ", ".join(f"{k}={v}" for k, v in params.items())
        base = PROTOCOLS.get(self.name, self).description.split(" [split options: ")[0]
        return dataclasses.replace(
            self, split_params=params, description=f"{base} [split options: {changed}]"
        )

    def split_options(self) -> dict[str, Any]:
        """The split options that differ from the preset's own (what ``with_split`` changed)."""
        base = PROTOCOLS.get(self.name)
        own = base.split_params if base is not None else {}
        return {k: v for k, v in self.split_params.items() if own.get(k) != v}

    def splits(self, ds: Dataset, seed: int) -> list[Split]:
        """The preset's split(s) of ``ds`` (already filtered: see :func:`prepare_dataset`)."""
        if self.split in ("temporal", "user_temporal") and ds.timestamps is None:
            raise ProtocolError(
                f"protocol '{self.name}' splits by time, but dataset '{ds.name}' has no "
                "timestamp column; read it with time_col=COLUMN, or "
                "use a protocol without time (recbole, msrec)"
            )
        if self.split == "temporal":
            sp_ = self.split_params
            if sp_.get("test_start") is not None:
                return [time_cutoff_split(ds, sp_["test_start"], sp_.get("valid_start"))]
            return [
                time_fraction_split(
                    ds, sp_.get("test_fraction", 0.1), sp_.get("valid_fraction", 0.1)
                )
            ]
        if self.split == "user_temporal":
            return [user_temporal_split(ds, self.split_params.get("ratios", (0.8, 0.1, 0.1)))]
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
            view = getattr(model, "validation_view", None)
            if callable(view):  # a model scoring from histories: without the validation items
                model = view()
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
        description=(
            "Surprise's rating benchmark: 5-fold cross-validation of explicit ratings, RMSE/MAE"
        ),
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
    "temporal": Protocol(
        name="temporal",
        description=(
            "One global time cutoff: the last 10% of interactions by time test, the 10% before "
            "them validate (ties by file order), full ranking over all items with train (and "
            "valid, for test) items masked; no k-core of its own (a user's filters apply to the "
            "whole log before the split); users and items first seen after the cutoff are cold, "
            "reported apart"
        ),
        split="temporal",
        split_params={"test_fraction": 0.1, "valid_fraction": 0.1},
        mode="full",
        ks=(10, 20),
        metrics=("recall", "ndcg", "mrr", "hit", "precision", "map"),
        main_metric="ndcg@10",
        default_seed=0,
    ),
    "temporal-user": Protocol(
        name="temporal-user",
        description=(
            "Per user, chronological 80/10/10: each user's earliest interactions train, the next "
            "validate, the latest test (RecBole's rounding, ties by file order), full ranking over "
            "all items with train (and valid, for test) items masked; no k-core of its own"
        ),
        split="user_temporal",
        split_params={"ratios": (0.8, 0.1, 0.1)},
        mode="full",
        ks=(10, 20),
        metrics=("recall", "ndcg", "mrr", "hit", "precision", "map"),
        main_metric="ndcg@10",
        default_seed=0,
    ),
}

SPLIT_OPTIONS: dict[str, tuple[str, ...]] = {
    "temporal": ("test_fraction", "valid_fraction", "test_start", "valid_start"),
    "user_temporal": ("ratios",),
}
"""Split options a user may set, by split kind (:meth:`Protocol.with_split`)."""


def _temporal_params(name: str, params: dict[str, Any], given: set[str]) -> dict[str, Any]:
    """Check the ``temporal`` split options: fractions, or dates (as unix seconds)."""
    dates = {"test_start", "valid_start"} & given
    fractions = {"test_fraction", "valid_fraction"} & given
    if dates and fractions:
        raise ConfigError(
            f"protocol '{name}': give the cutoffs as fractions (test_fraction, valid_fraction) "
            f"or as dates (test_start, valid_start), not both; got {sorted(given)}"
        )
    if dates:
        if "test_start" not in params:
            raise ConfigError(f"protocol '{name}': valid_start needs test_start too")
        out: dict[str, Any] = {
            k: to_unix_seconds(params[k], k) for k in ("test_start", "valid_start") if k in params
        }
        if "valid_start" in out and out["valid_start"] > out["test_start"]:
            raise ConfigError(
                f"protocol '{name}': valid_start {params['valid_start']} is after test_start "
                f"{params['test_start']}"
            )
        return out
    fr: dict[str, Any] = {"test_fraction": 0.1, "valid_fraction": 0.1, **params}
    tf, vf = float(fr["test_fraction"]), float(fr["valid_fraction"])
    if not 0 < tf < 1 or not 0 <= vf < 1 or tf + vf >= 1:
        raise ConfigError(
            f"protocol '{name}': test_fraction must be in (0, 1) and valid_fraction in [0, 1), "
            f"with test_fraction + valid_fraction < 1; got {tf} and {vf}"
        )
    return {"test_fraction": tf, "valid_fraction": vf}


def get_protocol(name: str, **split_options: Any) -> Protocol:
    """A protocol preset by name, with optional split options (see :meth:`Protocol.with_split`).

    Example:
        >>> get_protocol("temporal", test_start="1998-03-01").split_params
        {'test_start': 888710400}
    """
    p = PROTOCOLS.get(name)
    if p is None:
        raise ConfigError(f"unknown protocol '{name}'; presets are {', '.join(PROTOCOLS)}")
    return p.with_split(**split_options)


def prepare_dataset(
    ds: Dataset, protocol: Protocol, user_filters: dict[str, Any] | None = None
) -> Dataset:
    """The data a protocol splits: ``ds`` with the preset's filters and the user's applied.

    This is the one filtering step shared by :func:`run_protocol`, ``zenrec evaluate``,
    ``zenrec tune``, ``zenrec train`` and benchmarks. The user's filters are merged with the
    preset's own, which still apply: a preset threshold (``loo-full``'s 5-core, ``recbole``'s
    ML-1M ``rating >= 3``) is a floor a user may tighten but not loosen. Filters apply to the
    whole log, before the split, for every preset (temporal ones included).

    Args:
        ds: The loaded dataset.
        protocol: The preset.
        user_filters: ``min_rating``, ``min_user_count``, ``min_item_count``, ``duplicates``
            (``None`` values are ignored).

    Returns:
        The filtered dataset; its ``filters`` list what was applied, in order.

    Example:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> prepare_dataset(ds, get_protocol("loo-full")).filters[-1].split(" (")[0]
        'k-core users >= 5, items >= 5'
    """
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
    """Result of fitting and evaluating one model under a protocol (all folds).

    ``metrics`` is the mean over folds; ``metrics_warm`` and ``metrics_cold`` (ranking
    protocols) are the same over test users with and without training interactions, and
    ``test_coverage`` the first fold's counts (see :class:`~zenrec.evaluation.EvalResult`).
    """

    metrics: dict[str, float]
    fold_metrics: list[dict[str, float]]
    fit_seconds: float
    eval_seconds: float
    results: list[EvalResult]
    models: list[Any]
    splits: list[Split]
    metrics_warm: dict[str, float] = field(default_factory=dict)
    metrics_cold: dict[str, float] = field(default_factory=dict)
    test_coverage: dict[str, int] = field(default_factory=dict)
    data: Dataset | None = None


def _fold_mean(folds: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each key over the folds that have it."""
    keys = dict.fromkeys(k for fm in folds for k in fm)
    return {k: float(np.mean([fm[k] for fm in folds if k in fm])) for k in keys}


def run_protocol(
    make_model: Callable[[], Any],
    ds: Dataset,
    protocol: Protocol | str,
    seed: int | None = None,
    *,
    filters: dict[str, Any] | None = None,
    splits: list[Split] | None = None,
    on_fold: Callable[[int, int], None] | None = None,
) -> ProtocolRun:
    """Run a protocol preset end to end: its filters, its split, its seed, its evaluation.

    ``ds`` is filtered with :func:`prepare_dataset` (the preset's filters, and ``filters``)
    and split as the preset says; a fresh model is fitted on each fold's train part (with its
    valid part, when there is one) and evaluated once on test. The numbers equal
    ``zenrec evaluate --protocol NAME`` on the same data.

    Args:
        make_model: Returns a fresh, unfitted model.
        ds: The loaded (unfiltered) dataset.
        protocol: A preset name or :class:`Protocol` (e.g. ``get_protocol("temporal",
            test_fraction=0.2)``).
        seed: Split seed (default: the preset's published seed).
        filters: The user's extra filters (``min_rating``, ``min_user_count``...).
        splits: Ready splits to use instead (then ``ds`` is neither filtered nor split).
        on_fold: Called with (fold, n_folds) after each fold.

    Returns:
        A :class:`ProtocolRun`; ``.data`` is the filtered dataset that was split.
    """
    protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
    seed = protocol.default_seed if seed is None else seed
    data = None
    if splits is None:
        data = prepare_dataset(ds, protocol, filters)
        splits = protocol.splits(data, seed)
    elif filters:
        raise ConfigError("run_protocol: pass filters or ready splits, not both")
    fold_metrics, results, models = [], [], []
    fit_s = eval_s = 0.0
    for j, sp_ in enumerate(splits):
        model = make_model()
        t0 = time.perf_counter()
        model.fit(sp_.train, sp_.valid)
        fit_s += time.perf_counter() - t0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = protocol.evaluate(model, sp_, "test", seed=seed)
        for w in caught:  # re-raised at the caller's line (the evaluator's points at this file)
            warnings.warn(w.message, w.category, stacklevel=2)
        eval_s += res.seconds
        fold_metrics.append(res.metrics)
        results.append(res)
        models.append(model)
        if on_fold:
            on_fold(j + 1, len(splits))
    return ProtocolRun(
        _fold_mean(fold_metrics),
        fold_metrics,
        fit_s,
        eval_s,
        results,
        models,
        splits,
        metrics_warm=_fold_mean([r.metrics_warm for r in results]),
        metrics_cold=_fold_mean([r.metrics_cold for r in results]),
        test_coverage=dict(results[0].test_coverage),
        data=data,
    )
