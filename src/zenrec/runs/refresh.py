"""``zenrec refresh``: a fresher bundle from a served bundle and the events recorded since.

What a bundle keeps: its training interactions as a binary user x item matrix (``seen``), its
vocabularies, config and item metadata; not the original log's values or times. So the new
training log is the bundle's ``seen`` pairs (value 1) plus the new events mapped to implicit
feedback, and no data path is needed.

The steps:

1. **Events**: the store's events the bundle was not trained on (received after its
   ``lineage.events.received_until``; every event for a bundle without lineage), of the
   feedback types (default: every type; ``rating`` events only when ``value >= min_rating``).
   Each (user, item) pair with such an event is one positive interaction.
2. **Holdout**: the newest ``holdout`` fraction of those events by event time is kept out.
3. **Challenger**: the bundle's model class and config on bundle pairs + the other events,
   with new users and items added to the vocabularies. EASE, ItemKNN and RP3beta re-solve
   their closed form on the new matrix; iALS starts from the bundle's factors and re-solves
   the users the events touch, then the touched items, then those users again (``warm``; new
   rows start at zero; ``warm=False``: a full solve); neural models start from the bundle's
   weights (``warm``; :meth:`~zenrec.models.neural.base.NeuralRecommender.warm_start_from`):
   every parameter copied where its shape still fits, id tables grown with the new users' and
   items' rows set to the mean of the old rows, then at most ``warm_epochs`` epochs at the
   bundle's config, the count chosen by early stopping on a held-out share of the new pairs
   (``warm=False``: a full fit from a random start).
4. **Champion vs challenger** on the holdout: NDCG@k and Recall@k of the holdout users' held-out
   items, with the same items excluded for both (the user's bundle history and training
   events). The champion is scored twice: as served before (``champion``: its known users'
   rows, popularity for others) and session-aware (``champion_session``: the user's history
   plus its training events, scored by ``score_from_items``, as ``/v1/recommend`` does).
5. **Output**: the challenger's config is refitted on the bundle pairs plus *every* event read
   (holdout included) and written to the output directory with ``lineage`` (parent hash, event
   range, counts) in ``bundle.json``; ``refresh.json`` holds the three models' metrics, the
   data added, the seconds of each phase and the promotion decision: promote when
   ``challenger >= champion - margin`` on the decision metric.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from zenrec._errors import DataError
from zenrec.data import Dataset
from zenrec.data.vocab import Vocabulary
from zenrec.evaluation.metrics import ndcg, recall
from zenrec.events import Event, EventStore
from zenrec.models.base import Recommender

__all__ = ["RefreshConfig", "RefreshResult", "promote", "refresh_bundle"]


class RefreshConfig(BaseModel):
    """How ``zenrec refresh`` turns events into a challenger and decides on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feedback_types: tuple[str, ...] | None = None
    """Event types counted as positive feedback (``None``: every type)."""
    min_rating: float | None = None
    """``rating`` events count only when their value is at least this (``None``: all)."""
    holdout: float = Field(0.2, gt=0.0, lt=1.0)
    """Newest fraction of the new events (by event time) kept out for the comparison."""
    k: int = Field(10, ge=1)
    """List length of the comparison metrics."""
    margin: float = Field(0.0, ge=0.0)
    """Promote when the challenger's NDCG@k is at least the champion's minus this."""
    min_events: int = Field(1, ge=1)
    """Refuse to refresh with fewer new feedback events than this."""
    warm: bool = True
    """iALS: start from the bundle's factors and re-solve only the users, then the items, then
    the users again that the new events touch (new rows start at zero). Neural models: start
    from the bundle's weights (new rows: the mean of the old ones) and train ``warm_epochs``
    at most. ``False``: a full fit from a random start. EASE, ItemKNN, RP3beta and the other
    closed-form models are always re-solved in full."""
    warm_epochs: int = Field(6, ge=1)
    """Neural warm start: the most epochs trained (capped at the config's ``epochs``). The
    challenger picks the count by early stopping on a held-out share of the new pairs, then
    trains on all its pairs for that many epochs from the bundle's weights again; the output
    bundle trains the same count on every pair (no held-out run of its own)."""


