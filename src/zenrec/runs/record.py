"""The run record: what one run measured and everything needed to run it again.

Evaluation runs (``zenrec evaluate``), a tuning study's final test, benchmark cells and peer
libraries' cells all produce a :class:`RunRecord`; reports read them back with
:meth:`RunRecord.read`. ``command`` is a full ``zenrec evaluate`` command line (absolute paths,
reader options, filters, split, seed and hyperparameters) that re-runs the same numbers from
any directory; see :func:`reproduce_command`.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zenrec._io import atomic_write_text
from zenrec._io import versions as _versions
from zenrec.data.spec import DataSpec

__all__ = ["SPLIT_FLAGS", "RunRecord", "now_utc", "reproduce_command"]


def now_utc() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _cli_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


SPLIT_FLAGS = {
    "test_fraction": "--test-fraction",
    "valid_fraction": "--valid-fraction",
    "test_start": "--test-start",
    "valid_start": "--valid-start",
    "ratios": "--split-ratios",
}
"""The command-line flag of each split option of a protocol preset."""


def reproduce_command(
    data: DataSpec,
    protocol: str,
    model: str,
    params: dict[str, Any],
    seed: int,
    split_options: dict[str, Any] | None = None,
) -> str:
    """The ``zenrec evaluate`` command that re-runs one evaluation, from any directory.

    Args:
        data: The data specification (paths are made absolute here).
        protocol: Protocol preset name.
        model: Registry name of the model.
        params: Hyperparameters (each becomes ``--set key=value``).
        seed: Split seed.
        split_options: Split options that differ from the preset's
            (:meth:`zenrec.evaluation.Protocol.split_options`), e.g. ``{"test_fraction": 0.2}``.

    Returns:
        A shell-quoted command line.

    Example:
        >>> reproduce_command(DataSpec(source="ml-100k"), "msrec", "ease", {"l2": 300.0}, 42)
        'zenrec evaluate --dataset ml-100k --protocol msrec --model ease --seed 42 --set l2=300.0'
    """
    argv = [
        "zenrec",
        "evaluate",
        *data.resolved().cli_args(),
        "--protocol",
        protocol,
        "--model",
        model,
        "--seed",
        str(int(seed)),
    ]
    for k, v in (split_options or {}).items():
        if k in SPLIT_FLAGS:
            text = ",".join(f"{x:g}" for x in v) if k == "ratios" else _cli_value(v)
            argv += [SPLIT_FLAGS[k], text]
    for k, v in params.items():
        argv += ["--set", f"{k}={_cli_value(v)}"]
    return shlex.join(argv)


class RunRecord(BaseModel):
    """One run: metrics, seconds, protocol, data specification, hashes, versions, parameters."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["evaluate", "peer"] = "evaluate"
    """``evaluate`` (a zenrec model) or ``peer`` (another library on zenrec's split)."""
    model: str
    """Model name (zenrec's registry name, or the peer library's model name)."""
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    """Every hyperparameter of the fitted model."""
    dataset: str
    """Dataset name."""
    data: DataSpec | None = None
    """How the data was loaded and filtered (``None`` for data built in Python)."""
    dataset_sha256: str | None = None
    """Hash of the source files (or of the fixed split's files)."""
    data_fingerprint: str | None = None
    """Hash of the filtered interactions the split was drawn from."""
    filters: list[str] = Field(default_factory=list)
    """Filters applied, in words."""
    protocol: dict[str, Any]
    """The protocol preset's summary (name, split, mode, cutoffs, metrics...)."""
    split: dict[str, Any] = Field(default_factory=dict)
    """Split description, number of folds and part sizes."""
    seed: int
    """Split (and model) seed."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Test metrics (mean over users, and over folds)."""
    metrics_warm: dict[str, float] = Field(default_factory=dict)
    """Test metrics over warm users (at least one training interaction); ranking protocols."""
    metrics_cold: dict[str, float] = Field(default_factory=dict)
    """Test metrics over cold users (no training interaction); empty when there are none."""
    test_coverage: dict[str, int] = Field(default_factory=dict)
    """``test_users``, ``cold_users``, ``test_interactions`` and ``unreachable_interactions``
    (on items never seen in training), first fold."""
    fold_metrics: list[dict[str, float]] | None = None
    """Per-fold metrics of k-fold protocols."""
    n_users_evaluated: int | None = None
    """Test users scored (first fold)."""
    evaluation_mode: str | None = None
    """``full``, ``sampled`` or ``rating``."""
    fit_seconds: float | None = None
    """Seconds spent fitting (summed over folds)."""
    eval_seconds: float | None = None
    """Seconds spent evaluating."""
    prepare_seconds: float | None = None
    """Seconds spent filtering and splitting."""
    seconds: float | None = None
    """Wall seconds of a peer run (its process as a whole)."""
    versions: dict[str, str] = Field(default_factory=_versions)
    """zenrec, Python and library versions."""
    command: str | None = None
    """A command line that re-runs this record's numbers (see :func:`reproduce_command`)."""
    invocation: str | None = None
    """The command line the user typed, when the run came from the CLI."""
    created: str = Field(default_factory=now_utc)
    """When the run finished (UTC)."""
    history: list[dict[str, Any]] = Field(default_factory=list)
    """Per-epoch training history of iterative models."""
    label: str | None = None
    """Row label in a benchmark."""
    tuning: dict[str, Any] | None = None
    """How the hyperparameters were tuned (study, budget, best validation value)."""
    per_user_file: str | None = None
    """Parquet file of per-user metric values (benchmark cells)."""
    library: str | None = None
    """Peer library name."""
    library_version: str | None = None
    """Peer library version."""
    split_sha256: str | None = None
    """Hash of the exported split files a peer ran on."""
    status: Literal["ok", "skipped", "failed"] = "ok"
    """Whether the run produced metrics."""
    reason: str | None = None
    """Why a peer run was skipped or failed."""
    peer_record: dict[str, Any] | None = None
    """The peer runner's own record, less its metrics."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN stays NaN, as Python's json writes it)."""
        return json.loads(json.dumps(self.model_dump(), default=str))

    def write(self, path: str | Path) -> Path:
        """Write the record as JSON, atomically."""
        p = Path(path)
        atomic_write_text(p, json.dumps(self.model_dump(), indent=2, default=str))
        return p

    @classmethod
    def read(cls, path: str | Path) -> RunRecord:
        """Read a record written by :meth:`write`."""
        return cls.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
