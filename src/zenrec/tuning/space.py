"""Search spaces: validated TOML files, one per model, shipped in ``zenrec/tuning/spaces``.

Schema (every key is checked; errors name the file, the key and the fix)::

    model = "ease"
    metric = "ndcg@10"          # validation metric to maximise (rmse/mae are minimised)
    [fixed]                      # parameters held fixed during search (optional)
    [params]
    l2 = { type = "float", low = 1.0, high = 5000.0, log = true }
    k = { type = "int", low = 10, high = 500, step = 10 }
    loss = { type = "categorical", choices = ["bpr", "softmax"] }

Parameter names are checked against the model's typed config, and the bounds of every
range are checked by building the model with them, so a space that validates cannot
propose a configuration the model rejects at its ends.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zenrec._errors import ConfigError, ZenrecError
from zenrec._toml import read_toml
from zenrec._validation import KEY_MESSAGES, Issue, Message, to_config_error
from zenrec.evaluation.metrics import metric_direction

__all__ = [
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "SearchSpace",
    "default_space_path",
    "load_space",
    "parse_space",
    "shipped_spaces",
]

RATING_METRICS = ("rmse", "mae")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatParam(_Strict):
    """A float range, sampled uniformly or (``log = true``) log-uniformly."""

    type: Literal["float"]
    low: float
    """Lower bound (inclusive)."""
    high: float
    """Upper bound (inclusive)."""
    log: bool = False
    """Sample on a log scale (needs ``low > 0``)."""
    step: float | None = Field(None, gt=0)
    """Discretisation step (not with ``log``)."""

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(_Strict):
    """An integer range with an optional step or log scale."""

    type: Literal["int"]
    low: int
    """Lower bound (inclusive)."""
    high: int
    """Upper bound (inclusive)."""
    log: bool = False
    """Sample on a log scale (needs ``low >= 1``)."""
    step: int = Field(1, ge=1)
    """Step between values (must be 1 with ``log``)."""

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self


class CategoricalParam(_Strict):
    """A choice among listed values (strings, numbers or booleans)."""

    type: Literal["categorical"]
    choices: list[str | bool | int | float] = Field(min_length=1)
    """The values to choose among."""

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        if len({repr(c) for c in self.choices}) != len(self.choices):
            raise ValueError("'choices' has repeated values; list each value once")
        return self


def _is_enqueued(trial: Any) -> bool:
    """Whether an Optuna trial was enqueued with fixed parameters (the tuner's default trial)."""
    try:
        attrs = trial.storage.get_trial_system_attrs(trial._trial_id)
    except AttributeError:
        return False
    return "fixed_params" in attrs


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if not low < high:
        raise ValueError(
            f"'low' must be smaller than 'high'; got low={low}, high={high}: swap or widen them"
        )
    if log and low <= 0:
        raise ValueError(
            f"a log-scale range needs low > 0; got low={low}: raise 'low' or set log = false"
        )
    if log and step is not None:
        raise ValueError("'step' cannot be combined with log = true: drop one of them")


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class SearchSpace(_Strict):
    """A validated search space. Build it with :func:`load_space` or :func:`parse_space`.

    Examples:
        >>> l2 = {"type": "float", "low": 1.0, "high": 1e4, "log": True}
        >>> s = parse_space({"model": "ease", "metric": "ndcg@10", "params": {"l2": l2}})
        >>> s.direction, list(s.params)
        ('maximize', ['l2'])
    """

    model: str
    """Registry name of the model."""
    metric: str = "ndcg@10"
    """Validation metric: ``name@K`` (maximised) or ``rmse``/``mae`` (minimised)."""
    fixed: dict[str, Any] = Field(default_factory=dict)
    """Parameters held fixed during the search."""
    params: dict[str, Param] = Field(default_factory=dict)
    """Parameters searched."""
    source: str = "<dict>"
    """Where the space was read from (for messages)."""

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return metric_direction(self.metric)

    def auto_defaults(self) -> list[str]:
        """Searched parameters whose model default is ``"auto"`` (resolved from the data in fit)."""
        return [n for n, v in self.defaults_outside_space().items() if v == "auto"]

    def defaults_outside_space(self) -> dict[str, Any]:
        """The model's defaults of the searched parameters that the space cannot draw: ``"auto"``
        (resolved from the data in fit), or a value outside its range (e.g. a weight decay of 0
        under a log-scale range). The default trial (trial 0) uses them as they are, so that it
        is exactly the model's default configuration."""
        from zenrec.models.registry import get_model_class

        fields = get_model_class(self.model).Config.model_fields
        inside = self.defaults_in_space()
        return {
            n: fields[n].get_default(call_default_factory=True)
            for n in self.params
            if n not in inside
        }

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw a full parameter set (fixed + searched) from an Optuna trial.

        In the enqueued default trial (trial 0 of a new study), parameters whose model default
        the space cannot draw keep it (:meth:`defaults_outside_space`), so that trial evaluates
        the model's true default configuration.
        """
        out = dict(self.fixed)
        keep = self.defaults_outside_space() if _is_enqueued(trial) else {}
        for name, p in self.params.items():
            if name in keep:
                out[name] = keep[name]
            elif isinstance(p, FloatParam):
                out[name] = trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
            elif isinstance(p, IntParam):
                out[name] = trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
            else:
                out[name] = trial.suggest_categorical(name, p.choices)
        return out

    def defaults_in_space(self) -> dict[str, Any]:
        """The model's default values of the searched parameters that lie inside the space."""
        from zenrec.models.registry import get_model_class

        fields = get_model_class(self.model).Config.model_fields
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            d = fields[name].default
            if isinstance(p, CategoricalParam):
                if d in p.choices:
                    out[name] = d
            elif isinstance(d, (int, float)) and not isinstance(d, bool) and p.low <= d <= p.high:
                if isinstance(p, IntParam) and (int(d) - p.low) % p.step:
                    continue
                if (
                    isinstance(p, FloatParam)
                    and p.step
                    and abs(((d - p.low) / p.step) - round((d - p.low) / p.step)) > 1e-9
                ):
                    continue
                out[name] = d
        return out

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"source"})