class RefreshResult(BaseModel):
    """What one refresh did (written as ``refresh.json`` in the output bundle's directory)."""

    parent: str
    """Content sha256 of the champion bundle."""
    output: str
    model: str
    events: dict[str, Any]
    """Counts and time range of the events read, trained on and held out."""
    data: dict[str, int]
    """Users, items and interactions before and after, new users and items."""
    metrics: dict[str, dict[str, float]]
    """``champion``, ``champion_session`` and ``challenger``: ``ndcg@k``, ``recall@k``."""
    holdout_users: int
    decision: dict[str, Any]
    """``promote`` (bool), ``metric``, ``margin`` and the reason."""
    seconds: dict[str, float]
    method: str = ""
    """How the model was updated."""
    warm_start: dict[str, Any] | None = None
    """Neural warm start (None otherwise): ``max_epochs``, the new rows' initialisation, and
    per fit (``challenger``, ``output``) the epochs run (``holdout_epochs`` choosing the count,
    None for the output, then ``epochs``), ``seconds``, the parameters copied, grown and
    re-initialised."""

    def write(self, path: str | Path) -> Path:
        from zenrec._io import atomic_write_text

        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")
        return Path(path)


def lineage_cutoff(meta: dict[str, Any]) -> float:
    """Newest ``received`` time of the events a bundle was trained on (0: none)."""
    events = (meta.get("lineage") or {}).get("events") or {}
    return float(events.get("received_until", 0.0) or 0.0)


def _raw(vocab: Vocabulary, values: list[str]) -> np.ndarray:
    """Event ids (strings) as the vocabulary's kind of id where they fit it."""
    if vocab.is_integer:
        try:
            return np.asarray([int(v) for v in values], dtype=np.int64)
        except ValueError:
            pass
    return np.asarray(values, dtype=object)


def _feedback(events: list[Event], cfg: RefreshConfig) -> list[Event]:
    out = []
    for e in events:
        if cfg.feedback_types is not None and e.type not in cfg.feedback_types:
            continue
        if e.type == "rating" and cfg.min_rating is not None and e.value < cfg.min_rating:
            continue
        out.append(e)
    return out


@dataclass
class _Log:
    users: np.ndarray
    items: np.ndarray


def _bundle_log(model: Recommender) -> _Log:
    assert model.seen_ is not None and model.user_vocab is not None
    assert model.item_vocab is not None
    coo = model.seen_.tocoo()
    return _Log(model.user_vocab.decode(coo.row), model.item_vocab.decode(coo.col))


def _ids(vocab: Vocabulary, column: list[str]) -> np.ndarray:
    return _raw(vocab, column) if column else np.zeros(0, dtype=vocab.ids.dtype)


def _column(values: np.ndarray) -> np.ndarray:
    """Raw ids as int64 when all are integers, else as strings (one kind per vocabulary)."""
    if all(isinstance(x, (int, np.integer)) for x in values):
        return values.astype(np.int64)
    return values.astype(str)


def _dataset(base: _Log, users: np.ndarray, items: np.ndarray, name: str) -> Dataset:
    """The bundle's pairs plus the events' pairs, one interaction per (user, item) pair (the
    bundle's history is binary, so repeated events do not weigh more)."""
    u = _column(np.concatenate([base.users.astype(object), users.astype(object)]))
    i = _column(np.concatenate([base.items.astype(object), items.astype(object)]))
    uv, iv = Vocabulary.from_values(u), Vocabulary.from_values(i)
    codes = uv.encode(u) * len(iv) + iv.encode(i)
    _, first = np.unique(codes, return_index=True)
    first.sort()
    return Dataset.from_raw(u[first], i[first], name=name, user_vocab=uv, item_vocab=iv)


