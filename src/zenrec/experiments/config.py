"""Benchmark configuration: the TOML schema of a grid of models x datasets x protocols x seeds.

Validated up front: every error names the file, the key and the fix (docs/tuning.md has the
schema). Peers (``[[peers]]``) are :class:`zenrec.runs.peers.PeerEntry` entries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zenrec._errors import ConfigError, ZenrecError
from zenrec._toml import read_toml
from zenrec._validation import KEY_MESSAGES, to_config_error
from zenrec.data.filters import DataFilters
from zenrec.evaluation.protocols import get_protocol
from zenrec.models.registry import create_model, model_names
from zenrec.runs.peers import PEER_LIBRARIES, PeerEntry

__all__ = ["BenchmarkConfig", "ModelEntry", "TuneBudget", "load_benchmark_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TuneBudget(_Strict):
    """The same tuning budget for every tuned model."""

    trials: int = Field(20, ge=1)
    """Finished trials per model (and dataset, protocol)."""
    timeout: float | None = Field(None, gt=0)
    """Seconds per model after which no new trial starts."""
    pruner: Literal["median", "hyperband", "none"] = "median"
    """Pruner of iterative models."""


class ModelEntry(_Strict):
    """One model of the benchmark."""

    name: str
    """Registry name."""
    label: str | None = None
    """Row label (default: the name); lets one model appear twice with different settings."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Hyperparameters (fixed; with tuning, the starting point is the space's)."""
    tune: bool | None = None
    """Tune first (default: when the config has a [tune] table)."""
    space: str | None = None
    """Search-space TOML (default: the one shipped for the model); relative to the config."""
    trials: int | None = Field(None, ge=1)
    """Override of the [tune] trial budget for this model."""
    protocols: list[str] | None = None
    """Only under these protocols (default: all of the config's)."""

    @property
    def key(self) -> str:
        return self.label or self.name


class BenchmarkConfig(_Strict):
    """A benchmark: the cross product of models, datasets, protocols and seeds."""

    name: str
    """Name of the benchmark (titles, file names)."""
    description: str = ""
    """What it reproduces."""
    datasets: list[str] = Field(min_length=1)
    """Built-in dataset names or files."""
    protocols: list[str] = Field(min_length=1)
    """Protocol presets."""
    seeds: list[int] = Field(min_length=1)
    """Split (and model) seeds; the first is also the tuning seed."""
    models: list[ModelEntry] = Field(min_length=1)
    """Models."""
    baseline: str | None = None
    """Label every model is tested against (default: the first model)."""
    metrics: list[str] = Field(default_factory=list)
    """Metrics shown and tested (default: the protocol's main metric)."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Family-wise significance level (Holm)."""
    tune: TuneBudget | None = None
    """Tuning budget; omit to run every model with its given params."""
    peers: list[PeerEntry] = Field(default_factory=list)
    """Other libraries run on the same splits (after the zenrec cells)."""
    split_dir: str | None = None
    """A fixed split directory (``train.tsv``, ``valid.tsv``, ``test.tsv``) used instead of the
    protocols' splits, as ``zenrec evaluate --split-dir`` does; relative to the config file.
    Needs exactly one dataset (the one the split was cut from)."""
    data: DataFilters = Field(default_factory=DataFilters)
    """Filters applied to every dataset (the ``[data]`` table: ``min_rating``,
    ``min_user_count``, ``min_item_count``, ``duplicates``, ``start``, ``end``; see
    docs/data-spec.md); the protocol's own filters still apply."""
    source: str = "<dict>"

    @model_validator(mode="after")
    def _labels(self) -> BenchmarkConfig:
        keys = [m.key for m in self.models] + [p.key for p in self.peers]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"model labels must be unique; {dup[0]!r} repeats: give one a 'label'")
        if self.baseline is not None and self.baseline not in keys[: len(self.models)]:
            raise ValueError(
                f"'baseline' {self.baseline!r} is not a model label; labels are "
                f"{keys[: len(self.models)]}"
            )
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("'seeds' has repeated values")
        if self.split_dir is not None and len(self.datasets) != 1:
            raise ValueError(
                "a fixed 'split_dir' is cut from one dataset; list exactly that one in 'datasets'"
            )
        return self

    @property
    def baseline_label(self) -> str:
        return self.baseline or self.models[0].key

    @property
    def root(self) -> Path:
        """Folder that peer paths are relative to: the config file's, else the working one."""
        src = Path(self.source)
        return (
            src.resolve().parent
            if self.source != "<dict>" and src.suffix == ".toml"
            else Path.cwd()
        )


# values can be whole tables (a model list), so the value received is not repeated
_MESSAGES = {
    **KEY_MESSAGES,
    "extra_forbidden": "unknown key '{key}'; see docs/tuning.md for the benchmark schema",
    "*": "key '{key}': {msg}",
}


def load_benchmark_config(path: str | Path) -> BenchmarkConfig:
    """Read and validate a benchmark TOML; errors name the file, the key and the fix."""
    p, data = read_toml(path, "benchmark config")
    try:
        cfg = BenchmarkConfig(**{**data, "source": str(p)})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        if err.get("type") == "extra_forbidden" and loc.startswith("data."):
            raise ConfigError(
                f"{p}: unknown key '{loc}'; the [data] table of a benchmark holds filters; "
                "see docs/data-spec.md"
            ) from None
        raise to_config_error(exc, where=str(p), messages=_MESSAGES) from None
    if cfg.split_dir is not None:
        sd = Path(cfg.split_dir).expanduser()
        sd = sd if sd.is_absolute() else (p.parent / sd).resolve()
        if not sd.is_dir():
            raise ConfigError(
                f"{p}: key 'split_dir': {sd} is not a directory; give the directory of "
                "train.tsv, valid.tsv and test.tsv (relative to the config file)"
            )
        cfg.split_dir = str(sd)
    for j, m in enumerate(cfg.models):
        if m.name not in model_names():
            raise ConfigError(
                f"{p}: key 'models[{j}].name': unknown model {m.name!r}; "
                f"use one of {', '.join(model_names())}"
            )
        try:
            create_model(m.name, **m.params)
        except ZenrecError as exc:
            raise ConfigError(f"{p}: key 'models[{j}].params': {exc}") from None
        if m.space is not None:
            m.space = (
                str((p.parent / m.space).resolve()) if not Path(m.space).is_absolute() else m.space
            )
        for pr in m.protocols or []:
            if pr not in cfg.protocols:
                raise ConfigError(f"{p}: key 'models[{j}].protocols': {pr!r} is not in 'protocols'")
    for j, pr in enumerate(cfg.protocols):
        try:
            get_protocol(pr)
        except ConfigError as exc:
            raise ConfigError(f"{p}: key 'protocols[{j}]': {exc}") from None
    for j, peer in enumerate(cfg.peers):
        lib = PEER_LIBRARIES.get(peer.library)
        for pr in peer.protocols or []:
            if pr not in cfg.protocols:
                raise ConfigError(f"{p}: key 'peers[{j}].protocols': {pr!r} is not in 'protocols'")
        if lib is not None and peer.command is None:
            for pr in peer.protocols or cfg.protocols:
                if get_protocol(pr).mode not in lib.modes:
                    raise ConfigError(
                        f"{p}: key 'peers[{j}]': the {peer.library} runner does not evaluate "
                        f"protocol {pr!r} ({get_protocol(pr).mode} mode); restrict the peer "
                        "with 'protocols'"
                    )
    return cfg
