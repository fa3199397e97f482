"""Vectorised negative sampling (uniform or popularity-based) from a passed ``torch.Generator``.

Negatives that happen to be positives of the user are re-drawn a few times; the few that remain
after that are kept, which is the usual approximation. Whether a (user, item) pair is a positive
is one lookup in a dense boolean matrix when users x items fits in ``dense_budget`` bytes (ML-1M:
22 MB), else a binary search in the sorted pair keys; no Python per sample either way.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from zenrec._arrays import unique

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
        dense_budget: Largest users x items (bytes of a bool matrix) looked up densely.
    """

    def __init__(
        self,
        n_items: int,
        item_counts: np.ndarray,
        mode: Literal["uniform", "popularity"],
        alpha: float = 0.75,
        users: np.ndarray | None = None,
        items: np.ndarray | None = None,
        device: torch.device | str = "cpu",
        retries: int = 3,
        dense_budget: int = 2**27,
    ) -> None:
        self.n_items = n_items
        self.mode = mode
        self.device = torch.device(device)
        self.retries = retries
        counts = np.asarray(item_counts, dtype=np.float64)
        w = np.power(np.maximum(counts, 0.0), alpha) + 1e-12
        self.probs = torch.as_tensor(w / w.sum(), dtype=torch.float32, device=self.device)
        self.keys: Tensor | None = None
        self.dense: Tensor | None = None
        if users is not None and items is not None and len(users):
            u = np.asarray(users, np.int64)
            it = np.asarray(items, np.int64)
            n_users = int(u.max()) + 1
            if n_users * n_items <= dense_budget:
                mask = torch.zeros(n_users * n_items, dtype=torch.bool, device=self.device)
                mask[torch.as_tensor(u * n_items + it, device=self.device)] = True
                self.dense = mask
            else:
                self.keys = torch.as_tensor(unique(u * n_items + it), device=self.device)

    def _draw(self, n: int, gen: torch.Generator) -> Tensor:
        if self.mode == "uniform":
            return torch.randint(0, self.n_items, (n,), generator=gen, device=self.device)
        return torch.multinomial(self.probs, n, replacement=True, generator=gen)

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        """Whether each (user, item) pair is a training positive (same shapes in and out)."""
        q = users * self.n_items + items
        if self.dense is not None:
            # users outside the training range (none in training) are never positive
            inside = q < self.dense.numel()
            return self.dense[q.clamp(max=self.dense.numel() - 1)] & inside
        if self.keys is None:
            return torch.zeros_like(items, dtype=torch.bool)
        pos = torch.searchsorted(self.keys, q).clamp(max=self.keys.numel() - 1)
        return self.keys[pos] == q

    def sample(self, users: Tensor, k: int, gen: torch.Generator) -> Tensor:
        """Negatives (B, k) for user indices ``users`` (B,)."""
        b = users.numel()
        neg = self._draw(b * k, gen).view(b, k)
        if self.keys is None and self.dense is None:
            return neg
        uu = users.unsqueeze(1).expand(b, k)
        for _ in range(self.retries):
            bad = self.is_positive(uu, neg)
            # draw a full replacement block (fixed shape keeps the generator stream independent
            # of how many collided, so results do not depend on data-dependent sizes)
            fresh = self._draw(b * k, gen).view(b, k)
            neg = torch.where(bad, fresh, neg)
        return neg