def _warm_ials(model: Recommender, ds: Dataset, users: np.ndarray, items: np.ndarray) -> Any:
    """An iALS model on ``ds`` from ``model``'s factors: the users touched by new events
    re-solved against the item factors, then the touched items against the user factors, then
    the users again (exact least squares through ``implicit``, the same solver ``fit`` uses).

    Args:
        users: Raw ids of the users with new events.
        items: Raw ids of the items with new events.
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from zenrec._threads import configured_threads
    from zenrec.models.classic.als import IALS

    assert isinstance(model, IALS)
    assert model.user_vocab is not None and model.item_vocab is not None
    meta = model.bundle_meta or {}
    old_u = np.asarray(model.user_factors_, dtype=np.float32)
    old_i = np.asarray(model.item_factors_, dtype=np.float32)
    cfg = model.params()
    reg = float((meta.get("model_state") or {}).get("resolved", {}).get("regularization", 0.0))
    if cfg.get("regularization") not in (None, "auto"):
        reg = float(cfg["regularization"])
    seen = ds.csr().astype(np.float32)
    uv, iv = ds.user_vocab, ds.item_vocab
    f = old_i.shape[1]
    x = np.zeros((len(uv), f), dtype=np.float32)
    y = np.zeros((len(iv), f), dtype=np.float32)
    x[uv.encode(model.user_vocab.ids)] = old_u
    y[iv.encode(model.item_vocab.ids)] = old_i
    solver = AlternatingLeastSquares(
        factors=f,
        regularization=reg,
        alpha=float(cfg.get("alpha", 1.0)),
        num_threads=int(cfg.get("num_threads") or 0) or configured_threads(),
        random_state=int(cfg.get("seed", 0)),
    )
    solver.user_factors, solver.item_factors = x, y
    u_idx = np.unique(uv.encode(users))
    i_idx = np.unique(iv.encode(items))
    by_item = seen.T.tocsr()
    with threadpool_limits(1, "blas"):
        if u_idx.size and i_idx.size:  # no new training events: the bundle's factors as they are
            solver.partial_fit_users(u_idx, seen[u_idx])
            solver.partial_fit_items(i_idx, by_item[i_idx])
            solver.partial_fit_users(u_idx, seen[u_idx])
    from zenrec.models.registry import get_model_class

    arrays = {
        "seen.indptr": seen.indptr.astype(np.int64),
        "seen.indices": seen.indices.astype(np.int64),
        "item_popularity": np.asarray(seen.sum(axis=0)).ravel().astype(np.float32),
        "state.user_factors": np.ascontiguousarray(solver.user_factors, dtype=np.float32),
        "state.item_factors": np.ascontiguousarray(solver.item_factors, dtype=np.float32),
    }
    parts = {
        "model": model.name,
        "config": cfg,
        "model_state": {"resolved": {"factors": f, "regularization": reg}},
    }
    vocab = {"users": uv.to_json(), "items": iv.to_json()}
    return get_model_class(model.name).from_bundle_parts("<refresh>", parts, arrays, vocab, {})


def _fit(
    model: Recommender,
    ds: Dataset,
    warm: bool = False,
    touched: tuple[np.ndarray, np.ndarray] | None = None,
    warm_epochs: int | None = None,
    choose_epochs: bool = True,
) -> Recommender:
    from zenrec.models.registry import get_model_class

    if warm and model.name == "ials" and touched is not None:
        challenger = _warm_ials(model, ds, *touched)
    else:
        klass = get_model_class(model.name)
        challenger = klass(**model.params())
        neural = warm and hasattr(challenger, "warm_start_from")  # without importing torch
        if neural:
            challenger.warm_start_from(  # type: ignore[attr-defined]
                model, epochs=warm_epochs, choose_epochs=choose_epochs
            )
        t = time.perf_counter()
        challenger.fit(ds)
        record = getattr(challenger, "warm_start_", None) if neural else None
        if record is not None:
            record["seconds"] = round(time.perf_counter() - t, 4)
    # Keep the champion's item metadata (titles, genres...) for the items it knew.
    if model.item_meta and challenger.item_vocab is not None and model.item_vocab is not None:
        pos = model.item_vocab.encode(challenger.item_vocab.ids.astype(str))
        challenger.item_meta = {
            name: [values[p] if p >= 0 else None for p in pos.tolist()]
            for name, values in model.item_meta.items()
            if isinstance(values, list)
        }
    return challenger


def _metrics(
    scores: np.ndarray, truth: list[np.ndarray], excluded: list[np.ndarray], k: int
) -> dict[str, float]:
    """NDCG@k and Recall@k of score rows over one catalog (NaN: item unknown to the model)."""
    s = np.where(np.isfinite(scores), scores, -np.inf).astype(np.float64)
    for row, ex in enumerate(excluded):
        s[row, ex] = -np.inf
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    hits = np.zeros(top.shape, dtype=bool)
    for row, t in enumerate(truth):
        hits[row] = np.isin(top[row], t) & np.isfinite(s[row, top[row]])
    n_rel = np.asarray([t.size for t in truth])
    return {
        f"ndcg@{k}": float(ndcg(hits, n_rel, k).mean()),
        f"recall@{k}": float(recall(hits, n_rel, k).mean()),
    }


def refresh_bundle(
    bundle: str | Path,
    events_url: str,
    output: str | Path,
    config: RefreshConfig | None = None,
) -> RefreshResult:
    """Fit a challenger on a bundle's data plus new events, compare it with the bundle on the
    newest events, and write it (with ``refresh.json``) to ``output``.

    Args:
        bundle: The champion bundle directory.
        events_url: The event store (``sqlite:///...`` or ``postgresql://...``).
        output: Directory of the refreshed bundle (written atomically).
        config: Feedback mapping, holdout, margin (default :class:`RefreshConfig()`).

    Returns:
        The :class:`RefreshResult`, also written to ``output/refresh.json``.

    Raises:
        DataError: Fewer new feedback events than ``config.min_events``.
    """
    from zenrec.models.registry import load_model

    cfg = config or RefreshConfig()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    champion = load_model(bundle)
    meta = dict(champion.bundle_meta or {})
    assert champion.user_vocab is not None and champion.item_vocab is not None
    cutoff = lineage_cutoff(meta)
    store = EventStore(events_url)
    try:
        read = store.events_between(math.nextafter(cutoff, math.inf), None, by="received")
    finally:
        store.close()
    events = sorted(_feedback(read, cfg), key=lambda e: (e.ts, e.event_id))
    if len(events) < cfg.min_events:
        raise DataError(
            f"refresh: {len(events)} new feedback events in {events_url.split('@')[-1]} since "
            f"the bundle (received after {cutoff:.3f}); at least {cfg.min_events} are needed"
        )
    n_hold = max(1, int(round(len(events) * cfg.holdout)))
    train_ev, hold_ev = events[:-n_hold], events[-n_hold:]
    seconds["load"] = time.perf_counter() - t0

    base = _bundle_log(champion)
    t = time.perf_counter()
    train_ds = _dataset(
        base,
        _ids(champion.user_vocab, [e.user_id for e in train_ev]),
        _ids(champion.item_vocab, [e.item_id for e in train_ev]),
        "refresh-train",
    )
    train_u = _ids(champion.user_vocab, [e.user_id for e in train_ev])
    train_i = _ids(champion.item_vocab, [e.item_id for e in train_ev])
    challenger = _fit(champion, train_ds, cfg.warm, (train_u, train_i), cfg.warm_epochs)
    seconds["fit_challenger"] = time.perf_counter() - t

    # ---- comparison on the holdout, over the challenger's catalog
    t = time.perf_counter()
    assert challenger.user_vocab is not None and challenger.item_vocab is not None
    assert challenger.seen_ is not None
    cat = challenger.item_vocab.ids
    h_users = _ids(champion.user_vocab, [e.user_id for e in hold_ev])
    h_items = challenger.item_vocab.encode(_ids(champion.item_vocab, [e.item_id for e in hold_ev]))
    users, truth, excluded = [], [], []
    user_keys = h_users.astype(str)
    for u in np.unique(user_keys):
        sel = user_keys == u
        items = h_items[sel]
        items = np.unique(items[items >= 0])
        uidx = int(challenger.user_vocab.encode(np.asarray([u]))[0])
        seen = (
            challenger.seen_.indices[
                challenger.seen_.indptr[uidx] : challenger.seen_.indptr[uidx + 1]
            ]
            if uidx >= 0
            else np.zeros(0, np.int64)
        )
        items = np.setdiff1d(items, seen)  # already in the history: nothing to predict
        if items.size:
            users.append(h_users[sel][0])
            truth.append(items)
            excluded.append(seen)
    metrics: dict[str, dict[str, float]] = {}
    if users:
        champ_scores = champion.score(users, cat)
        session = np.full((len(users), cat.size), np.nan, dtype=np.float32)
        pos = champion.item_vocab.encode(cat.astype(str))
        for row, ex in enumerate(excluded):
            hs = champion.score_from_items(cat[ex])
            session[row, pos >= 0] = hs.scores[pos[pos >= 0]]
        metrics["champion"] = _metrics(champ_scores, truth, excluded, cfg.k)
        metrics["champion_session"] = _metrics(session, truth, excluded, cfg.k)
        metrics["challenger"] = _metrics(challenger.score(users), truth, excluded, cfg.k)
    seconds["evaluate"] = time.perf_counter() - t

    key = f"ndcg@{cfg.k}"
    if not users:
        promote, reason = False, "no holdout user has a new item to predict"
    else:
        c, ch = metrics["challenger"][key], metrics["champion"][key]
        promote = ch - c <= cfg.margin
        reason = f"challenger {key} {c:.4f} vs champion {ch:.4f} (margin {cfg.margin:g}): " + (
            "not worse beyond the margin" if promote else "worse beyond the margin"
        )

    # ---- the refreshed bundle: the same config on everything read
    t = time.perf_counter()
    full_ds = _dataset(
        base,
        _ids(champion.user_vocab, [e.user_id for e in events]),
        _ids(champion.item_vocab, [e.item_id for e in events]),
        "refresh",
    )
    # a warm-started neural challenger chose its epoch count on held-out new pairs: the output
    # (the same data plus the holdout events) trains that many, with no held-out run of its own
    chosen = (getattr(challenger, "warm_start_", None) or {}).get("epochs")
    final = _fit(
        champion,
        full_ds,
        cfg.warm,
        (
            _ids(champion.user_vocab, [e.user_id for e in events]),
            _ids(champion.item_vocab, [e.item_id for e in events]),
        ),
        chosen or cfg.warm_epochs,
        choose_epochs=not chosen,
    )
    seconds["fit_output"] = time.perf_counter() - t
    received = [e.received for e in read]
    lineage = {
        "parent": meta.get("content_sha256"),
        "parent_model": champion.name,
        "events": {
            "received_from": cutoff,
            "received_until": max(received),
            "ts_min": events[0].ts,
            "ts_max": events[-1].ts,
            "read": len(read),
            "feedback": len(events),
            "holdout": len(hold_ev),
            "holdout_from_ts": hold_ev[0].ts,
        },
        "chain": [*((meta.get("lineage") or {}).get("chain") or []), meta.get("content_sha256")],
    }
    t = time.perf_counter()
    out = Path(output)
    final.save(
        out,
        metrics={f"refresh_{key}": metrics["challenger"][key]} if users else None,
        extra={"lineage": lineage},
    )
    seconds["save"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    assert final.user_vocab is not None and final.item_vocab is not None
    warm_start = _warm_record(cfg, challenger, final)
    new_users = int(np.sum(final.user_vocab.encode(champion.user_vocab.ids) >= 0))
    new_items = int(np.sum(final.item_vocab.encode(champion.item_vocab.ids) >= 0))
    result = RefreshResult(
        parent=str(meta.get("content_sha256")),
        output=str(out),
        model=champion.name,
        events=lineage["events"],
        data={
            "users_before": len(champion.user_vocab),
            "items_before": champion.n_items,
            "interactions_before": int(base.users.size),
            "users_after": len(final.user_vocab),
            "items_after": final.n_items,
            "interactions_after": int(final.seen_.nnz) if final.seen_ is not None else 0,
            "new_users": len(final.user_vocab) - new_users,
            "new_items": final.n_items - new_items,
        },
        metrics=metrics,
        holdout_users=len(users),
        decision={"promote": promote, "metric": key, "margin": cfg.margin, "reason": reason},
        method=_method(cfg, champion.name, warm_start is not None),
        warm_start=warm_start,
        seconds={k: round(v, 4) for k, v in seconds.items()},
    )
    result.write(out / "refresh.json")
    return result


def _warm_record(
    cfg: RefreshConfig, challenger: Recommender, final: Recommender
) -> dict[str, Any] | None:
    """refresh.json's ``warm_start``: the neural warm start of both fits (None: none ran)."""
    ch: dict[str, Any] | None = getattr(challenger, "warm_start_", None)
    out: dict[str, Any] | None = getattr(final, "warm_start_", None)
    if not cfg.warm or ch is None or out is None:
        return None
    return {
        "max_epochs": ch.get("max_epochs"),
        "new_rows": out.get("new_rows"),
        "challenger": {n: x for n, x in ch.items() if n != "new_rows"},
        "output": {n: x for n, x in out.items() if n != "new_rows"},
    }


def _method(cfg: RefreshConfig, name: str, neural_warm: bool) -> str:
    if cfg.warm and name == "ials":
        return (
            "incremental: touched users, then items, then users re-solved from the bundle's factors"
        )
    if neural_warm:
        return (
            "warm start: the bundle's weights copied (new id rows: mean of the old rows), then "
            f"at most {cfg.warm_epochs} epochs at the bundle's config"
        )
    return "full re-solve on the new log"


def promote(
    url: str, api_key: str, bundle_dir: str | Path, timeout: float = 120.0
) -> dict[str, Any]:
    """Ask a running ``zenrec serve`` to serve ``bundle_dir`` (``POST URL/admin/reload``).

    Args:
        url: The service's base URL (``http://host:port``).
        api_key: Its admin key (sent as ``X-API-Key``).
        bundle_dir: The bundle to serve, as a path the service can read.

    Returns:
        The service's answer (``previous_version``, ``version``, ``model``, ``load_seconds``).

    Raises:
        ConfigError: The service refused the bundle or could not be reached (its reason).
    """
    import json
    import urllib.error
    import urllib.request

    from zenrec._errors import ConfigError

    body = json.dumps({"bundle_dir": str(Path(bundle_dir).resolve())}).encode()
    req = urllib.request.Request(
        url.rstrip("/") + "/admin/reload",
        data=body,
        method="POST",
        headers={"content-type": "application/json", "x-api-key": api_key},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            answer: dict[str, Any] = json.loads(r.read())
            return answer
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise ConfigError(f"--promote {url}: /admin/reload answered {exc.code}: {detail}") from None
    except OSError as exc:
        raise ConfigError(f"--promote {url}: cannot reach the service ({exc})") from None
