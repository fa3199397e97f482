"""``zenrec.evaluate``: one call that evaluates a fitted model the way the protocols do."""

from __future__ import annotations

from collections.abc import Sequence

from zenrec._errors import ConfigError
from zenrec.data.dataset import Dataset
from zenrec.evaluation.evaluator import (
    EvalResult,
    _evaluate_ranking,
    evaluate_rating,
    evaluate_sampled,
)
from zenrec.evaluation.protocols import Protocol, get_protocol
from zenrec.evaluation.scorer import Scorer
from zenrec.splits import Split

__all__ = ["evaluate"]

_DEFAULT_METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit")


def evaluate(
    model: Scorer,
    data: Split | Dataset,
    *,
    protocol: str | Protocol | None = None,
    exclude: Sequence[Dataset | None] | None = None,
    ks: Sequence[int] | None = None,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
) -> EvalResult:
    """Evaluate a fitted model on a split's test part (or on a test Dataset).

    Items each user already had are masked, as every protocol does: with a
    :class:`~zenrec.splits.Split`, its train and valid items; with a test Dataset, the
    model's training interactions. Pass ``exclude=()`` to mask nothing (not recommended: seen
    items then crowd the top-K and the numbers mean something else).

    Args:
        model: A fitted recommender.
        data: The Split the model was fitted on (its ``test`` part is evaluated), or a test
            Dataset.
        protocol: A preset name (``"msrec"``, ``"recbole"``, ``"loo-uni100"``...) or
            :class:`~zenrec.evaluation.Protocol` whose mode, cutoffs and metrics to use; by
            default full ranking (ranking models) or RMSE/MAE (rating models).
        exclude: Parts whose items are masked (``None``: as above; ``()``: none).
        ks: Cutoffs (default: the protocol's, else ``(10,)``).
        metrics: Metric names (default: the protocol's, else precision, recall, ndcg, map,
            mrr and hit).
        seed: Seed of sampled negatives (``sampled`` protocols only).

    Returns:
        An :class:`~zenrec.evaluation.EvalResult`: ``.metrics`` (means), ``.to_frame()``
        (per-user values as a DataFrame).

    Examples:
        >>> import zenrec
        >>> from zenrec.splits import user_stratified_split
        >>> ds = zenrec.synthetic_dataset(n_users=60, n_items=40, seed=0)
        >>> split = user_stratified_split(ds, 0.75, seed=0)
        >>> model = zenrec.create_model("pop").fit(split.train)
        >>> res = zenrec.evaluate(model, split)
        >>> sorted(res.metrics)[:3]
        ['avg_popularity@10', 'coverage@10', 'gini@10']
    """
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    task = getattr(model, "task", "ranking")
    mode = proto.mode if proto is not None else ("rating" if task == "rating" else "full")
    if mode == "rating":
        if exclude is not None or ks is not None:
            raise ConfigError(
                "evaluate: exclude and ks apply to ranking, not to rating metrics (RMSE/MAE)"
            )
        return evaluate_rating(model, data)
    if proto is not None:
        ks = tuple(proto.ks) if ks is None else ks
        metrics = tuple(proto.metrics) if metrics is None else metrics
    ks = (10,) if ks is None else ks
    metrics = _DEFAULT_METRICS if metrics is None else metrics
    if mode == "sampled":
        assert proto is not None
        return evaluate_sampled(
            model, data, exclude, n_negatives=proto.n_negatives, ks=ks, metrics=metrics, seed=seed
        )
    return _evaluate_ranking(
        model,
        data,
        exclude,
        ks=ks,
        metrics=metrics,
        batch_size=None,
        beyond_accuracy=True,
        stacklevel=3,
    )
