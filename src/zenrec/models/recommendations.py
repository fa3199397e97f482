"""The result types of recommenders: top-k lists (:class:`Recommendations`) and history scores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from zenrec._arrays import py_value
from zenrec._errors import ConfigError
from zenrec._frames import frame_as

__all__ = ["FallbackKind", "HistoryScores", "Recommendations"]

FallbackKind = Literal["none", "history", "popularity"]


@dataclass
class Recommendations:
    """Top-k lists for a batch of users, in raw ids.

    Attributes:
        users: Raw user ids, one per row.
        item_lists: Per user, raw item ids best first (length <= k).
        score_lists: Per user, the matching scores.
        fallback: Per user, True when popularity was used: the user was unknown, or known
            without a training interaction (a cold user).
        unknown_items: Candidate (or history) ids that were not in the catalog (ignored).
        fallback_kind: Per user, how the list was made: ``"none"`` (the model's own scores
            of a known user), ``"history"`` (scored from a list of items, see
            :meth:`Recommender.recommend_from_items`) or ``"popularity"``.
        unknown_items: Candidate ids that were not in the catalog (ignored).
        explanation: Filled by attention models' ``explain``: per user, per recommended item,
            the history items with the highest attention weight as ``{item, title, weight}``
            dicts (``None`` when not asked for).
    """

    users: np.ndarray
    item_lists: list[np.ndarray]
    score_lists: list[np.ndarray]
    fallback: np.ndarray
    unknown_items: np.ndarray
    titles: Mapping[Any, str] | None = field(default=None, repr=False)
    """Raw item id -> title, when the model's training data had a ``title`` item feature."""
    fallback_kind: list[str] = field(default_factory=list)
    explanation: list[list[list[dict[str, Any]]]] | None = None

    @property
    def items(self) -> np.ndarray:
        """2-D array of item ids (rows padded only if lengths differ is not allowed: raises)."""
        lens = {len(x) for x in self.item_lists}
        if len(lens) > 1:
            raise ValueError("users got lists of different lengths; use item_lists")
        return np.stack(self.item_lists) if self.item_lists else np.zeros((0, 0))

    @property
    def scores(self) -> np.ndarray:
        lens = {len(x) for x in self.score_lists}
        if len(lens) > 1:
            raise ValueError("users got lists of different lengths; use score_lists")
        return np.stack(self.score_lists) if self.score_lists else np.zeros((0, 0))

    def to_frame(self, *, titles: bool | None = None, backend: str = "pandas") -> Any:
        """The lists as one long table.

        Columns: ``user, rank, item, score[, title], fallback, fallback_kind``.

        Args:
            titles: Add a ``title`` column: ``None`` (default) when the model knows titles,
                ``True`` always (the model's training data must have had a ``title`` item
                feature), ``False`` never.
            backend: ``pandas`` (default) or ``polars``.

        Raises:
            ConfigError: ``titles=True`` but the model was fitted on data without a
                ``title`` item feature (attach one with ``Dataset.with_item_features``), or
                pandas is missing for ``backend="pandas"``.

        Examples:
            >>> import zenrec
            >>> ds = zenrec.synthetic_dataset(n_users=20, n_items=15, seed=0)
            >>> recs = zenrec.create_model("pop").fit(ds).recommend(ds.user_vocab.ids[:2], k=3)
            >>> list(recs.to_frame(titles=False, backend="polars").columns)
            ['user', 'rank', 'item', 'score', 'fallback', 'fallback_kind']
        """
        import polars as pl

        if titles and self.titles is None:
            raise ConfigError(
                "to_frame(titles=True): these recommendations carry no titles, because the model "
                "was fitted on data without a 'title' item feature; attach one with "
                "ds.with_item_features(table, key=..., features={'title': 'text'}) "
                "or pass titles=False"
            )
        lens = [len(x) for x in self.item_lists]
        n = int(sum(lens))
        item_dtype = (
            self.item_lists[0].dtype if self.item_lists and self.item_lists[0].size else None
        )
        items = np.concatenate(self.item_lists) if n else np.zeros(0, dtype=item_dtype or np.int64)
        cols: dict[str, Any] = {
            "user": np.repeat(
                np.asarray([py_value(u) for u in self.users], dtype=object), lens
            ).tolist(),
            "rank": np.concatenate([np.arange(1, m + 1) for m in lens])
            if n
            else np.zeros(0, np.int64),
            "item": items,
            "score": np.concatenate(self.score_lists).astype(np.float64) if n else np.zeros(0),
        }
        if titles is not False and self.titles is not None:
            cols["title"] = [self.titles.get(py_value(x)) for x in items]
        cols["fallback"] = np.repeat(np.asarray(self.fallback, dtype=bool), lens)
        kinds = self.fallback_kind
        if len(kinds) == len(lens):
            cols["fallback_kind"] = np.repeat(np.asarray(kinds, dtype=object), lens).tolist()
        return frame_as(pl.DataFrame(cols, strict=False), backend)

    def _rows(self, limit_users: int = 5) -> list[tuple[Any, int, Any, float, str | None, bool]]:
        out = []
        for u, items, scores, fb in list(
            zip(self.users, self.item_lists, self.score_lists, self.fallback)
        )[:limit_users]:
            for r, (it, sc) in enumerate(zip(items, scores), start=1):
                title = None if self.titles is None else self.titles.get(py_value(it))
                out.append((py_value(u), r, py_value(it), float(sc), title, bool(fb)))
        return out

    def __repr__(self) -> str:
        head = f"Recommendations({len(self.users)} user{'s' if len(self.users) != 1 else ''}"
        lines = [
            head
            + (
                ", unknown candidate items: " + str(self.unknown_items.tolist())
                if self.unknown_items.size
                else ""
            )
            + ")"
        ]
        rows = self._rows()
        if rows:
            wu = max(4, *(len(str(r[0])) for r in rows))
            wi = max(4, *(len(str(r[2])) for r in rows))
            lines.append(f"  {'user':>{wu}}  rank  {'item':>{wi}}      score  title")
            for u, rank, it, sc, title, fb in rows:
                mark = "  (popularity fallback)" if fb and rank == 1 else ""
                lines.append(
                    f"  {u!s:>{wu}}  {rank:>4}  {it!s:>{wi}}  {sc:9.4f}  {title or ''}{mark}"
                )
        if len(self.users) > 5:
            lines.append(f"  ... {len(self.users) - 5} more users; .to_frame() has all of them")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        has_titles = self.titles is not None
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "user",
                "rank",
                "item",
                "score",
                *(["title"] if has_titles else []),
                "fallback",
            )
        )
        body = []
        for u, rank, it, sc, title, fb in self._rows(limit_users=20):
            cells = [escape(str(u)), str(rank), escape(str(it)), f"{sc:.4f}"]
            if has_titles:
                cells.append(escape(title or ""))
            cells.append("yes" if fb else "")
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        more = (
            f"<p>... {len(self.users) - 20} more users; "
            "<code>.to_frame()</code> has all of them</p>"
            if len(self.users) > 20
            else ""
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"

    def to_records(self) -> list[dict[str, Any]]:
        out = [
            {
                "user": py_value(u),
                "items": [py_value(x) for x in items],
                "scores": [float(s) for s in scores],
                "fallback": bool(fb),
                "fallback_kind": kind,
            }
            for u, items, scores, fb, kind in zip(
                self.users, self.item_lists, self.score_lists, self.fallback, self._kinds()
            )
        ]
        if self.explanation is not None:
            for rec, expl in zip(out, self.explanation):
                rec["explanation"] = expl
        return out

    def _kinds(self) -> list[str]:
        if len(self.fallback_kind) == len(self.item_lists):
            return self.fallback_kind
        return ["popularity" if fb else "none" for fb in self.fallback]


@dataclass
class HistoryScores:
    """Scores of one pseudo-user built from a list of items (see ``Recommender.score_from_items``).

    Attributes:
        scores: float32 scores over the whole catalog, shape (n_items,).
        items: Catalog indices of the known history items, oldest first.
        unknown_items: The given ids that are not in the catalog, as given.
        fallback_kind: ``"history"`` when the model scored the history, ``"popularity"`` when
            it cannot (or no history item is known) and popularity was used instead.
    """

    scores: np.ndarray
    items: np.ndarray
    unknown_items: np.ndarray
    fallback_kind: FallbackKind
