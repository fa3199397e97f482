"""Adam with lazy row updates for sparse embedding gradients.

A dense Adam step reads and writes every parameter, embedding tables included, whatever the
batch touched; with a table per user that makes one epoch cost O(interactions x users), which
grows with the square of the log (measured: one BPR-MF epoch 5.9 s at 1M interactions, 76 s
at 5M; the scale benchmark, ``docs/results/scale.md``). Embeddings that produce row-sparse gradients
(``nn.Embedding(sparse=True)``) are updated here only on the rows a step touched, with Adam's
moments kept per row: PyTorch's ``SparseAdam`` semantics (TensorFlow's LazyAdam), plus the L2
(``adam``) or decoupled (``adamw``) weight decay on those rows. Dense gradients get exactly
``torch.optim.Adam`` / ``AdamW``'s update, so one optimiser (and one checkpoint state) covers
both kinds of parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["LazyAdam"]


class LazyAdam(torch.optim.Optimizer):
    """Adam/AdamW for dense gradients; lazy per-row Adam for row-sparse (COO) gradients.

    Args:
        params: Parameters (or groups).
        lr: Learning rate.
        betas: Adam's moment decays.
        eps: Denominator term.
        weight_decay: L2 added to the gradient (``decoupled=False``) or decoupled decay.
        decoupled: AdamW's decoupled weight decay.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "decoupled": decoupled,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps, wd, decoupled = (
                group["lr"],
                group["eps"],
                group["weight_decay"],
                group["decoupled"],
            )
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = torch.zeros((), dtype=torch.float32)
                    st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] += 1
                t = float(st["step"])
                bc1, bc2_sqrt = 1 - b1**t, (1 - b2**t) ** 0.5
                m, v = st["exp_avg"], st["exp_avg_sq"]
                if p.grad.is_sparse:
                    self._sparse_update(
                        p, p.grad, m, v, lr, b1, b2, eps, wd, decoupled, bc1, bc2_sqrt
                    )
                    continue
                g = p.grad
                if decoupled:
                    p.mul_(1 - lr * wd)
                elif wd:
                    g = g.add(p, alpha=wd)
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v.sqrt() / bc2_sqrt).add_(eps)
                p.addcdiv_(m, denom, value=-lr / bc1)

    @staticmethod
    def _sparse_update(
        p: Tensor,
        grad: Tensor,
        m: Tensor,
        v: Tensor,
        lr: float,
        b1: float,
        b2: float,
        eps: float,
        wd: float,
        decoupled: bool,
        bc1: float,
        bc2_sqrt: float,
    ) -> None:
        """The update restricted to the rows present in ``grad`` (duplicates summed first)."""
        grad = grad.coalesce()  # sorted, distinct rows: the scatters below cannot collide
        rows = grad.indices()[0]
        g = grad.values()
        if rows.numel() == 0:
            return
        w = p.index_select(0, rows)
        if decoupled:
            w.mul_(1 - lr * wd)
        elif wd:
            g = g + wd * w
        m_rows = m.index_select(0, rows).lerp_(g, 1 - b1)
        v_rows = v.index_select(0, rows).mul_(b2).addcmul_(g, g, value=1 - b2)
        m.index_copy_(0, rows, m_rows)
        v.index_copy_(0, rows, v_rows)
        w.addcdiv_(m_rows, v_rows.sqrt_().div_(bc2_sqrt).add_(eps), value=-lr / bc1)
        p.index_copy_(0, rows, w)
