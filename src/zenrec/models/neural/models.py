"""Neural recommenders: BPR-MF, GMF, NCF-MLP, NeuMF, MLP ranker and two-tower retrieval.

Each wraps a pure module of :mod:`zenrec.models.neural.nn`; the wrapper owns the config, the
vocabularies, the feature encoder and training (through the shared
:class:`~zenrec.models.neural.trainer.Trainer`). Papers: Rendle et al. 2009 (BPR); He et al.
2017 (NCF); Covington et al. 2016 and Cheng et al. 2016 (feature MLP ranking); Yi et al. 2019
(two-tower retrieval with sampled softmax and log-Q correction).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Protocol, Self, TypeVar, runtime_checkable

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from zenrec._arrays import unique
from zenrec._errors import ConfigError, DataError, NotFittedError
from zenrec._threads import configured_threads
from zenrec.data.dataset import Dataset
from zenrec.models._linalg import cosine_similarities, implicit_fold_in
from zenrec.models.base import Recommender
from zenrec.models.defaults import AUTO, Auto, interaction_batch
from zenrec.models.neural import nn as zn
from zenrec.models.neural.features import FeatureEncoder, build_feature_encoder
from zenrec.models.neural.losses import (
    BCELoss,
    BPRLoss,
    FullSoftmaxLoss,
    MSELoss,
    SampledSoftmaxLoss,
)
from zenrec.models.neural.sampling import NegativeSampler
from zenrec.models.neural.trainer import (
    RunOptions,
    Trainer,
    TrainingConfig,
    TrainResult,
    resolve_device,
)
from zenrec.splits import user_random_split

__all__ = [
    "BPRMF",
    "GMF",
    "NCFMLP",
    "BPRMFConfig",
    "GMFConfig",
    "MLPRanker",
    "MLPRankerConfig",
    "NCFMLPConfig",
    "NeuMF",
    "NeuMFConfig",
    "NeuralRecommender",
    "TwoTower",
    "TwoTowerConfig",
]

LossName = Literal["bpr", "bce", "softmax", "full_softmax"]


def _parse_metric(metric: str) -> tuple[str, int | None]:
    if "@" in metric:
        name, k = metric.split("@", 1)
        if not k.isdigit():
            raise ConfigError(
                f"the 'valid_metric' parameter must look like 'ndcg@10' or 'rmse'; got {metric!r}"
            )
        return name, int(k)
    return metric, None


_M = TypeVar("_M", bound=zn.ScoringModule)


@runtime_checkable
class _LossConfig(Protocol):
    """A config with a ``loss`` field (every neural config except the MLP ranker's)."""

    loss: str


@dataclass(frozen=True)
class TaskOptions:
    """Training options of the interaction task, read from a model's typed config."""

    n_negatives: int = 1
    """Sampled negatives per positive (BPR/BCE losses)."""
    logq_correction: bool = True
    """Subtract log item frequency from in-batch softmax logits."""
    inbatch_negatives: int = 0
    """Group size of the in-batch softmax (0: the whole batch)."""
    id_dropout: float = 0.0
    """Probability of dropping a user/item id (feature models)."""
    context_dropout: float = 0.0
    """Probability of dropping the context features of a row."""
    init_std: float = 0.1
    """Standard deviation of the initial embeddings."""


class _InteractionTask:
    """Training rows are the interactions of ``train``; tensors stay on the device and batches
    are gathered by index (no per-sample Python)."""

    def __init__(self, model: NeuralRecommender, train: Dataset, device: torch.device) -> None:
        c = model.config
        self.model = model
        self.module = model._require_module()
        self.device = device
        self.loss_name = model._loss_name()
        self.n_rows = len(train)
        self.users = torch.as_tensor(train.users, device=device)
        self.items = torch.as_tensor(train.items, device=device)
        labels = model._labels(train)
        self.labels = (
            None if labels is None else torch.as_tensor(labels, dtype=torch.float32, device=device)
        )
        enc = model.encoder_
        assert enc is not None
        self.context = {
            k: torch.as_tensor(v, device=device) for k, v in enc.context_inputs(train).items()
        }
        opts = model._task_options()
        self.n_neg = opts.n_negatives
        counts = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
        self.sampler = None
        if self.loss_name in ("bpr", "bce"):
            self.sampler = NegativeSampler(
                train.n_items,
                counts,
                c.negative_sampling,
                c.popularity_alpha,
                train.users,
                train.items,
                device,
            )
        q = np.maximum(counts, 1.0) / max(1.0, counts.sum())
        self.log_q = torch.as_tensor(np.log(q), dtype=torch.float32, device=device)
        self.logq_correction = opts.logq_correction
        self.inbatch_negatives = opts.inbatch_negatives
        self.id_dropout = opts.id_dropout
        self.context_dropout = opts.context_dropout
        # embedding rows one step reads (the trainer's sparse_embeddings='auto' compares the
        # tables with it): user, positive and negatives (or the batch's items), plus history
        per_row = (
            2 + (self.n_neg if self.sampler is not None else 0) + int(getattr(c, "history_len", 0))
        )
        self.rows_per_step = model._training_config().batch_size * per_row
        self.losses = {
            "bpr": BPRLoss(),
            "bce": BCELoss(),
            "softmax": SampledSoftmaxLoss(),
            "full_softmax": FullSoftmaxLoss(),
            "mse": MSELoss(),
            "click": BCELoss(),
        }

    def batch(self, rows: Tensor, gen: torch.Generator) -> dict[str, Any]:
        b: dict[str, Any] = {"u": self.users[rows], "i": self.items[rows]}
        n = rows.numel()
        if self.sampler is not None:
            b["neg"] = self.sampler.sample(b["u"], self.n_neg, gen)
        if self.labels is not None:
            b["y"] = self.labels[rows]
        if self.context:
            keep = torch.rand(n, generator=gen, device=self.device) >= self.context_dropout
            b["ctx"] = {
                k: torch.where(keep, v[rows], torch.zeros_like(v[rows]))
                for k, v in self.context.items()
            }
        if self.id_dropout > 0:
            b["drop_u"] = torch.rand(n, generator=gen, device=self.device) < self.id_dropout
            b["drop_i"] = torch.rand(n, generator=gen, device=self.device) < self.id_dropout
        return b

    def _inbatch_softmax(
        self, module: zn.ScoringModule, ur: Tensor, ir: Tensor, items: Tensor
    ) -> Tensor:
        """In-batch sampled softmax; batches larger than ``inbatch_negatives`` are split into
        groups of that size, each positive contrasted with its group's items only, so the cost
        is B x G instead of B x B (the mean over groups, weighted by their size)."""
        log_q = self.log_q[items] if self.logq_correction else None
        g = self.inbatch_negatives
        n = items.numel()
        if not g or n <= g or not isinstance(ur, Tensor):
            return self.losses["softmax"](module.score_matrix(ur, ir), items, log_q)  # (B, B)
        total = ur.new_zeros(())
        for s in range(0, n, g):
            sl = slice(s, min(n, s + g))
            part = self.losses["softmax"](
                module.score_matrix(ur[sl], ir[sl]), items[sl], None if log_q is None else log_q[sl]
            )
            total = total + part * (sl.stop - sl.start)
        return total / n

    def loss(self, module: nn.Module, b: dict[str, Any]) -> Tensor:
        if not isinstance(module, zn.ScoringModule):
            raise TypeError(f"expected a ScoringModule to train; got {type(module).__name__}")
        m = self.model
        u_in = m._user_inputs(b["u"], b.get("ctx"), target=b["i"], drop=b.get("drop_u"))
        ur = module.user_repr(u_in)
        ir = module.item_repr(m._item_inputs(b["i"], drop=b.get("drop_i")))
        name = self.loss_name
        if name == "softmax":
            return self._inbatch_softmax(module, ur, ir, b["i"])
        if name == "full_softmax":
            logits = module.score_matrix(ur, module.item_repr(m._all_item_inputs()))  # (B, N)
            return self.losses[name](logits, b["i"])
        pos = module.score_pairs(ur, ir)  # (B,)
        if name in ("mse", "click"):
            return (
                self.losses[name](pos, b["y"])
                if name == "mse"
                else self.losses[name](pos, labels=b["y"])
            )
        neg_items = b["neg"]  # (B, K)
        bsz, k = neg_items.shape
        ur_rep = (
            tuple(x.repeat_interleave(k, 0) for x in ur)
            if isinstance(ur, tuple)
            else ur.repeat_interleave(k, 0)
        )
        neg = module.score_pairs(ur_rep, module.item_repr(m._item_inputs(neg_items.reshape(-1))))
        return self.losses[name](pos, neg.view(bsz, k))  # (B,), (B, K)


class NeuralRecommender(Recommender):
    """Base of the neural recommenders: encoder, module, trainer, scoring and bundle state."""

    allowed_losses: ClassVar[tuple[str, ...]] = ("bpr", "bce", "softmax", "full_softmax")
    score_budget: ClassVar[int] = 2**24  # floats of the (B, N, H) tensor of pairwise scorers
    config: TrainingConfig

    def __init__(self, config: Any = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.run_options = RunOptions()
        self.module_: zn.ScoringModule | None = None
        self.encoder_: FeatureEncoder | None = None
        self.train_result_: TrainResult | None = None
        self.device_: torch.device | None = None
        self._run_config: TrainingConfig | None = None  # set by fit: batch/epochs resolved
        self._tables: dict[str, Tensor] | None = None
        self.global_mean_: float = 0.0
        loss = self._loss_name()
        if loss not in self.allowed_losses + ("mse", "click"):
            raise ConfigError(
                f"the 'loss' parameter of {self.name} must be one of {list(self.allowed_losses)}; "
                f"got {loss!r}"
            )
        _parse_metric(self.config.valid_metric)

    def set_run_options(
        self,
        *,
        checkpoint_dir: Any = None,
        resume: bool = False,
        stop_after_epoch: int | None = None,
    ) -> NeuralRecommender:
        """Checkpoint directory, resume flag and the stop-after test hook for the next ``fit``."""
        from pathlib import Path

        self.run_options = RunOptions(
            None if checkpoint_dir is None else Path(checkpoint_dir), resume, stop_after_epoch
        )
        return self

    # ------------------------------------------------------------------ hooks for subclasses
    def _loss_name(self) -> str:
        """The training loss: the config's ``loss`` (a model whose config has none overrides this)."""
        if not isinstance(self.config, _LossConfig):
            raise NotImplementedError(f"{self.name}: the config has no 'loss'; override _loss_name")
        return str(self.config.loss)

    def _labels(self, train: Dataset) -> np.ndarray | None:
        return None

    def _build_encoder(self, train: Dataset) -> FeatureEncoder:
        return build_feature_encoder(train)

    @abstractmethod
    def _build_module(self) -> zn.ScoringModule: ...

    def _new_module(self) -> zn.ScoringModule:
        # torch's layer constructors draw their default initialisation from the global RNG;
        # fork it so that building a model leaves the caller's random state alone (the
        # weights are then re-initialised from the model's own generator).
        with torch.random.fork_rng(devices=[]):
            return self._build_module()

    def _after_init(self, train: Dataset, valid: Dataset | None) -> None:
        """Change the freshly initialised module (e.g. NeuMF pre-training)."""

    def _task_options(self) -> TaskOptions:
        """The options of this model's config that the interaction task uses (typed access by
        config class; models of other modules override this to add theirs)."""
        c = self.config
        opts: dict[str, Any] = {}
        if isinstance(c, (_IdModelConfig, MLPRankerConfig, TwoTowerConfig)):
            opts["n_negatives"] = c.n_negatives
        if isinstance(c, (_IdModelConfig, _FeatureConfig)):
            opts["init_std"] = c.init_std
        if isinstance(c, (BPRMFConfig, TwoTowerConfig)):
            opts.update(logq_correction=c.logq_correction, inbatch_negatives=c.inbatch_negatives)
        if isinstance(c, _FeatureConfig):
            opts.update(id_dropout=c.id_dropout, context_dropout=c.context_dropout)
        return TaskOptions(**opts)

    def _make_task(self, train: Dataset) -> Any:
        """The trainer's :class:`TrainingTask` (default: one row per training interaction)."""
        assert self.device_ is not None
        return _InteractionTask(self, train, self.device_)

    def _after_fit(self, train: Dataset, valid: Dataset | None) -> None:
        """Runs once the best weights are restored (e.g. SASRec extends its histories)."""

    # ------------------------------------------------------------------ inputs
    def _table_tensors(self) -> dict[str, Tensor]:
        if self._tables is None:
            assert self.encoder_ is not None and self.device_ is not None
            self._tables = {
                k: torch.as_tensor(v, device=self.device_) for k, v in self.encoder_.tables.items()
            }
        return self._tables

    def _user_inputs(
        self,
        users: Tensor,
        ctx: dict[str, Tensor] | None = None,
        target: Tensor | None = None,
        drop: Tensor | None = None,
    ) -> dict[str, Tensor]:
        assert self.encoder_ is not None
        t = self._table_tensors()
        out = {"user": users + 1 if drop is None else torch.where(drop, 0, users + 1)}
        for f in self.encoder_.spec.side("user"):
            x = t[f"user.{f.name}"][users]
            if f.kind == "history" and target is not None:
                x = torch.where(x == (target + 1).unsqueeze(1), 0, x)  # hide the target item
            out[f.name] = x
        for f in self.encoder_.spec.side("context"):
            if ctx is not None:
                out[f.name] = ctx[f.name]
            else:
                dtype = torch.float32 if f.kind == "numeric" else torch.int64
                out[f.name] = torch.zeros(users.shape[0], dtype=dtype, device=users.device)
        return out

    def _item_inputs(self, items: Tensor, drop: Tensor | None = None) -> dict[str, Tensor]:
        assert self.encoder_ is not None
        t = self._table_tensors()
        out = {"item": items + 1 if drop is None else torch.where(drop, 0, items + 1)}
        for f in self.encoder_.spec.side("item"):
            out[f.name] = t[f"item.{f.name}"][items]
        return out

    def _all_item_inputs(self) -> dict[str, Tensor]:
        assert self.device_ is not None
        return self._item_inputs(torch.arange(self.n_items, device=self.device_))

    # ------------------------------------------------------------------ fitting
    holdout_kind: ClassVar[Literal["random", "none"]] = "random"
    """How :meth:`fit` carves its own validation part when given none (``config.holdout``):
    a per-user random share, or not at all (sequence models, whose validation is next-item)."""

    def fit(self, train: Dataset, valid: Dataset | None = None) -> Self:
        """Train on ``train``, early-stopping on ``valid``.

        Two settings are resolved here from the data, and recorded in the bundle: a
        ``batch_size`` of ``"auto"`` (:meth:`_auto_batch_size`; ``resolved_params_``), and,
        without ``valid`` (and with ``holdout`` > 0 and ``patience`` > 0), the epoch count:
        early stopping on a held-out share of ``train`` finds it, then the model retrains on
        all of ``train`` for that many epochs (``holdout_``).
        """
        c = self.config
        self.resolved_params_: dict[str, Any] = {}
        self.holdout_: dict[str, Any] | None = None
        run_config = c
        if c.batch_size == "auto":
            self.resolved_params_["batch_size"] = self._auto_batch_size(train)
            run_config = c.model_copy(update=self.resolved_params_)
        if (
            (valid is None or not len(valid))
            and c.holdout > 0
            and c.patience > 0
            and self.holdout_kind == "random"
            and len(train)
        ):
            inner = user_random_split(train, (1.0 - c.holdout, c.holdout), seed=c.seed)
            if len(inner.test) and len(inner.train):
                probe = type(self)(run_config)
                probe.fit(inner.train, inner.test)
                r = probe.train_result_
                if r is not None and r.best_epoch:
                    run_config = run_config.model_copy(
                        update={
                            "epochs": int(r.best_epoch),
                            "schedule_epochs": c.schedule_epochs or c.epochs,
                        }
                    )
                    self.holdout_ = {
                        "share": c.holdout,
                        "interactions": len(inner.test),
                        "best_epoch": int(r.best_epoch),
                        "best_valid": r.best_score,
                        "seconds": probe.fit_seconds_,
                    }
        self._run_config = run_config
        return super().fit(train, valid)

    def _auto_batch_size(self, train: Dataset) -> int:
        """The ``batch_size`` that ``"auto"`` resolves to on ``train``: positives per step for
        64-128 steps per epoch (:func:`~zenrec.models.defaults.interaction_batch`). Models that
        batch other rows (users, graph edges) override it."""
        return interaction_batch(len(train))

    def _training_config(self) -> Any:
        """The config the trainer runs: the model's, with the batch and epoch count resolved in
        :meth:`fit`."""
        return self._run_config or self.config

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        if len(train) == 0:
            raise DataError(f"{self.name}: the training data '{train.name}' has no interactions")
        threads_before = torch.get_num_threads()
        torch.set_num_threads(c.num_threads or configured_threads())
        try:
            self.device_ = resolve_device(c.device)
            self._tables = None
            if train.ratings is not None:
                self.global_mean_ = float(train.ratings.mean())
            self.encoder_ = self._build_encoder(train)
            module = self._new_module()
            zn.init_parameters(
                module, torch.Generator().manual_seed(c.seed), self._task_options().init_std
            )
            self.module_ = module.to(self.device_)
            self._after_init(train, valid)
            task = self._make_task(train)
            gen = torch.Generator(device=self.device_).manual_seed(c.seed + 1)
            validate = (
                self._make_validate(train, valid) if valid is not None and len(valid) else None
            )
            trainer = Trainer(self._training_config(), self.device_, self.run_options)
            result = trainer.fit(task, gen, validate, self.epoch_callback)
            self.train_result_ = result
            self.history_ = result.history
            self._after_fit(train, valid)
        finally:
            torch.set_num_threads(threads_before)

    def _make_validate(self, train: Dataset, valid: Dataset) -> Any:
        from zenrec.evaluation.evaluator import evaluate_ranking, evaluate_rating

        c = self.config
        name, k = _parse_metric(c.valid_metric)
        if c.valid_users and unique(valid.users).size > c.valid_users:
            rng = np.random.default_rng(c.seed)
            chosen = rng.choice(unique(valid.users), c.valid_users, replace=False)
            valid = valid.subset(np.isin(valid.users, chosen))
        if name in ("rmse", "mae"):
            return lambda: evaluate_rating(self, valid).metrics
        if name in ("auc", "gauc", "logloss"):
            return lambda: self._validate_ctr(valid)
        if k is None:
            raise ConfigError(
                f"the 'valid_metric' parameter of {self.name} needs a cutoff, "
                f"e.g. '{name}@10'; got {c.valid_metric!r}"
            )
        return lambda: (
            evaluate_ranking(
                self, valid, [train], ks=[k], metrics=[name], beyond_accuracy=False
            ).metrics
        )

    def _validate_ctr(self, valid: Dataset) -> dict[str, float]:
        from zenrec.evaluation.ctr import ctr_samples
        from zenrec.evaluation.evaluator import evaluate_ctr

        labels = self._labels(valid)
        users, items = valid.users, valid.items
        if labels is None:
            # implicit data: each validation positive against 4 sampled unseen items (seeded)
            assert self.seen_ is not None
            n_u = self.seen_.shape[0]
            seen = Dataset(
                users=np.repeat(np.arange(n_u), np.diff(self.seen_.indptr)),
                items=self.seen_.indices.astype(np.int64),
                user_vocab=valid.user_vocab,
                item_vocab=valid.item_vocab,
            )
            users, items, labels = ctr_samples(valid, [seen], n_negatives=4, seed=self.config.seed)
        s = self._predict_pairs(users, items)
        p = 1.0 / (1.0 + np.exp(-s.astype(np.float64)))
        return evaluate_ctr(p, labels, groups=users).metrics

    @property
    def predicts_probability(self) -> bool:
        """Whether sigmoid(score) is a trained click probability (pointwise BCE training)."""
        return self._loss_name() in ("bce", "click")

    def predict_proba(self, users: Any, items: Any) -> np.ndarray:
        """sigmoid of the score of raw (user, item) pairs: a click probability for models
        trained with a pointwise log loss (see :attr:`predicts_probability`)."""
        s = self.predict(users, items).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-s))

    # ------------------------------------------------------------------ scoring
    def _require_module(self) -> zn.ScoringModule:
        if self.module_ is None:
            self._check_fitted()
            raise ConfigError(f"{self.name}: the model has vocabularies but no trained module")
        return self.module_

    def _module_of(self, kind: type[_M]) -> _M:
        """The trained module, checked to be a ``kind`` (e.g. ``zn.MF`` for BPR-MF)."""
        m = self._require_module()
        if not isinstance(m, kind):
            raise TypeError(
                f"{self.name}: the module is a {type(m).__name__}, expected {kind.__name__}"
            )
        return m

    def _vocab_sizes(self) -> tuple[int, int]:
        """(n_users, n_items) of the vocabularies, which ``fit`` sets before building the module."""
        if self.user_vocab is None or self.item_vocab is None:
            raise NotFittedError(
                f"This {self.name} instance has no vocabularies yet. Call 'fit' first."
            )
        return len(self.user_vocab), len(self.item_vocab)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        module = self._require_module()
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                u = torch.as_tensor(np.asarray(users, np.int64), device=self.device_)
                ir = module.item_repr(self._all_item_inputs())  # (N, ...)
                if getattr(module, "dot_product", False):
                    out = module.score_matrix(module.user_repr(self._user_inputs(u)), ir)  # (B, N)
                else:
                    width = max(
                        64,
                        getattr(
                            getattr(module, "mlp", None), "first_u", nn.Linear(1, 64)
                        ).out_features,
                    )
                    chunk = max(1, self.score_budget // max(1, self.n_items * width))
                    parts = [
                        module.score_matrix(
                            module.user_repr(self._user_inputs(u[s : s + chunk])), ir
                        )
                        for s in range(0, u.numel(), chunk)
                    ]
                    out = torch.cat(parts, 0)
                return out.float().cpu().numpy()
        finally:
            module.train(was_training)

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        module = self._require_module()
        was_training = module.training
        module.eval()
        out = []
        try:
            with torch.no_grad():
                for s in range(0, users.size, 65536):
                    u = torch.as_tensor(
                        users[s : s + 65536], dtype=torch.int64, device=self.device_
                    )
                    i = torch.as_tensor(
                        items[s : s + 65536], dtype=torch.int64, device=self.device_
                    )
                    out.append(
                        module.score_pairs(
                            module.user_repr(self._user_inputs(u)),
                            module.item_repr(self._item_inputs(i)),
                        )
                        .float()
                        .cpu()
                    )
        finally:
            module.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros(0, np.float32)

    # ------------------------------------------------------------------ persistence
    def _training_meta(self) -> dict[str, Any]:
        """What the bundle records of training: best epoch and validation score, and the
        holdout that chose the epoch count (None when validation data was given)."""
        r = self.train_result_
        return {
            "best_epoch": None if r is None else r.best_epoch,
            "best_valid": None if r is None else r.best_score,
            "holdout": getattr(self, "holdout_", None),
            "resolved": getattr(self, "resolved_params_", {}),
        }

    def _meta_state(self) -> dict[str, Any]:
        assert self.encoder_ is not None
        r = self.train_result_
        return {
            "features": self.encoder_.to_json(),
            "global_mean": self.global_mean_,
            **self._training_meta(),
            "seconds_to_best": None if r is None else r.seconds_to_best,
        }

    def _load_training_meta(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_training_meta` recorded of the resolved settings."""
        self.resolved_params_ = dict(state.get("resolved") or {})
        self.holdout_ = state.get("holdout")

    def _load_meta_state(self, state: dict[str, Any]) -> None:
        self._pending_meta = state
        self.global_mean_ = float(state.get("global_mean", 0.0))
        self._load_training_meta(state)

    def _state(self) -> dict[str, np.ndarray]:
        module = self._require_module()
        assert self.encoder_ is not None
        out = {
            f"module.{k}": v.detach().float().cpu().numpy()
            if v.is_floating_point()
            else v.detach().cpu().numpy()
            for k, v in module.state_dict().items()
        }
        out.update(self.encoder_.arrays())
        return out

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        meta = getattr(self, "_pending_meta", None)
        if not meta or "features" not in meta:
            raise DataError(f"{self.name} bundle lacks its feature spec (model_state.features)")
        self.encoder_ = FeatureEncoder.from_state(meta["features"], arrays)
        self.device_ = resolve_device(self.config.device)
        self._tables = None
        module = self._new_module()
        sd = {
            k[len("module.") :]: torch.as_tensor(v)
            for k, v in arrays.items()
            if k.startswith("module.")
        }
        module.load_state_dict(sd)
        self.module_ = module.to(self.device_).eval()

    def _predict_fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(users.size, self.global_mean_ if self.task == "rating" else 0.0, np.float32)


# ====================================================================== configs
class _IdModelConfig(TrainingConfig):
    n_negatives: int = Field(1, ge=1)
    """Sampled negatives per positive (bpr/bce losses)."""
    init_std: float = Field(0.1, gt=0)
    """Standard deviation of the initial embeddings."""


class BPRMFConfig(_IdModelConfig):
    """BPR-MF: dot-product matrix factorisation trained with BPR (or a softmax loss)."""

    factors: int = Field(64, ge=1)
    """Embedding size."""
    loss: LossName = "bpr"
    """Training loss."""
    logq_correction: bool = True
    """Subtract log item frequency from in-batch softmax logits."""
    inbatch_negatives: int = Field(1024, ge=0)
    """Softmax loss: contrast each positive with at most this many in-batch items (larger
    batches are split into groups), so a step costs B x this instead of B x B (0: no bound)."""
    epochs: int = Field(40, ge=1)
    lr: float = Field(5e-3, gt=0)
    batch_size: Annotated[int, Field(ge=1)] | Auto = AUTO
    """Interactions per step; 'auto': 64-128 steps per epoch, 256..4096 (ML-1M: 4096)."""
    n_negatives: int = Field(4, ge=1)
    weight_decay: float = Field(1e-6, ge=0)
    init_std: float = Field(0.01, gt=0)
    eval_every: int = Field(2, ge=1)
    patience: int = Field(2, ge=0)
    """Validation rounds (of ``eval_every`` epochs) without improvement before stopping; the
    best weights are restored, so a shorter wait changes only the time (ML-1M: best epoch 10,
    stop at 14 instead of 16)."""


class BPRMF(NeuralRecommender):
    """BPR-MF (Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", 2009).

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=50, n_items=40, seed=0)
        >>> m = BPRMF(factors=8, epochs=2, batch_size=256, progress=False).fit(ds)
        >>> m.recommend([1000], k=3).item_lists[0].shape
        (3,)
    """

    name = "bprmf"
    Config = BPRMFConfig
    config: BPRMFConfig

    def _build_module(self) -> zn.ScoringModule:
        return zn.MF(*self._vocab_sizes(), self.config.factors)

    fold_in_alpha: ClassVar[float] = 20.0
    """Confidence of a history item in the fold-in solve (unobserved items weigh 1)."""
    fold_in_reg: ClassVar[float] = 0.01
    """Fold-in L2 regularisation, relative to the mean squared item-embedding norm."""

    def item_embeddings(self) -> np.ndarray:
        """The (n_items, factors) item embedding matrix (rows in catalog order)."""
        m = self._module_of(zn.MF)
        return m.item.weight[1:].detach().float().cpu().numpy()

    def _fold_in_parts(self) -> tuple[np.ndarray, np.ndarray, float]:
        parts = getattr(self, "_fold_in_cache", None)
        if parts is None or parts[0].shape[0] != self.n_items:
            q = self.item_embeddings()
            gram = q.astype(np.float64).T @ q.astype(np.float64)
            reg = self.fold_in_reg * float(np.trace(gram)) / max(1, q.shape[0]) + 1e-12
            parts = (q, gram, reg)
            self._fold_in_cache = parts
        return parts

    def _score_from_items(self, items: np.ndarray) -> np.ndarray:
        """Fold-in: the implicit-feedback ridge solve of a user vector against the item
        embeddings (see :func:`zenrec.models.base.implicit_fold_in`), then ``<x, q_i>``."""
        q, gram, reg = self._fold_in_parts()
        x = implicit_fold_in(q, gram, items, alpha=self.fold_in_alpha, reg=reg)
        return q @ x

    def _similar_items(self, items: np.ndarray) -> np.ndarray:
        return cosine_similarities(self.item_embeddings(), items)


class GMFConfig(_IdModelConfig):
    """GMF (NCF's generalised matrix factorisation)."""

    factors: int = Field(32, ge=1)
    """Embedding size."""
    loss: Literal["bce", "bpr"] = "bce"
    """Pointwise log loss with sampled negatives (as in NCF), or BPR."""
    n_negatives: int = Field(8, ge=1)
    """Sampled negatives per positive. 8 (was NCF's 4) scored higher on validation NDCG@10 on
    all four datasets of the defaults-transfer benchmark: ML-1M 0.1874 vs 0.1793, ML-100K
    0.2289 vs 0.2218, ml-latest-small 0.1506 vs 0.1416, sparse synthetic 0.4890 vs 0.4776."""
    epochs: int = Field(30, ge=1)
    lr: float = Field(2e-3, gt=0)
    batch_size: Annotated[int, Field(ge=1)] | Auto = AUTO
    """Positives per step; 'auto': 64-128 steps per epoch, 256..4096 (ML-1M: 4096), as BPR-MF.
    At the former fixed 4096 the sparse synthetic set got 8 steps per epoch and stopped at the
    30-epoch cap (validation NDCG@10 0.462; 512: 0.478)."""


class GMF(NeuralRecommender):
    """GMF (He et al., "Neural Collaborative Filtering", WWW 2017)."""

    name = "gmf"
    Config = GMFConfig
    config: GMFConfig
    allowed_losses = ("bce", "bpr")

    def _build_module(self) -> zn.ScoringModule:
        return zn.GMF(*self._vocab_sizes(), self.config.factors)


class NCFMLPConfig(_IdModelConfig):
    """NCF's MLP model."""

    factors: int = Field(32, ge=1)
    """Embedding size of users and items."""
    layers: list[int] = Field(default_factory=lambda: [64, 32, 16], min_length=1)
    """Hidden layer widths."""
    loss: Literal["bce", "bpr"] = "bce"
    """Pointwise log loss with sampled negatives, or BPR."""
    n_negatives: int = Field(4, ge=1)
    epochs: int = Field(30, ge=1)
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(4096, ge=1)
    valid_users: int = Field(2000, ge=0)

    @model_validator(mode="after")
    def _positive_layers(self) -> NCFMLPConfig:
        if any(w < 1 for w in self.layers):
            raise ValueError(f"layer widths must be >= 1; got {self.layers}")
        return self


class NCFMLP(NeuralRecommender):
    """NCF-MLP (He et al., WWW 2017): an MLP over concatenated user and item embeddings."""

    name = "ncf-mlp"
    Config = NCFMLPConfig
    config: NCFMLPConfig
    allowed_losses = ("bce", "bpr")

    def _build_module(self) -> zn.ScoringModule:
        c = self.config
        return zn.NCFMLP(*self._vocab_sizes(), c.factors, c.layers)


class NeuMFConfig(_IdModelConfig):
    """NeuMF: GMF and MLP branches fused in one output layer."""

    gmf_factors: int = Field(64, ge=1)
    """GMF embedding size."""
    mlp_factors: int = Field(32, ge=1)
    """MLP embedding size."""
    layers: list[int] = Field(default_factory=lambda: [64, 32, 16], min_length=1)
    """MLP hidden widths."""
    loss: Literal["bce", "bpr"] = "bce"
    """Pointwise log loss with sampled negatives, or BPR."""
    pretrain: bool = False
    """Train GMF and NCF-MLP first and initialise NeuMF from them (He et al., section 3.4.1)."""
    pretrain_epochs: int = Field(10, ge=1)
    """Epochs of each pre-training run."""
    pretrain_alpha: float = Field(0.5, ge=0, le=1)
    """Weight of the GMF output layer in the fused layer after pre-training."""
    n_negatives: int = Field(4, ge=1)
    epochs: int = Field(20, ge=1)
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(4096, ge=1)
    weight_decay: float = Field(1e-6, ge=0)
    valid_users: int = Field(2000, ge=0)
    eval_every: int = Field(2, ge=1)


class NeuMF(NeuralRecommender):
    """NeuMF (He et al., WWW 2017), optionally initialised from trained GMF and NCF-MLP."""

    name = "neumf"
    Config = NeuMFConfig
    config: NeuMFConfig
    allowed_losses = ("bce", "bpr")

    def _build_module(self) -> zn.ScoringModule:
        c = self.config
        return zn.NeuMF(*self._vocab_sizes(), c.gmf_factors, c.mlp_factors, c.layers)

    def _new_module(self) -> zn.ScoringModule:
        # torch's layer constructors draw their default initialisation from the global RNG;
        # fork it so that building a model leaves the caller's random state alone (the
        # weights are then re-initialised from the model's own generator).
        with torch.random.fork_rng(devices=[]):
            return self._build_module()

    def _after_init(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        if not c.pretrain:
            return
        shared = c.model_dump(include=set(TrainingConfig.model_fields) - {"epochs"})
        shared.update(n_negatives=c.n_negatives, init_std=c.init_std, loss=c.loss)
        gmf = GMF(factors=c.gmf_factors, epochs=c.pretrain_epochs, **shared).fit(train, valid)
        mlp = NCFMLP(
            factors=c.mlp_factors, layers=c.layers, epochs=c.pretrain_epochs, **shared
        ).fit(train, valid)
        self.init_from(gmf, mlp)

    def init_from(self, gmf: GMF, mlp: NCFMLP) -> None:
        """Copy the embeddings and layers of a trained GMF and NCF-MLP into this NeuMF."""
        c = self.config
        m = self.module_
        g, p = gmf._module_of(zn.GMF), mlp._module_of(zn.NCFMLP)
        if not isinstance(m, zn.NeuMF):
            raise ConfigError(
                "NeuMF.init_from: fit NeuMF's vocabularies first (call from _after_init)"
            )
        if (
            g.user.weight.shape != m.gmf_user.weight.shape
            or p.user.weight.shape != m.mlp_user.weight.shape
        ):
            raise ConfigError(
                "NeuMF.init_from: GMF/MLP sizes differ from this NeuMF's "
                "gmf_factors/mlp_factors or vocabularies"
            )
        with torch.no_grad():
            m.gmf_user.weight.copy_(g.user.weight)
            m.gmf_item.weight.copy_(g.item.weight)
            m.mlp_user.weight.copy_(p.user.weight)
            m.mlp_item.weight.copy_(p.item.weight)
            m.mlp.load_state_dict(p.mlp.state_dict())
            a = c.pretrain_alpha
            m.out.weight.copy_(torch.cat([a * g.h.weight, (1 - a) * p.out.weight], 1))
            m.out.bias.copy_((1 - a) * p.out.bias)


class _FeatureConfig(TrainingConfig):
    user_features: list[str] | Literal["all"] = "all"
    """User features to encode ('all': every non-text feature of the dataset)."""
    item_features: list[str] | Literal["all"] = "all"
    """Item features to encode."""
    context: list[str] = Field(default_factory=list)
    """Context fields: 'hour', 'weekday' (from timestamps) or context columns."""
    context_dropout: float = Field(0.5, ge=0, le=1)
    """Probability of hiding an interaction's context in training (scoring has none)."""
    history_len: int = Field(0, ge=0)
    """Recent training items pooled into the user representation (0: none)."""
    id_dropout: float = Field(0.0, ge=0, lt=1)
    """Probability of hiding the user/item id in training (teaches feature-only fallback)."""
    init_std: float = Field(0.05, gt=0)
    """Standard deviation of the initial embeddings."""


class MLPRankerConfig(_FeatureConfig):
    """MLP ranker over user, item and context features."""

    head: Literal["implicit", "rating", "click"] = "implicit"
    """implicit: BCE against sampled negatives (top-K); rating: MSE; click: BCE on labels."""
    dim: int = Field(32, ge=1)
    """Embedding size of each field."""
    layers: list[int] = Field(default_factory=lambda: [128, 64], min_length=1)
    """Hidden layer widths."""
    dot_term: bool = True
    """Add the dot product of summed user-side and item-side field embeddings to the MLP."""
    n_negatives: int = Field(4, ge=1)
    """Sampled negatives per positive (implicit head)."""
    click_threshold: float = 4.0
    """Click head on rated data: label = rating >= threshold (0/1 data is used as is)."""
    epochs: int = Field(20, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-6, ge=0)
    valid_users: int = Field(2000, ge=0)
    eval_every: int = Field(2, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _head_metric(cls, data: Any) -> Any:
        if isinstance(data, dict) and "valid_metric" not in data:
            head = data.get("head", "implicit")
            if head == "rating":
                data = {**data, "valid_metric": "rmse"}
            elif head == "click":
                data = {**data, "valid_metric": "auc"}
        return data


class MLPRanker(NeuralRecommender):
    """Feature MLP ranker with rating, click or implicit (sampled-negative) heads.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=50, n_items=40, seed=0)
        >>> m = MLPRanker(head="rating", epochs=2, progress=False).fit(ds)
        >>> m.predict([1000], [1001]).shape
        (1,)
    """

    name = "mlpranker"
    Config = MLPRankerConfig
    config: MLPRankerConfig

    def __init__(self, config: Any = None, **params: Any) -> None:
        super().__init__(config, **params)
        if self.config.head == "rating":
            self.task = "rating"

    def _loss_name(self) -> str:
        return {"implicit": "bce", "rating": "mse", "click": "click"}[self.config.head]

    def _labels(self, train: Dataset) -> np.ndarray | None:
        head = self.config.head
        if head == "implicit":
            return None
        if train.ratings is None:
            raise DataError(
                f"mlpranker: head={head!r} needs a rating/label column in '{train.name}'; "
                "use head='implicit' for data without one"
            )
        if head == "rating":
            return train.ratings
        r = train.ratings
        binary = np.isin(unique(r), [0.0, 1.0]).all()
        return (r if binary else (r >= self.config.click_threshold)).astype(np.float32)

    def _build_encoder(self, train: Dataset) -> FeatureEncoder:
        c = self.config
        return build_feature_encoder(
            train,
            user_features=c.user_features,
            item_features=c.item_features,
            context=c.context,
            history_len=c.history_len,
        )

    def _build_module(self) -> zn.ScoringModule:
        c = self.config
        assert self.encoder_ is not None
        spec = self.encoder_.spec
        bias = self.global_mean_ if c.head == "rating" else 0.0
        return zn.MLPRanker(
            spec.side("user") + spec.side("context"),
            spec.side("item"),
            *self._vocab_sizes(),
            c.dim,
            c.layers,
            bias,
            c.dot_term,
        )


class TwoTowerConfig(_FeatureConfig):
    """Two-tower retrieval model."""

    dim: int = Field(64, ge=1)
    """Embedding size of each field."""
    layers: list[int] = Field(default_factory=lambda: [128], min_length=0)
    """Hidden widths of each tower (may be empty: a linear projection)."""
    out_dim: int = Field(64, ge=1)
    """Retrieval embedding size."""
    normalize: bool = True
    """L2-normalise tower outputs (cosine score divided by 'temperature')."""
    temperature: float = Field(0.2, gt=0)
    """Softmax temperature of the score. 0.2 (was 0.1) scored higher on validation NDCG@10 on
    all four datasets of the defaults-transfer benchmark: ML-1M 0.2040 vs 0.1994, ML-100K
    (msrec carve, holdout refit) 0.2506 vs 0.2294, ml-latest-small 0.1825 vs 0.1766, sparse
    synthetic 0.6189 vs 0.6067; 0.1 overfits (validation peaks at epoch 4-6 of 16 and falls),
    0.25-0.4 lost on ml-latest-small (0.177-0.154) and the sparse set (0.605-0.599)."""
    loss: LossName = "softmax"
    """In-batch sampled softmax (default), full softmax, BPR or BCE."""
    logq_correction: bool = True
    """Subtract log item frequency from in-batch softmax logits."""
    inbatch_negatives: int = Field(512, ge=0)
    """Softmax loss: contrast each positive with at most this many in-batch items (larger
    batches are split into groups), so a step costs B x this instead of B x B (0: the whole
    batch). On ML-1M, 512 cuts an epoch from about 27 s (the whole 2048 batch) to about 15 s;
    test NDCG@10 was 0.2434 after 16 epochs at 512 and 0.2425 after 8 on the whole batch."""
    n_negatives: int = Field(1, ge=1)
    """Sampled negatives per positive (bpr/bce losses)."""
    history_len: int = Field(50, ge=0)
    id_dropout: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(16, ge=1)
    lr: float = Field(3e-3, gt=0)
    lr_schedule: Literal["constant", "cosine", "linear", "step"] = "cosine"
    weight_decay: float = Field(1e-6, ge=0)
    eval_every: int = Field(2, ge=1)
    patience: int = Field(8, ge=0)
    """Validation rounds without improvement before stopping (the best weights are restored).
    8 rounds of 2 epochs let the 16-epoch cosine run finish: the validation curve dips after
    an early peak and climbs again as the rate decays (ML-100K msrec holdout: 0.1455 at epoch 4,
    0.1408-0.1439 at 6-10, 0.1495 at 12), and with 3 rounds the holdout refit stopped at
    epoch 4 (test NDCG@10 0.4035; model seeds 1 and 2, which stopped at 10-12: 0.4358, 0.4337).
    At temperature 0.2 the ML-1M best epoch is 14 of 16."""
    batch_size: int = Field(2048, ge=1)


class TwoTower(NeuralRecommender):
    """Two-tower retrieval (Yi et al., RecSys 2019): user tower (id, features, context, pooled
    recent history) and item tower (id, features), dot-product score, sampled softmax with
    log-Q correction.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=50, n_items=40, seed=0)
        >>> m = TwoTower(epochs=2, batch_size=128, progress=False).fit(ds)
        >>> m.item_embeddings().shape
        (40, 64)
    """

    name = "twotower"
    Config = TwoTowerConfig
    config: TwoTowerConfig

    def _build_encoder(self, train: Dataset) -> FeatureEncoder:
        c = self.config
        return build_feature_encoder(
            train,
            user_features=c.user_features,
            item_features=c.item_features,
            context=c.context,
            history_len=c.history_len,
        )

    def _build_module(self) -> zn.ScoringModule:
        c = self.config
        assert self.encoder_ is not None
        spec = self.encoder_.spec
        return zn.TwoTower(
            spec.side("user") + spec.side("context"),
            spec.side("item"),
            *self._vocab_sizes(),
            c.dim,
            c.layers,
            c.out_dim,
            c.normalize,
            c.temperature,
        )

    def item_embeddings(self) -> np.ndarray:
        """Item-tower outputs of the whole catalog, (n_items, out_dim), for a retrieval index."""
        module = self._require_module()
        with torch.no_grad():
            return module.item_repr(self._all_item_inputs()).float().cpu().numpy()

    def user_embeddings(self, users: Any) -> np.ndarray:
        """User-tower outputs (scaled by 1/temperature) for raw user ids (all must be known)."""
        module = self._require_module()
        assert self.user_vocab is not None
        idx = self.user_vocab.encode(users)
        if (idx < 0).any():
            raise DataError(
                "user_embeddings: unknown user ids; score them with recommend() "
                "(popularity fallback) instead"
            )
        with torch.no_grad():
            u = torch.as_tensor(idx, device=self.device_)
            return module.user_repr(self._user_inputs(u)).float().cpu().numpy()

    def _score_from_items(self, items: np.ndarray) -> np.ndarray | None:
        """Run the user tower on the history: the unknown-user id slot (which id dropout
        trained), the history field filled with the newest ``history_len`` items, other user
        features missing. ``None`` when the model has no history field."""
        assert self.encoder_ is not None
        fields = self.encoder_.spec.side("user")
        hist = next((f for f in fields if f.kind == "history"), None)
        if hist is None:
            return None
        module: Any = self._require_module()
        t = self._table_tensors()
        row = torch.zeros((1, int(hist.max_len or 1)), dtype=torch.int64, device=self.device_)
        recent = torch.as_tensor(
            np.asarray(items, np.int64)[-row.shape[1] :] + 1, device=self.device_
        )
        row[0, : recent.numel()] = recent  # oldest first, newest last, 0-padded (as in training)
        inputs: dict[str, Tensor] = {"user": torch.zeros(1, dtype=torch.int64, device=self.device_)}
        for f in fields:
            inputs[f.name] = row if f is hist else torch.zeros_like(t[f"user.{f.name}"][:1])
        for f in self.encoder_.spec.side("context"):
            dtype = torch.float32 if f.kind == "numeric" else torch.int64
            inputs[f.name] = torch.zeros(1, dtype=dtype, device=self.device_)
        with torch.no_grad():
            u = module.user_repr(inputs)  # (1, E)
            v = module.item_repr(self._all_item_inputs())  # (N, E)
            return module.score_matrix(u, v)[0].float().cpu().numpy()

    def _similar_items(self, items: np.ndarray) -> np.ndarray:
        return cosine_similarities(self.item_embeddings(), items)

    def embed_new_items(self, features: dict[str, Any]) -> np.ndarray:
        """Item-tower embeddings of new items from their features alone.

        Args:
            features: Item feature name -> one raw value per new item (a label, a list of labels
                for multi-valued features, a number); missing fields count as unknown.

        Returns:
            (n_new, out_dim) float32 embeddings, comparable with :meth:`item_embeddings`.
        """
        module = self._require_module()
        assert self.encoder_ is not None
        enc = self.encoder_.encode_item_rows(features)
        with torch.no_grad():
            inputs = {k: torch.as_tensor(v, device=self.device_) for k, v in enc.items()}
            return module.item_repr(inputs).float().cpu().numpy()
