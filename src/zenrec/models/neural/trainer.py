"""The one trainer of zenrec's neural models.

Models plug in through :class:`TrainingTask` (a module, a number of training rows, a
``batch(rows, gen)`` that gathers tensors by index, and a ``loss(module, batch)``), so there is
no trainer subclass per model. The trainer owns the loop: shuffling by index on the device,
optimiser and learning-rate schedule, gradient clipping, mixed precision on GPU, validation
with early stopping and best-weight restore, the per-epoch history, checkpoints
(safetensors + JSON, atomic) with exact resume, and data-parallel training under ``torchrun``
(DDP: gloo on CPU, NCCL on GPU) through the same code path.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import torch
from pydantic import Field
from torch import Tensor, nn

from zenrec._errors import ConfigError, ZenrecError
from zenrec._io import atomic_write_bytes
from zenrec.evaluation.metrics import higher_is_better
from zenrec.models.base import ModelConfig
from zenrec.models.defaults import AUTO, Auto
from zenrec.models.neural.optim import LazyAdam

__all__ = [
    "RunOptions",
    "TrainResult",
    "Trainer",
    "TrainingConfig",
    "TrainingInterrupted",
    "TrainingTask",
    "eval_mode",
    "resolve_device",
]


class TrainingConfig(ModelConfig):
    """Training settings shared by every neural model (flat, so ``--set lr=0.01`` works)."""

    epochs: int = Field(30, ge=1)
    """Maximum passes over the training rows."""
    batch_size: Annotated[int, Field(ge=1)] | Auto = 4096
    """Rows per optimiser step (global batch: split across processes under torchrun). 'auto'
    (BPR-MF, LightGCN, Mult-VAE): a function of the training rows, so that small data still gets
    enough steps per epoch (:func:`zenrec.models.defaults.interaction_batch`,
    :func:`zenrec.models.defaults.user_batch`)."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate."""
    optimizer: Literal["adam", "adamw", "sgd", "adagrad"] = "adam"
    """Optimiser."""
    weight_decay: float = Field(0.0, ge=0)
    """Weight decay (L2 for adam/sgd/adagrad, decoupled for adamw)."""
    momentum: float = Field(0.0, ge=0, lt=1)
    """SGD momentum."""
    lr_schedule: Literal["constant", "cosine", "linear", "step"] = "constant"
    """Learning-rate decay over the run, after warm-up."""
    schedule_epochs: int = Field(0, ge=0)
    """Length in epochs of the ``cosine``/``linear`` decay (0: ``epochs``). A refit that stops
    at an epoch chosen on validation data (the ``holdout`` refit, ``zenrec tune``'s refit) sets
    ``epochs`` to that epoch and keeps this at the searched run's length, so the refit follows
    the learning-rate curve the epoch was chosen on instead of decaying to 0 by then."""
    warmup_epochs: float = Field(0.0, ge=0)
    """Linear warm-up length in epochs (may be fractional)."""
    step_epochs: int = Field(10, ge=1)
    """``step`` schedule: epochs between decays."""
    step_gamma: float = Field(0.5, gt=0, le=1)
    """``step`` schedule: decay factor."""
    grad_clip: float = Field(0.0, ge=0)
    """Clip the gradient norm to this value (0: off)."""
    sparse_embeddings: Literal["auto", "on", "off"] = "auto"
    """Row-sparse embedding gradients with lazy Adam updates (only the rows a step touches move;
    see :mod:`zenrec.models.neural.optim`), so an epoch costs O(interactions) instead of
    O(interactions x table rows). 'auto': on when the embedding tables hold more rows than one
    step touches (the task's estimate; MovieLens-sized data stays dense), with adam/adamw, one
    process, no gradient clipping and no fp16 scaler."""
    negative_sampling: Literal["uniform", "popularity"] = "uniform"
    """Distribution of sampled negatives."""
    popularity_alpha: float = Field(0.75, ge=0)
    """Exponent of ``popularity`` sampling: p(i) ~ count(i) ** alpha."""
    valid_metric: str = "ndcg@10"
    """Validation metric for early stopping (any ranking metric@K, or rmse/mae)."""
    eval_every: int = Field(1, ge=1)
    """Validate every N epochs."""
    patience: int = Field(5, ge=0)
    """Validation rounds without improvement before stopping (0: never stop early)."""
    min_delta: float = Field(0.0, ge=0, lt=1)
    """Relative gain a validation round needs to count as an improvement for ``patience``:
    the round must beat the score of the last round that counted by this share (0.01: 1%).
    The best weights are kept whatever the gain; only the stopping counter ignores gains
    smaller than this, so a flat, noisy validation curve stops instead of resetting the
    counter on every new small maximum. 0: any gain counts."""
    holdout: float = Field(0.1, ge=0, lt=0.5)
    """When ``fit`` gets no validation data (e.g. the ``msrec`` protocol, or ``zenrec train`` on
    a whole log) and ``patience`` > 0: hold out this share of each user's training interactions
    (seeded), train on the rest with early stopping to find the best epoch, then retrain on all
    the training data for that many epochs. Without it an iterative model runs its whole epoch
    budget and overfits small data (BPR-MF on ML-100K msrec: 0.394 NDCG@10 after 40 epochs).
    0: train all ``epochs`` with no stopping."""
    valid_users: int = Field(0, ge=0)
    """Validate on this many randomly chosen users (0: all), to make validation cheap."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train: CUDA when present ('auto'), else CPU."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Autocast precision on GPU ('auto': bf16 where supported); CPU always trains in fp32."""
    num_threads: int = Field(0, ge=0)
    """CPU threads for torch during ``fit`` (0: the process's thread policy, see
    :mod:`zenrec._threads`: ``--threads``/``$ZENREC_THREADS``, else all cores)."""
    seed: int = 0
    """Seed of initialisation, shuffling and sampling (a torch.Generator; no global seeding)."""
    progress: bool = True
    """Show a progress display (rich) on interactive terminals."""


