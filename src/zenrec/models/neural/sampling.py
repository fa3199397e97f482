"""Vectorised negative sampling (uniform or popularity-based) from a passed ``torch.Generator``.

Negatives that happen to be positives of the user are re-drawn a few times (a sorted key array
and ``searchsorted``, no Python per sample); the few that remain after that are kept, which is
the usual approximation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = ["NegativeSampler"]


class NegativeSampler:
    """Draws negative items for users.

    Args:
        n_items: Catalog size.
        item_counts: Training interactions per item (for ``popularity`` and log-Q).
        mode: ``uniform`` or ``popularity`` (probability proportional to count ** alpha).
        alpha: Popularity exponent.
        users, items: Training pairs whose items are not returned as negatives for their user.
        device: Where samples are drawn.
        retries: Rounds of re-drawing negatives that are positives.
    """

    def __init__(self, n_items: int, item_counts: np.ndarray, mode: Literal["uniform", "popularity"],
                 alpha: float = 0.75, users: np.ndarray | None = None, items: np.ndarray | None = None,
                 device: torch.device | str = "cpu", retries: int = 3) -> None:
        self.n_items = n_items
        self.mode = mode
        self.device = torch.device(device)
        self.retries = retries
        counts = np.asarray(item_counts, dtype=np.float64)
        w = np.power(np.maximum(counts, 0.0), alpha) + 1e-12
        self.probs = torch.as_tensor(w / w.sum(), dtype=torch.float32, device=self.device)
        self.keys: Tensor | None = None
        if users is not None and items is not None and len(users):
            keys = np.unique(np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64))
            self.keys = torch.as_tensor(keys, device=self.device)

    def _draw(self, n: int, gen: torch.Generator) -> Tensor:
        if self.mode == "uniform":
            return torch.randint(0, self.n_items, (n,), generator=gen, device=self.device)
        return torch.multinomial(self.probs, n, replacement=True, generator=gen)

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        if self.keys is None:
            return torch.zeros_like(items, dtype=torch.bool)
        q = users * self.n_items + items
        pos = torch.searchsorted(self.keys, q).clamp(max=self.keys.numel() - 1)
        return self.keys[pos] == q

    def sample(self, users: Tensor, k: int, gen: torch.Generator) -> Tensor:
        """Negatives (B, k) for user indices ``users`` (B,)."""
        b = users.numel()
        neg = self._draw(b * k, gen).view(b, k)
        if self.keys is None:
            return neg
        uu = users.unsqueeze(1).expand(b, k)
        for _ in range(self.retries):
            bad = self.is_positive(uu, neg)
            # draw a full replacement block (fixed shape keeps the generator stream independent
            # of how many collided, so results do not depend on data-dependent sizes)
            fresh = self._draw(b * k, gen).view(b, k)
            neg = torch.where(bad, fresh, neg)
        return neg
