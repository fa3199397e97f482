"""``zenrec.loadtest`` is a client of the service, and its help speaks of loopback only."""

from __future__ import annotations

import argparse
import subprocess
import sys

from zenrec.cli.main import build_parser


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                out.extend(_all_parsers(child))
    return out


def test_no_cli_help_text_speaks_of_the_workplace() -> None:
    helps = [p.format_help() for p in _all_parsers(build_parser())]
    assert len(helps) > 10
    offending = [h.splitlines()[0] for h in helps if "workplace" in h.lower()]
    assert offending == []


def test_loadtest_help_names_loopback_and_allow_remote() -> None:
    sub = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["loadtest"]
    text = " ".join(sub.format_help().split())
    assert "--allow-remote" in text
    assert "allow a non-loopback target (without it only 127.0.0.0/8, ::1 and localhost)" in text


def test_the_load_generator_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, zenrec.loadtest, zenrec.cli.loadtest; "
        "bad = sorted(m for m in sys.modules if m.startswith(('zenrec.serving', 'fastapi'))); "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_body_extra_is_merged_into_every_body_last() -> None:
    import json

    from zenrec.loadtest import build_requests
    from zenrec.loadtest.config import parse_target

    target = parse_target("http://127.0.0.1:8000", allow_remote=False)
    extra = {"user_id": None, "recent_items": [1, 50], "genres": ["Comedy"]}
    reqs = build_requests(target, "recommend", ids=[7, 8, 9], k=5, extra=extra, n=10)
    for raw in reqs:
        body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
        assert body == {"user_id": None, "k": 5, "recent_items": [1, 50], "genres": ["Comedy"]}
    plain = json.loads(build_requests(target, "recommend", ids=[7], n=1)[0].split(b"\r\n\r\n")[1])
    assert plain == {"user_id": 7, "k": 10}