class TrainingInterrupted(ZenrecError):
    """Raised by the ``stop_after_epoch`` test hook, as if the process had been killed."""


class TrainingTask(Protocol):
    """What a model hands to the trainer."""

    n_rows: int

    @property
    def module(self) -> nn.Module:
        """The module to train (the trainer moves it to the device and trains it in place)."""
        ...

    def batch(self, rows: Tensor, gen: torch.Generator) -> dict[str, Any]:
        """Gather the inputs of training rows ``rows`` (B,) on the device; tensors lead with B."""
        ...

    def loss(self, module: nn.Module, batch: dict[str, Any]) -> Tensor:
        """Scalar loss of ``batch`` under ``module``."""
        ...


@dataclass
class RunOptions:
    """Per-run settings that are not hyperparameters (they do not go into the bundle config).

    Attributes:
        checkpoint_dir: Write a checkpoint after each epoch here.
        resume: Continue from the checkpoint in ``checkpoint_dir`` when there is one.
        stop_after_epoch: Test hook: raise :class:`TrainingInterrupted` after this epoch
            (1-based) and its checkpoint, as a kill would.
    """

    checkpoint_dir: Path | None = None
    resume: bool = False
    stop_after_epoch: int | None = None


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    seconds: float = 0.0
    seconds_to_best: float | None = None
    resumed_from: int | None = None
    sparse_embeddings: bool = False
    """Whether the embeddings were trained with row-sparse gradients (lazy Adam)."""


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "the 'device' parameter is 'cuda' but no CUDA device is available; "
            "use device=auto or device=cpu"
        )
    if choice == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        # under torchrun, init_distributed has already selected this process's GPU
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode for the block; its train/eval mode before it is restored after.

    Example:
        >>> layer = nn.Dropout(0.5)
        >>> with eval_mode(layer):
        ...     layer.training
        False
        >>> layer.training
        True
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class _LossModule(nn.Module):
    """Wraps (module, task) so that DDP sees the loss computation as ``forward``."""

    def __init__(self, module: nn.Module, task: TrainingTask) -> None:
        super().__init__()
        self.module = module
        self._task = task

    def forward(self, batch: dict[str, Any]) -> Tensor:
        return self._task.loss(self.module, batch)


def _shard(batch: dict[str, Any], rank: int, world: int) -> tuple[dict[str, Any], int, int]:
    """This rank's contiguous share of a global batch; returns (batch, n_local, n_global)."""
    n = next(v.shape[0] for v in batch.values() if isinstance(v, Tensor) and v.dim() > 0)
    lo, hi = n * rank // world, n * (rank + 1) // world
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == n:
            out[k] = v[lo:hi]
        elif isinstance(v, dict):
            out[k] = {kk: vv[lo:hi] for kk, vv in v.items()}
        else:
            out[k] = v
    return out, hi - lo, n


