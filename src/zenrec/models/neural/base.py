"""NeuralRecommender (one ``_fit`` and its hooks), the interaction task and the shared configs.

:class:`NeuralRecommender` wraps a pure module of :mod:`zenrec.models.neural.nn` (or
:mod:`~zenrec.models.neural.nn_seq`) and owns the config, the vocabularies, the feature encoder
and training through the shared :class:`~zenrec.models.neural.trainer.Trainer`. Its ``_fit``
is the only one; model families plug in through hooks (``_prepare``, ``_build_encoder``,
``_build_module``, ``_init_parameters``, ``_after_init``, ``_make_task``, ``_make_validate``,
``_after_fit``). :class:`InteractionTask` is the default training task (one row per
interaction); :class:`IdModelConfig` and :class:`FeatureConfig` hold the fields shared by the
id-embedding and the feature models.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, Self, TypeVar, runtime_checkable

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from zenrec._arrays import unique
from zenrec._errors import ConfigError, DataError, NotFittedError
from zenrec._threads import configured_threads
from zenrec.data.dataset import Dataset
from zenrec.models.base import Recommender
from zenrec.models.defaults import interaction_batch
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
    eval_mode,
    resolve_device,
)
from zenrec.splits import user_random_split

__all__ = [
    "FeatureConfig",
    "IdModelConfig",
    "InteractionTask",
    "LossName",
    "NeuralRecommender",
    "TaskOptions",
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
    """A config with a ``loss`` field (a model whose config has none overrides ``_loss_name``)."""

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


class InteractionTask:
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
        many = getattr(module, "score_candidates", None)
        if many is not None and name not in ("mse", "click"):
            # DIN: the user's side is computed once for the positive and its K negatives
            bsz, k = b["neg"].shape
            nr = module.item_repr(m._item_inputs(b["neg"].reshape(-1))).view(bsz, k, -1)
            s = many(ur, torch.cat([ir.unsqueeze(1), nr], 1))  # (B, 1 + K)
            return self.losses[name](s[:, 0], s[:, 1:])
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
        self._warm_from: NeuralRecommender | None = None
        self._warm_epochs: int | None = None
        self._warm_choose = True
        self.warm_start_: dict[str, Any] | None = None  # what the warm start did (fit sets it)
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

    def warm_start_from(
        self, old: NeuralRecommender, epochs: int | None = None, *, choose_epochs: bool = True
    ) -> Self:
        """Start the next ``fit`` from ``old``'s trained weights instead of a random init.

        ``fit`` builds the module on its training data's vocabularies, copies ``old``'s
        parameters in (rows of new ids: the mean of the old rows; see
        :mod:`zenrec.models.neural.warm`), skips ``_after_init`` (e.g. NeuMF pre-training) and
        trains at most ``epochs`` epochs (None: the config's). Without validation data, the
        epoch count is chosen on a held-out ``holdout`` share of the *new* pairs only (those
        ``old`` was not trained on). ``warm_start_`` records what was done.

        Args:
            old: A fitted model of the same class.
            epochs: Epoch budget of the warm fit (at most the config's ``epochs``).
            choose_epochs: False: train exactly ``epochs`` epochs, with no held-out run (e.g.
                an epoch count already chosen on nearly the same data).
        """
        if type(old) is not type(self):
            raise ConfigError(
                f"{self.name}: warm start needs a fitted {type(self).__name__}; "
                f"got a {type(old).__name__}"
            )
        old._require_module()
        self._warm_from, self._warm_epochs, self._warm_choose = old, epochs, choose_epochs
        return self

    # ------------------------------------------------------------------ hooks for subclasses
    def _loss_name(self) -> str:
        """The training loss: the config's ``loss`` (overridden where the config has none)."""
        if not isinstance(self.config, _LossConfig):
            raise NotImplementedError(f"{self.name}: the config has no 'loss'; override _loss_name")
        return str(self.config.loss)

    def _labels(self, train: Dataset) -> np.ndarray | None:
        """Training labels of ``train``'s rows (None: implicit positives)."""
        return None

    def _prepare(self, train: Dataset) -> None:
        """Read settings from the training data before anything is built (e.g. DIN's labels)."""

    def _build_encoder(self, train: Dataset) -> FeatureEncoder | None:
        """The feature encoder (None for a model that reads no features, e.g. Mult-VAE).

        A model with a :class:`FeatureConfig` encodes the features and history it names; the
        others encode ids only.
        """
        c = self.config
        if not isinstance(c, FeatureConfig):
            return build_feature_encoder(train)
        return build_feature_encoder(
            train,
            user_features=c.user_features,
            item_features=c.item_features,
            context=c.context,
            history_len=c.history_len,
        )

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
        """The options of this model's config that the training task uses: those of the shared
        configs here; a model whose config has more (e.g. ``logq_correction``) overrides this
        and adds them with :func:`dataclasses.replace`."""
        c = self.config
        opts: dict[str, Any] = {}
        if isinstance(c, IdModelConfig):
            opts.update(n_negatives=c.n_negatives, init_std=c.init_std)
        if isinstance(c, FeatureConfig):
            opts.update(
                init_std=c.init_std, id_dropout=c.id_dropout, context_dropout=c.context_dropout
            )
        return TaskOptions(**opts)

    def _init_parameters(self, module: zn.ScoringModule, gen: torch.Generator) -> None:
        """Initialise the fresh module's weights from ``gen`` (default: normal embeddings of
        standard deviation ``init_std``, see :func:`~zenrec.models.neural.nn.init_parameters`)."""
        zn.init_parameters(module, gen, self._task_options().init_std)

    def _make_task(self, train: Dataset) -> Any:
        """The trainer's :class:`TrainingTask` (default: one row per training interaction)."""
        assert self.device_ is not None
        return InteractionTask(self, train, self.device_)

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
        warm, probe = self._warm_from, None
        if warm is not None and self._warm_epochs is not None:
            run_config = run_config.model_copy(update={"epochs": min(self._warm_epochs, c.epochs)})
        budget = run_config.epochs
        if (
            (valid is None or not len(valid))
            and c.holdout > 0
            and c.patience > 0
            and self.holdout_kind == "random"
            and len(train)
            and (warm is None or self._warm_choose)
        ):
            if warm is None:
                inner = user_random_split(train, (1.0 - c.holdout, c.holdout), seed=c.seed)
                inner_train, inner_test = inner.train, inner.test
            else:
                from zenrec.models.neural.warm import holdout_split

                inner_train, inner_test = holdout_split(warm, train, c.holdout, c.seed)
            if len(inner_test) and len(inner_train):
                probe = type(self)(run_config)
                if warm is not None:
                    probe.warm_start_from(warm)
                probe.fit(inner_train, inner_test)
                r = probe.train_result_
                if r is not None and r.best_epoch:
                    run_config = run_config.model_copy(
                        update={
                            "epochs": int(r.best_epoch),
                            "schedule_epochs": run_config.schedule_epochs or run_config.epochs,
                        }
                    )
                    self.holdout_ = {
                        "share": c.holdout,
                        "interactions": len(inner_test),
                        "best_epoch": int(r.best_epoch),
                        "best_valid": r.best_score,
                        "seconds": probe.fit_seconds_,
                    }
        self._run_config = run_config
        super().fit(train, valid)
        if self.warm_start_ is not None:
            r = self.train_result_
            pr = None if probe is None else probe.train_result_
            self.warm_start_.update(
                max_epochs=budget,
                holdout_epochs=None if pr is None else len(pr.history),
                epochs=0 if r is None else len(r.history),
            )
        return self

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
        """Build, initialise and train the module; the steps are the hooks above, in order."""
        c = self.config
        if len(train) == 0:
            raise DataError(f"{self.name}: the training data '{train.name}' has no interactions")
        self._prepare(train)
        threads_before = torch.get_num_threads()
        torch.set_num_threads(c.num_threads or configured_threads())
        try:
            self.device_ = resolve_device(c.device)
            self._tables = None
            if train.ratings is not None:
                self.global_mean_ = float(train.ratings.mean())
            self.encoder_ = self._build_encoder(train)
            module = self._new_module()
            self._init_parameters(module, torch.Generator().manual_seed(c.seed))
            if self._warm_from is not None:
                from zenrec.models.neural.warm import copy_weights

                self.warm_start_ = copy_weights(module, self._warm_from, self)
            self.module_ = module.to(self.device_)
            if self._warm_from is None:
                self._after_init(train, valid)
            task = self._make_task(train)
            gen = torch.Generator(device=self.device_).manual_seed(c.seed + 1)
            validate = (
                self._make_validate(train, valid) if valid is not None and len(valid) else None
            )
            trainer = Trainer(self._training_config(), self.device_, self.run_options)
            # Dropout draws from torch's global generator: seed it from the config inside a
            # forked random state, so a fit is repeatable across processes and leaves the
            # caller's random state alone.
            cuda = [self.device_.index or 0] if self.device_.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda):
                torch.manual_seed(c.seed + 2)
                result = trainer.fit(task, gen, validate, self.epoch_callback)
            self.train_result_ = result
            self.history_ = result.history
            self._after_fit(train, valid)
        finally:
            torch.set_num_threads(threads_before)

    def _make_validate(self, train: Dataset, valid: Dataset) -> Any:
        """The trainer's validation callable: ``valid_metric`` of this model on ``valid``."""
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
        with eval_mode(module), torch.no_grad():
            u = torch.as_tensor(np.asarray(users, np.int64), device=self.device_)
            ir = module.item_repr(self._all_item_inputs())  # (N, ...)
            if getattr(module, "dot_product", False):
                out = module.score_matrix(module.user_repr(self._user_inputs(u)), ir)  # (B, N)
            else:
                width = max(
                    64,
                    getattr(getattr(module, "mlp", None), "first_u", nn.Linear(1, 64)).out_features,
                )
                chunk = max(1, self.score_budget // max(1, self.n_items * width))
                parts = [
                    module.score_matrix(module.user_repr(self._user_inputs(u[s : s + chunk])), ir)
                    for s in range(0, u.numel(), chunk)
                ]
                out = torch.cat(parts, 0)
            return out.float().cpu().numpy()

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._pair_outputs(users, items, "score_pairs", (0,))

    def _pair_outputs(
        self, users: np.ndarray, items: np.ndarray, head: str, empty: tuple[int, ...]
    ) -> np.ndarray:
        """``module.<head>(user_repr, item_repr)`` of (user, item) index pairs, in chunks of
        65,536 pairs, in eval mode; an array of shape ``empty`` when there are no pairs."""
        module = self._require_module()
        fn = getattr(module, head)
        out = []
        with eval_mode(module), torch.no_grad():
            for s in range(0, users.size, 65536):
                u = torch.as_tensor(users[s : s + 65536], dtype=torch.int64, device=self.device_)
                i = torch.as_tensor(items[s : s + 65536], dtype=torch.int64, device=self.device_)
                reprs = (
                    module.user_repr(self._user_inputs(u)),
                    module.item_repr(self._item_inputs(i)),
                )
                out.append(fn(*reprs).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros(empty, np.float32)

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


# ====================================================================== shared configs
class IdModelConfig(TrainingConfig):
    """Fields shared by the id-embedding models (BPR-MF, GMF, NCF-MLP, NeuMF)."""

    n_negatives: int = Field(1, ge=1)
    """Sampled negatives per positive (bpr/bce losses)."""
    init_std: float = Field(0.1, gt=0)
    """Standard deviation of the initial embeddings."""


class FeatureConfig(TrainingConfig):
    """Fields shared by the feature models (MLP ranker, two-tower, DIN, multi-task)."""

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
