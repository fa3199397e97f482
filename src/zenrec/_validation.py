"""The one translator of a pydantic ``ValidationError`` into a one-line :class:`ConfigError`.

Every place that validates user input with pydantic (model configs, TOML files, CLI options)
calls :func:`to_config_error` and only says how to word it: who is speaking (``where``), how to
name a field (``key``) and, per pydantic error type, the message (``messages``). The parsing of
pydantic's errors (locations, the ``"Value error, "`` prefix, ``X | "auto"`` unions reported
once) lives here only. Imports no zenrec layer and not pydantic itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zenrec._errors import ConfigError

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = ["KEY_MESSAGES", "Issue", "Message", "dotted", "to_config_error"]


@dataclass(frozen=True)
class Issue:
    """One pydantic error, cleaned up for a message.

    Attributes:
        loc: Where, as pydantic gives it (field names and list indices); ``()`` for the whole
            object (a model validator).
        key: ``loc`` as named by the caller's ``key`` function (``""`` for the whole object).
        type: Pydantic's error type (``missing``, ``extra_forbidden``, ``greater_than``...).
        msg: Pydantic's message without its ``"Value error, "`` prefix.
        got: ``repr`` of the value received.
    """

    loc: tuple[str | int, ...]
    key: str
    type: str
    msg: str
    got: str


Message = str | Callable[[Issue], str]
"""A message template (``str.format`` fields ``key``, ``msg``, ``got``) or a function of the
:class:`Issue`."""

KEY_MESSAGES: Mapping[str, Message] = {
    "extra_forbidden": "unknown key '{key}'",
    "missing": "key '{key}' is missing; add it",
    "*": "key '{key}': {msg}; got {got}",
}
"""The wording of keys in a file: unknown key, missing key, bad value (the default)."""


def dotted(loc: Sequence[str | int]) -> str:
    """The default key name: ``("models", 0, "name")`` -> ``"models.0.name"``."""
    return ".".join(str(x) for x in loc)


def to_config_error(
    exc: ValidationError,
    *,
    where: str = "",
    key: Callable[[tuple[str | int, ...]], str] = dotted,
    messages: Mapping[str, Message] = KEY_MESSAGES,
    first_only: bool = True,
) -> ConfigError:
    """One :class:`ConfigError` line for a pydantic validation error (raise it ``from None``).

    Args:
        exc: The pydantic error.
        where: Who is speaking (a file path, ``"benchmark config"``); prefixes ``"WHERE: "``.
        key: Names a field from its (non-empty) pydantic location.
        messages: Per pydantic error type, the message; ``"*"`` for any other type and
            ``"root"`` for an error of the whole object (default: its message alone).
        first_only: Report the first error only (files) or all, joined by ``"; "``.

    Examples:
        >>> from pydantic import BaseModel, Field, ValidationError
        >>> class Cfg(BaseModel):
        ...     k: int = Field(ge=1)
        >>> try:
        ...     Cfg(k=0)
        ... except ValidationError as exc:
        ...     print(to_config_error(exc, where="run.toml"))
        run.toml: key 'k': Input should be greater than or equal to 1; got 0
    """
    parts = []
    for loc, typ, msg, value in _merged(exc.errors()):
        issue = Issue(
            loc, key(loc) if loc else "", typ, msg.removeprefix("Value error, "), repr(value)
        )
        template = (
            messages.get("root", "{msg}")
            if not loc
            else messages.get(typ, messages.get("*", KEY_MESSAGES["*"]))
        )
        text = template(issue) if callable(template) else template.format(**vars(issue))
        parts.append(text)
        if first_only:
            break
    prefix = f"{where}: " if where else ""
    return ConfigError(prefix + "; ".join(parts))


def _merged(errors: Sequence[Any]) -> list[tuple[tuple[str | int, ...], str, str, Any]]:
    """``(loc, type, msg, input)`` of each error; a value that may be a number or ``"auto"``
    fails in both union branches: report the number's constraint once, at the field's own
    location, and say that ``"auto"`` is also accepted."""
    auto = {
        tuple(e["loc"][:-1])
        for e in errors
        if e.get("loc") and str(e["loc"][-1]).startswith("literal['auto']")
    }
    out = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        msg = str(e.get("msg", "invalid"))
        if loc and loc[:-1] in auto:
            if str(loc[-1]).startswith("literal["):
                continue
            loc, msg = loc[:-1], f"{msg} (or 'auto')"
        out.append((loc, str(e.get("type", "")), msg, e.get("input")))
    return out