def _embedding_modules(module: nn.Module) -> list[nn.Embedding | nn.EmbeddingBag]:
    return [m for m in module.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]


def _use_sparse(
    c: TrainingConfig, module: nn.Module, task: TrainingTask, world: int, fp16: bool
) -> bool:
    """Whether to train with row-sparse embedding gradients (see ``sparse_embeddings``)."""
    if c.sparse_embeddings == "off":
        return False
    possible = c.optimizer in ("adam", "adamw") and world == 1 and c.grad_clip == 0 and not fp16
    if c.sparse_embeddings == "on":
        if not possible:
            raise ConfigError(
                "sparse_embeddings=on needs optimizer adam or adamw, one process, "
                "grad_clip=0 and no fp16; set sparse_embeddings=auto or off"
            )
        return True
    touched = getattr(task, "rows_per_step", None)
    rows = sum(m.num_embeddings for m in _embedding_modules(module))
    return possible and touched is not None and rows > touched


def _make_optimizer(
    params: list[nn.Parameter], c: TrainingConfig, sparse: bool = False
) -> torch.optim.Optimizer:
    if sparse:
        return LazyAdam(
            params, lr=c.lr, weight_decay=c.weight_decay, decoupled=c.optimizer == "adamw"
        )
    if c.optimizer == "adam":
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "sgd":
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    return torch.optim.Adagrad(params, lr=c.lr, weight_decay=c.weight_decay)


