"""``GET /``: a small self-contained demo page (no external resources)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["demo"])


@cache
def _page() -> str:
    return files("zenrec.serving").joinpath("static/demo.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def demo() -> HTMLResponse:
    return HTMLResponse(
        _page(),
        headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' "
            "'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src 'self' data:"
        },
    )
