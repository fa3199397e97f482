"""Benchmark runs, result tables, plots and the Markdown/HTML report.

Modules load matplotlib and Optuna only when a report or benchmark is made; importing
``zenrec`` never imports them.
"""

from __future__ import annotations

__all__: list[str] = []