def lr_factor(c: TrainingConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based)."""
    total = max(1, (c.schedule_epochs or c.epochs) * steps_per_epoch)
    warm = c.warmup_epochs * steps_per_epoch
    if warm > 0 and step < warm:
        return (step + 1) / warm
    if c.lr_schedule == "constant":
        return 1.0
    if c.lr_schedule == "step":
        return c.step_gamma ** (step // (c.step_epochs * steps_per_epoch))
    frac = min(1.0, (step - warm) / max(1.0, total - warm))
    if c.lr_schedule == "linear":
        return max(0.0, 1.0 - frac)
    return 0.5 * (1.0 + math.cos(math.pi * frac))


# ---------------------------------------------------------------------- checkpoints
def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            if isinstance(v, Tensor):
                tensors[f"opt.{idx}.{name}"] = v.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[name] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for idx, d in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(d)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(directory: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Write ``state-<epoch>.safetensors`` then point ``checkpoint.json`` at it (atomically)."""
    from safetensors.torch import save

    directory.mkdir(parents=True, exist_ok=True)
    name = f"state-{meta['epoch']:05d}.safetensors"
    atomic_write_bytes(directory / name, save(tensors))
    meta = {**meta, "state_file": name}
    atomic_write_bytes(directory / "checkpoint.json", json.dumps(meta, indent=1).encode())
    for old in directory.glob("state-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_checkpoint(directory: Path) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    from safetensors.torch import load_file

    pointer = directory / "checkpoint.json"
    if not pointer.exists():
        return None
    meta = json.loads(pointer.read_text())
    return load_file(str(directory / meta["state_file"])), meta


# ---------------------------------------------------------------------- trainer
@dataclass
class _Loop:
    """What stays fixed during one ``fit``: the task, module, optimiser and process layout."""

    task: TrainingTask
    module: nn.Module
    wrapped: nn.Module
    params: list[nn.Parameter]
    gen: torch.Generator
    rank: int
    world: int
    opt: torch.optim.Optimizer | None = None
    scaler: torch.amp.GradScaler | None = None

    @staticmethod
    def steps(n_rows: int, batch_size: int) -> int:
        return max(1, math.ceil(n_rows / batch_size))


@dataclass
class _LoopState:
    """What changes during one ``fit`` and goes into a checkpoint."""

    res: TrainResult
    best_state: dict[str, Tensor] | None = None
    bad_rounds: int = 0
    ref_score: float | None = None
    """The score of the last round that reset ``bad_rounds`` (``min_delta``'s reference)."""
    epoch: int = 0
    """Epochs completed."""
    step: int = 0
    """Optimiser steps taken."""
    elapsed0: float = 0.0
    """Seconds of training before a resume."""
    stopped: bool = False


def _counts_as_gain(score: float, ref: float | None, min_delta: float, higher: bool) -> bool:
    """Whether ``score`` improves on ``ref`` by at least the relative share ``min_delta``."""
    if ref is None:
        return True
    margin = min_delta * abs(ref)
    return score > ref + margin if higher else score < ref - margin


class Trainer:
    """Runs the training loop of any :class:`TrainingTask`.

    Args:
        config: Training settings.
        device: Device of the module and the batches.
        run: Checkpoint and resume options.

    Examples:
        >>> trainer = Trainer(TrainingConfig(epochs=2), torch.device("cpu"))  # doctest: +SKIP
        >>> result = trainer.fit(task, validate=lambda: {"ndcg@10": 0.1})  # doctest: +SKIP
    """

    def __init__(
        self, config: TrainingConfig, device: torch.device, run: RunOptions | None = None
    ) -> None:
        if config.batch_size == AUTO:
            raise ConfigError("batch_size='auto' must be resolved by the model before training")
        self.config = config
        self.batch_size: int = int(config.batch_size)
        self.device = device
        self.run = run or RunOptions()

    def _autocast(self) -> Any:
        c = self.config
        if self.device.type != "cuda" or c.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        if c.precision == "fp16":
            return torch.autocast("cuda", dtype=torch.float16)
        if c.precision == "bf16" or torch.cuda.is_bf16_supported():
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cuda", dtype=torch.float16)

    def fit(
        self,
        task: TrainingTask,
        gen: torch.Generator,
        validate: Callable[[], dict[str, float]] | None = None,
        callback: Callable[[int, dict[str, float]], None] | None = None,
    ) -> TrainResult:
        """Train ``task.module`` in place; on return it holds the best validated weights.

        The run is: set up (device, DDP wrapper, optimiser, gradient scaler), resume from a
        checkpoint when asked, then per epoch: one pass over the shuffled rows
        (:meth:`_train_epoch`), validation with early-stopping bookkeeping
        (:meth:`_validate_epoch`), the history record, a checkpoint, and the callback.

        Args:
            task: The model's training task.
            gen: Generator for shuffling and sampling (on ``self.device``).
            validate: Returns validation metrics (called on rank 0 only); needs
                ``config.valid_metric`` among its keys.
            callback: Called as ``callback(epoch, metrics)`` after each validation (pruning).
        """
        c = self.config
        rank, world = _dist()
        module = task.module.to(self.device)
        module.train()
        loop = _Loop(
            task=task,
            module=module,
            wrapped=self._wrap(module, task, world),
            params=[p for p in module.parameters() if p.requires_grad],
            gen=gen,
            rank=rank,
            world=world,
        )
        fp16 = self.device.type == "cuda" and c.precision == "fp16"
        sparse = _use_sparse(c, module, task, world, fp16)
        flags = [(m, m.sparse) for m in _embedding_modules(module)]
        for m, _ in flags:
            m.sparse = sparse or m.sparse
        loop.opt = _make_optimizer(loop.params, c, sparse)
        if fp16:
            loop.scaler = torch.amp.GradScaler("cuda")
        try:
            result = self._fit_loop(loop, task, validate, callback)
            result.sparse_embeddings = sparse
            return result
        finally:
            for m, was in flags:
                m.sparse = was

    def _fit_loop(
        self,
        loop: _Loop,
        task: TrainingTask,
        validate: Callable[[], dict[str, float]] | None,
        callback: Callable[[int, dict[str, float]], None] | None,
    ) -> TrainResult:
        """The epochs of :meth:`fit` (resume, train, validate, checkpoint), after its set-up."""
        c = self.config
        module = loop.module
        state = self._resume(loop) or _LoopState(TrainResult())
        t0 = time.perf_counter()
        with self._progress(loop.rank, state.epoch) as tick:
            for epoch in range(state.epoch, c.epochs):
                if state.stopped:
                    break
                t_epoch = time.perf_counter()
                loss = self._train_epoch(loop, state)
                record: dict[str, Any] = {
                    "epoch": epoch + 1,
                    "loss": loss,
                    "lr": c.lr
                    * lr_factor(c, state.step - 1, loop.steps(task.n_rows, self.batch_size)),
                    "train_seconds": time.perf_counter() - t_epoch,
                }
                metrics = None
                if validate is not None and (
                    (epoch + 1) % c.eval_every == 0 or epoch + 1 == c.epochs
                ):
                    t_valid = time.perf_counter()
                    metrics = self._validate_epoch(loop, state, validate, epoch + 1)
                    record.update({f"valid_{k}": v for k, v in metrics.items()})
                    record["valid_seconds"] = time.perf_counter() - t_valid
                self._close_epoch(loop, state, record, metrics, epoch + 1, t0, tick)
                if metrics is not None and callback is not None:
                    callback(epoch + 1, metrics)
                if (
                    self.run.stop_after_epoch is not None
                    and epoch + 1 >= self.run.stop_after_epoch
                    and epoch + 1 < c.epochs
                    and not state.stopped
                ):
                    raise TrainingInterrupted(
                        f"training stopped after epoch {epoch + 1} (test hook)"
                    )
        if state.best_state is not None:
            module.load_state_dict(state.best_state)
        module.eval()
        state.res.seconds = state.elapsed0 + time.perf_counter() - t0
        return state.res

    # -------------------------------------------------------------- the steps of fit
    def _wrap(self, module: nn.Module, task: TrainingTask, world: int) -> nn.Module:
        """The loss as a module's ``forward`` (DDP-wrapped under torchrun)."""
        wrapped: nn.Module = _LossModule(module, task)
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = DDP(wrapped, device_ids=ids)
        return wrapped

    def _resume(self, loop: _Loop) -> _LoopState | None:
        """Restore module, optimiser, generator and loop state from the checkpoint, if asked."""
        ckdir = self.run.checkpoint_dir
        if ckdir is None or not self.run.resume:
            return None
        loaded = load_checkpoint(Path(ckdir))
        if loaded is None:
            return None
        tensors, meta = loaded
        if meta.get("config") != self.config.model_dump(mode="json"):
            raise ConfigError(
                f"--resume: the checkpoint in {ckdir} was written with different settings; "
                "resume with the same --set values or start a new --output directory"
            )
        loop.module.load_state_dict(
            {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        assert loop.opt is not None
        loop.opt.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
        loop.gen.set_state(tensors["generator"].cpu())
        state = _LoopState(
            TrainResult(
                history=meta["history"],
                best_epoch=meta["best_epoch"],
                best_score=meta["best_score"],
                seconds_to_best=meta.get("seconds_to_best"),
                resumed_from=meta["epoch"],
            )
        )
        if any(k.startswith("best.") for k in tensors):
            state.best_state = {
                k[5:]: v.to(self.device) for k, v in tensors.items() if k.startswith("best.")
            }
        state.bad_rounds, state.epoch, state.step = meta["bad_rounds"], meta["epoch"], meta["step"]
        state.ref_score = meta.get("ref_score", meta["best_score"])
        state.elapsed0, state.stopped = meta["seconds"], meta["stopped"]
        return state

    @contextmanager
    def _progress(self, rank: int, start_epoch: int) -> Iterator[Callable[[str], None]]:
        """A rich progress bar over epochs (rank 0, when ``progress``); yields ``tick(desc)``."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            transient=True,
            disable=not (self.config.progress and rank == 0),
        )
        with progress:
            bar = progress.add_task("training", total=self.config.epochs, completed=start_epoch)
            yield lambda desc: progress.update(bar, advance=1, description=desc)

    def _train_epoch(self, loop: _Loop, state: _LoopState) -> float:
        """One pass over the shuffled training rows; returns the mean batch loss."""
        c = self.config
        n, bs = loop.task.n_rows, self.batch_size
        steps = loop.steps(n, bs)
        perm = torch.randperm(n, generator=loop.gen, device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        for b in range(steps):
            batch = loop.task.batch(perm[b * bs : (b + 1) * bs], loop.gen)
            loss_sum += self._step(loop, batch, lr_factor(c, state.step, steps))
            state.step += 1
        return float(loss_sum) / steps

    def _step(self, loop: _Loop, batch: dict[str, Any], factor: float) -> Tensor:
        """One optimiser step on a global batch (this rank's shard under DDP); returns the loss."""
        c = self.config
        opt = loop.opt
        assert opt is not None
        scale = 1.0
        if loop.world > 1:
            batch, n_loc, n_glob = _shard(batch, loop.rank, loop.world)
            scale = n_loc * loop.world / n_glob
        for g in opt.param_groups:
            g["lr"] = c.lr * factor
        with self._autocast():
            loss = loop.wrapped(batch)
        opt.zero_grad(set_to_none=True)
        if loop.scaler is not None:
            loop.scaler.scale(loss * scale).backward()
            loop.scaler.unscale_(opt)
        else:
            (loss * scale).backward()
        if c.grad_clip > 0:
            nn.utils.clip_grad_norm_(loop.params, c.grad_clip)
        if loop.scaler is not None:
            loop.scaler.step(opt)
            loop.scaler.update()
        else:
            opt.step()
        return loss.detach()

    def _validate_epoch(
        self, loop: _Loop, state: _LoopState, validate: Callable[[], dict[str, float]], epoch: int
    ) -> dict[str, float]:
        """Validate, keep the best weights, count rounds without improvement, decide to stop."""
        c = self.config
        metrics = self._validate(loop.module, validate, loop.rank, loop.world)
        if c.valid_metric not in metrics:
            raise ConfigError(
                f"the 'valid_metric' parameter is {c.valid_metric!r}, which validation "
                f"does not produce; choose one of {sorted(metrics)}"
            )
        score = float(metrics[c.valid_metric])
        res = state.res
        better = res.best_score is None or (
            score > res.best_score if higher_is_better(c.valid_metric) else score < res.best_score
        )
        if better and math.isfinite(score):
            res.best_score, res.best_epoch = score, epoch
            state.best_state = {k: v.detach().clone() for k, v in loop.module.state_dict().items()}
        if math.isfinite(score) and _counts_as_gain(
            score, state.ref_score, c.min_delta, higher_is_better(c.valid_metric)
        ):
            state.ref_score = score
            state.bad_rounds = 0
        else:
            state.bad_rounds += 1
        if c.patience and state.bad_rounds >= c.patience:
            state.stopped = True
        return metrics

    def _close_epoch(
        self,
        loop: _Loop,
        state: _LoopState,
        record: dict[str, Any],
        metrics: dict[str, float] | None,
        epoch: int,
        t0: float,
        tick: Callable[[str], None],
    ) -> None:
        """Append the history record, update the progress bar, write the checkpoint."""
        res = state.res
        record["seconds"] = state.elapsed0 + time.perf_counter() - t0
        if res.best_epoch == epoch:
            res.seconds_to_best = record["seconds"]
        res.history.append(record)
        desc = f"epoch {epoch} loss {record['loss']:.4f}"
        if metrics is not None:
            desc += f" {self.config.valid_metric} {metrics[self.config.valid_metric]:.4f}"
        tick(desc)
        state.epoch = epoch
        ckdir = self.run.checkpoint_dir
        if ckdir is not None and loop.rank == 0:
            assert loop.opt is not None
            self._checkpoint(
                Path(ckdir),
                loop.module,
                loop.opt,
                loop.gen,
                state.best_state,
                res,
                epoch,
                state.step,
                state.bad_rounds,
                state.ref_score,
                state.stopped,
                state.elapsed0 + time.perf_counter() - t0,
            )

    def _validate(
        self, module: nn.Module, validate: Callable[[], dict[str, float]], rank: int, world: int
    ) -> dict[str, float]:
        with eval_mode(module), torch.no_grad():
            metrics = validate() if rank == 0 else {}
        if world > 1:
            box = [metrics]
            torch.distributed.broadcast_object_list(box, src=0)
            metrics = box[0]
        return {k: float(v) for k, v in metrics.items()}

    def _checkpoint(
        self,
        directory: Path,
        module: nn.Module,
        opt: torch.optim.Optimizer,
        gen: torch.Generator,
        best_state: dict[str, Tensor] | None,
        res: TrainResult,
        epoch: int,
        step: int,
        bad_rounds: int,
        ref_score: float | None,
        stopped: bool,
        seconds: float,
    ) -> None:
        tensors = {
            f"model.{k}": v.detach().cpu().contiguous().clone()
            for k, v in module.state_dict().items()
        }
        if best_state is not None:
            tensors.update(
                {f"best.{k}": v.detach().cpu().contiguous().clone() for k, v in best_state.items()}
            )
        opt_tensors, opt_meta = _flatten_optimizer(opt)
        tensors.update(opt_tensors)
        tensors["generator"] = gen.get_state().cpu().clone()
        meta = {
            "format": "zenrec-checkpoint-1",
            "epoch": epoch,
            "step": step,
            "bad_rounds": bad_rounds,
            "ref_score": ref_score,
            "stopped": stopped,
            "seconds": seconds,
            "best_epoch": res.best_epoch,
            "best_score": res.best_score,
            "seconds_to_best": res.seconds_to_best,
            "history": res.history,
            "optimizer": opt_meta,
            "config": self.config.model_dump(mode="json"),
        }
        save_checkpoint(directory, tensors, meta)