def _check_metric(metric: str) -> str | None:
    from zenrec.evaluation.metrics import RANKING_METRICS

    if metric in RATING_METRICS or metric in ("auc", "gauc", "logloss"):
        return None
    if metric.partition("/")[2] in ("rmse", "mae", "auc", "logloss"):  # multitask: task/metric
        return None
    name, _, k = metric.partition("@")
    if name not in RANKING_METRICS or not k.isdigit() or int(k) < 1:
        return (
            "'metric' must be rmse, mae, auc, gauc, logloss, TASK/METRIC or NAME@K with NAME "
            f"one of {', '.join(sorted(RANKING_METRICS))} and K >= 1; got {metric!r}"
        )
    return None


def _loc(loc: tuple[str | int, ...]) -> str:
    """A key's dotted name, without pydantic's union tags (``params.l2.float.low``)."""
    return ".".join(str(x) for x in loc if x not in ("float", "int", "categorical")) or "space"


def _unknown_key(issue: Issue) -> str:
    hint = (
        "allowed top-level keys are model, metric, fixed, params"
        if "." not in issue.key
        else "allowed keys are type, low, high, log, step (float/int) "
        "or type, choices (categorical)"
    )
    return f"unknown key '{issue.key}'; {hint}"


_NEEDS_TYPE = 'key \'{key}\' needs type = "float", "int" or "categorical"'
_SPACE_MESSAGES: dict[str, Message] = {
    **KEY_MESSAGES,
    "extra_forbidden": _unknown_key,
    "union_tag_invalid": _NEEDS_TYPE,
    "union_tag_not_found": _NEEDS_TYPE,
}


def parse_space(data: dict[str, Any], source: str = "<dict>") -> SearchSpace:
    """Validate a search space given as a dict (e.g. parsed TOML); ``source`` names it in errors."""
    from zenrec.models.registry import get_model_class, model_names

    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a search space must be a TOML table; got {type(data).__name__}"
        )
    try:
        space = SearchSpace(**{**data, "source": source})
    except ValidationError as exc:
        raise to_config_error(exc, where=source, key=_loc, messages=_SPACE_MESSAGES) from None
    if space.model not in model_names():
        raise ConfigError(
            f"{source}: key 'model': unknown model {space.model!r}; "
            f"use one of {', '.join(model_names())}"
        )
    bad_metric = _check_metric(space.metric)
    if bad_metric:
        raise ConfigError(f"{source}: {bad_metric}")
    fields = get_model_class(space.model).Config.model_fields
    for section, names in (("params", space.params), ("fixed", space.fixed)):
        for name in names:
            if name not in fields:
                raise ConfigError(
                    f"{source}: key '{section}.{name}': {space.model} has no parameter {name!r}; "
                    f"its parameters are {', '.join(fields) or 'none'}"
                )
    both = set(space.params) & set(space.fixed)
    if both:
        name = sorted(both)[0]
        raise ConfigError(
            f"{source}: parameter {name!r} is both in [fixed] and [params]; keep it in one"
        )
    _check_ends(space, source)
    return space


def _check_ends(space: SearchSpace, source: str) -> None:
    """Build the model at each end of every range, so bad bounds fail now, not in trial 37."""
    from zenrec.models.registry import create_model

    base = dict(space.fixed)
    try:
        create_model(space.model, **base)
    except ZenrecError as exc:
        raise ConfigError(f"{source}: [fixed] is rejected by {space.model}: {exc}") from None
    for name, p in space.params.items():
        values = p.choices if isinstance(p, CategoricalParam) else [p.low, p.high]
        for v in values:
            try:
                create_model(space.model, **{**base, name: v})
            except ZenrecError as exc:
                raise ConfigError(
                    f"{source}: key 'params.{name}': value {v!r} is rejected by {space.model}"
                    f" ({exc}); narrow the range"
                ) from None


def default_space_path(model: str) -> Path:
    """Path of the search space shipped for ``model``."""
    path = Path(str(resources.files("zenrec.tuning") / "spaces" / f"{model}.toml"))
    if not path.exists():
        raise ConfigError(
            f"no search space is shipped for model '{model}' (looked for {path}); "
            "write one and pass --space FILE.toml (schema in docs/tuning.md)"
        )
    return path


def shipped_spaces() -> list[str]:
    """Models that have a shipped search space."""
    d = Path(str(resources.files("zenrec.tuning") / "spaces"))
    return sorted(p.stem for p in d.glob("*.toml"))


def load_space(path: str | Path | None = None, *, model: str | None = None) -> SearchSpace:
    """Read and validate a search-space TOML file (default: the one shipped for ``model``).

    Raises:
        ConfigError: naming the file, the key and the fix; also when ``model`` disagrees with
            the file's ``model`` key.
    """
    if path is None:
        if model is None:
            raise ConfigError("load_space: pass a path or a model name")
        path = default_space_path(model)
    p, data = read_toml(path, "search space file")
    space = parse_space(data, source=str(p))
    if model is not None and space.model != model:
        raise ConfigError(
            f"{p}: key 'model' is {space.model!r} but the tuned model is {model!r}; "
            "pass a space written for that model"
        )
    return space
