"""Warm start of a neural model from an older fit of the same model (``zenrec refresh``).

The new model is built on the grown vocabularies as a full fit would build it, then every
parameter of the old module is copied in where it fits:

- the same shape: copied whole (layers, feature tables, position embeddings...);
- grown along a user or item axis (id embedding tables, Mult-VAE's item layers): the rows of
  the ids both vocabularies hold are copied to their new positions (found by raw id, since a
  grown vocabulary renumbers), and the rows of new ids are set to the mean of the old rows
  (padding row 0 left out of the mean and kept at zero);
- anything else (a layer whose width changed): kept at its fresh initialisation, and listed.

New rows start from the mean, not from features: ``zenrec refresh`` builds its log from the
bundle's pairs and the events, which carry ids only, so a new item has no feature values to
look up. An axis is a user (item) axis when its old and new sizes are the two user (item)
vocabulary sizes plus the same offset of 0 or 1 (a padding row); when both kinds fit, the
parameter's name decides (``user`` or ``item`` in it).

Training then restarts the optimiser (fresh Adam moments) at the config's learning rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from zenrec.data.dataset import Dataset
from zenrec.data.vocab import Vocabulary

if TYPE_CHECKING:
    from zenrec.models.neural.base import NeuralRecommender

__all__ = ["copy_weights", "holdout_split", "id_positions", "new_pair_mask"]

NEW_ROWS = "mean of the bundle's rows (padding row excluded)"
"""How :func:`copy_weights` initialises the rows of new ids (recorded in ``warm_start_``)."""


def id_positions(old: Vocabulary, new: Vocabulary) -> np.ndarray:
    """Index in ``new`` of each id of ``old`` (-1 where ``new`` lacks it); ids match by value,
    also across an integer vocabulary that became a string one (``1000`` and ``"1000"``)."""
    return new.encode(old.ids)  # encode coerces the ids to ``new``'s kind


def _axis_kind(
    name: str, old: int, new: int, sizes: dict[str, tuple[int, int]]
) -> tuple[str, int] | None:
    """('user' | 'item', offset) when an axis of old size ``old`` and new size ``new`` indexes
    users or items (offset: rows before the first id, 1 for a padding row)."""
    fits = [
        (kind, off)
        for kind, (n_old, n_new) in sizes.items()
        for off in (0, 1)
        if old == n_old + off and new == n_new + off
    ]
    if len({k for k, _ in fits}) > 1:
        leaf = name.lower()
        fits = [(k, o) for k, o in fits if k in leaf] or fits[:0]
    return fits[0] if len({k for k, _ in fits}) == 1 else None


def _grow(old: torch.Tensor, new: torch.Tensor, axis: int, pos: np.ndarray, off: int) -> None:
    """Write ``old`` into ``new`` along ``axis``: old id ``j`` to ``pos[j] + off``; the other
    positions past the padding get the mean of the old ids' slices."""
    src = old.movedim(axis, 0)  # (rows_old, ...)
    dst = new.movedim(axis, 0)  # (rows_new, ...): a view, writes reach ``new``
    ids = src[off:]
    mean = ids.mean(0) if ids.shape[0] else torch.zeros_like(dst[0])
    dst[off:] = mean.to(dst.dtype)
    if off:
        dst[:off] = src[:off].to(dst.dtype)  # the padding row stays as trained (zero)
    keep = np.flatnonzero(pos >= 0)
    at = torch.as_tensor(pos[keep] + off, dtype=torch.int64, device=dst.device)
    dst[at] = ids[torch.as_tensor(keep, dtype=torch.int64, device=src.device)].to(dst.dtype)


def copy_weights(
    module: nn.Module, old: NeuralRecommender, new: NeuralRecommender
) -> dict[str, Any]:
    """Copy ``old``'s trained module into ``module`` (``new``'s fresh one) as the module
    docstring says, in place.

    Args:
        module: The freshly built and initialised module of ``new``.
        old: The fitted model to start from (same class).
        new: The model being fitted (its vocabularies set).

    Returns:
        What was done: ``copied`` (same shape), ``grown`` (name -> 'user'/'item' axis and
        rows), ``reinitialised`` (names kept fresh), ``new_users``, ``new_items``, ``new_rows``.
    """
    src_module = old._require_module()
    assert old.user_vocab is not None and old.item_vocab is not None
    assert new.user_vocab is not None and new.item_vocab is not None
    pos = {
        "user": id_positions(old.user_vocab, new.user_vocab),
        "item": id_positions(old.item_vocab, new.item_vocab),
    }
    sizes = {
        "user": (len(old.user_vocab), len(new.user_vocab)),
        "item": (len(old.item_vocab), len(new.item_vocab)),
    }
    src = src_module.state_dict()
    copied: list[str] = []
    grown: dict[str, str] = {}
    fresh: list[str] = []
    with torch.no_grad():
        for name, dst in module.state_dict().items():
            o = src.get(name)
            if o is None or o.dim() != dst.dim():
                fresh.append(name)
                continue
            o = o.to(dst.device)
            if o.shape == dst.shape:
                dst.copy_(o)
                copied.append(name)
                continue
            diff = [a for a in range(dst.dim()) if o.shape[a] != dst.shape[a]]
            kinds = [_axis_kind(name, o.shape[a], dst.shape[a], sizes) for a in diff]
            if len(diff) != 1 or kinds[0] is None:
                fresh.append(name)
                continue
            kind, off = kinds[0]
            _grow(o, dst, diff[0], pos[kind], off)
            grown[name] = f"{kind} axis {diff[0]}: {o.shape[diff[0]]} -> {dst.shape[diff[0]]}"
    return {
        "copied": len(copied),
        "grown": grown,
        "reinitialised": fresh,
        "new_users": int(len(new.user_vocab) - np.sum(pos["user"] >= 0)),
        "new_items": int(len(new.item_vocab) - np.sum(pos["item"] >= 0)),
        "new_rows": NEW_ROWS,
    }


def new_pair_mask(old: NeuralRecommender, train: Dataset) -> np.ndarray:
    """True for each interaction of ``train`` whose (user, item) pair ``old`` was not trained
    on: the only ones that can validate a warm start (the old pairs are already learnt, so a
    held-out old pair measures memory, and its score falls as training treats it as unseen)."""
    assert old.user_vocab is not None and old.item_vocab is not None and old.seen_ is not None
    u = id_positions(train.user_vocab, old.user_vocab)[train.users]
    i = id_positions(train.item_vocab, old.item_vocab)[train.items]
    known = (u >= 0) & (i >= 0)
    out = np.ones(len(train), dtype=bool)
    if known.any():
        hit = np.asarray(old.seen_[u[known], i[known]]).ravel() != 0
        out[np.flatnonzero(known)[hit]] = False
    return out


def holdout_split(
    old: NeuralRecommender, train: Dataset, share: float, seed: int
) -> tuple[Dataset, Dataset]:
    """(rest, held out): a seeded ``share`` of ``train``'s new pairs (see :func:`new_pair_mask`)
    held out to choose the warm start's epoch count; the old pairs all stay in ``rest``."""
    new = np.flatnonzero(new_pair_mask(old, train))
    rng = np.random.default_rng(seed)
    hold = np.zeros(len(train), dtype=bool)
    hold[new[rng.random(new.size) < share]] = True
    return train.subset(~hold), train.subset(hold)
