"""Reading the TOML files zenrec takes (search spaces, benchmark configs) with one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from zenrec._errors import ConfigError

__all__ = ["read_toml"]


def read_toml(path: str | Path, what: str) -> tuple[Path, dict[str, Any]]:
    """Parse ``path``; ``what`` names the file's role in the error ("search space file")."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {p} not found; pass an existing .toml file")
    try:
        return p, tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc}); fix the syntax") from None
