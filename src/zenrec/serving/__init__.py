"""Online serving: a FastAPI app over a model bundle (``zenrec serve``).

``create_app(bundle_dir, settings)`` builds the app; :class:`ServeSettings` holds every knob.
FastAPI and uvicorn are imported only when this package is used (``pip install 'zenrec[serve]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ServeSettings", "create_app"]

if TYPE_CHECKING:
    from zenrec.serving.app import create_app
    from zenrec.serving.settings import ServeSettings


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from zenrec.serving.app import create_app

        return create_app
    if name == "ServeSettings":
        from zenrec.serving.settings import ServeSettings

        return ServeSettings
    raise AttributeError(f"module 'zenrec.serving' has no attribute {name!r}")
