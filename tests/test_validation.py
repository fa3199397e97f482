"""The one pydantic -> ConfigError translator (zenrec._validation) that every config uses."""

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zenrec._errors import ConfigError
from zenrec._validation import KEY_MESSAGES, Issue, to_config_error


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(1, ge=1)


class Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factors: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    low: float = 0.0
    high: float = 1.0
    inner: Inner = Inner()

    @model_validator(mode="after")
    def _order(self) -> "Cfg":
        if self.low > self.high:
            raise ValueError("low must be <= high")
        return self


def _error(**kw: object) -> ValidationError:
    with pytest.raises(ValidationError) as exc:
        Cfg(**kw)  # type: ignore[arg-type]
    return exc.value


def test_number_or_auto_is_reported_once_under_the_field_name() -> None:
    err = to_config_error(_error(factors=0), where="f.toml", first_only=False)
    assert isinstance(err, ConfigError)
    assert str(err) == (
        "f.toml: key 'factors': Input should be greater than or equal to 1 (or 'auto'); got 0"
    )


def test_whole_object_errors_use_the_root_message_without_pydantic_prefix() -> None:
    exc = _error(low=2.0, high=1.0)
    assert str(to_config_error(exc, where="f.toml")) == "f.toml: low must be <= high"
    root = to_config_error(exc, messages={"root": "Cfg: {msg}"}, key=lambda loc: loc[99])
    assert str(root) == "Cfg: low must be <= high"  # key is not called for the whole object


def test_messages_by_type_nested_keys_and_first_or_all() -> None:
    exc = _error(extra=1, inner={"size": 0})
    first = to_config_error(exc, where="f.toml")
    too_small = "Input should be greater than or equal to 1"
    assert str(first) == f"f.toml: key 'inner.size': {too_small}; got 0"
    both = to_config_error(
        exc,
        key=lambda loc: "--" + "-".join(map(str, loc)),
        messages={**KEY_MESSAGES, "extra_forbidden": "{key} is not an option", "*": "{key}: {msg}"},
        first_only=False,
    )
    assert str(both) == f"--inner-size: {too_small}; --extra is not an option"


def test_a_message_may_be_a_function_of_the_issue() -> None:
    seen: list[Issue] = []

    def unknown(issue: Issue) -> str:
        seen.append(issue)
        return f"no {issue.key} here ({issue.type}, got {issue.got})"

    err = to_config_error(_error(colour="red"), messages={"extra_forbidden": unknown})
    assert str(err) == "no colour here (extra_forbidden, got 'red')"
    assert seen[0].loc == ("colour",)
