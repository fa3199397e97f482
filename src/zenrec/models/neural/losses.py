"""Training losses, each its own module: MSE, BCE, BPR, sampled softmax, full softmax, gBCE.

Sampled softmax with in-batch negatives and log-Q correction follows Yi et al., "Sampling-Bias-
Corrected Neural Modeling for Large Corpus Item Recommendations" (RecSys 2019): the logit of
item j is reduced by log q_j, the probability that j appears in a batch, so popular items are
not over-penalised for being frequent negatives.

Softmax over a positive and K sampled negatives (:class:`NegativeSoftmaxLoss`) corrects each
negative's logit by ``log(K q_j)`` (q: the sampling distribution), the sampled-softmax estimate
of the full softmax (Bengio & Senecal, IEEE TNN 2008; Blanc & Rendle, "Adaptive Sampled Softmax
with Kernel Based Sampling", ICML 2018); uniform negatives go uncorrected. Klenitskiy & Vasilev
("Turning Dross Into Gold Loss: is BERT4Rec really better than SASRec?", RecSys 2023) train
SASRec with it. gBCE (:class:`GBCELoss`) is the generalised binary cross-entropy of gSASRec
(Petrov & Macdonald, "gSASRec: Reducing Overconfidence in Sequential Recommendation Trained
with Negative Sampling", RecSys 2023).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "BCELoss",
    "BPRLoss",
    "FullSoftmaxLoss",
    "GBCELoss",
    "MSELoss",
    "NegativeSoftmaxLoss",
    "SampledSoftmaxLoss",
    "gbce_beta",
    "linear_cross_entropy",
]


class MSELoss(nn.Module):
    """Mean squared error of predicted ratings. pred (B,), target (B,) -> scalar."""

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(pred.float(), target.float())


class BCELoss(nn.Module):
    """Binary cross-entropy on logits.

    Either labelled pairs (``neg`` is None: ``pos`` are logits and ``labels`` their 0/1
    labels) or positives (B,) against sampled negatives (B, K), averaged over all B * (1 + K)
    examples (NCF's pointwise log loss).
    """

    def forward(
        self, pos: Tensor, neg: Tensor | None = None, labels: Tensor | None = None
    ) -> Tensor:
        if neg is None:
            assert labels is not None
            return F.binary_cross_entropy_with_logits(pos.float(), labels.float())
        pos, neg = pos.float(), neg.float()
        total = F.softplus(-pos).sum() + F.softplus(neg).sum()
        return total / (pos.numel() + neg.numel())


class BPRLoss(nn.Module):
    """Bayesian personalised ranking: -log sigmoid(s_pos - s_neg). pos (B,), neg (B, K)."""

    def forward(self, pos: Tensor, neg: Tensor) -> Tensor:
        return -F.logsigmoid(pos.float().unsqueeze(1) - neg.float()).mean()


class SampledSoftmaxLoss(nn.Module):
    """Softmax over the batch's positive items with log-Q correction.

    Args (forward):
        logits: (B, B) scores of every user of the batch against every positive item.
        items: (B,) item index of each positive (a repeated item is masked off-diagonal).
        log_q: (B,) log sampling probability of each positive item, or None.
    """

    def forward(self, logits: Tensor, items: Tensor, log_q: Tensor | None = None) -> Tensor:
        logits = logits.float()
        if log_q is not None:
            logits = logits - log_q.float().unsqueeze(0)  # (B, B), a fresh tensor
        else:
            logits = logits.clone()
        same = items.unsqueeze(0) == items.unsqueeze(1)  # (B, B)
        same.fill_diagonal_(False)  # a repeated positive is no negative; keep the diagonal
        logits.masked_fill_(same, float("-inf"))
        target = torch.arange(items.numel(), device=items.device)
        return F.cross_entropy(logits, target)


class FullSoftmaxLoss(nn.Module):
    """Cross-entropy over the whole catalog. logits (B, N), target (B,) item indices."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), target)


class _LinearCrossEntropy(torch.autograd.Function):
    """``cross_entropy(h @ w.T, target)`` (mean) with the (M, N) logits made ``chunk`` rows at
    a time, once: the forward pass turns each chunk of logits into its softmax in place and
    forms the gradients there, ``dL/dlogits = (softmax - onehot) / M`` (the loss is a scalar,
    so the backward pass only scales them by the incoming gradient). Three products of the
    catalog per chunk instead of four, and one ``exp`` pass instead of two."""

    @staticmethod
    def forward(ctx: Any, h: Tensor, w: Tensor, target: Tensor, chunk: int) -> Tensor:
        m = h.shape[0]
        want = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        lse = h.new_empty(m)  # (M,)
        gh = torch.empty_like(h) if want else None  # (M, D)
        gw = torch.zeros_like(w) if want else None  # (N, D)
        for s in range(0, m, chunk):
            hc = h[s : s + chunk]  # (C, D)
            p = hc @ w.T  # (C, N)
            top = p.amax(-1, keepdim=True)  # (C, 1)
            p.sub_(top).exp_()
            total = p.sum(-1, keepdim=True)  # (C, 1)
            lse[s : s + chunk] = (total.log() + top).squeeze(-1)
            if gh is not None and gw is not None:
                p.mul_(1.0 / (total * m))  # softmax / M
                p[torch.arange(p.shape[0], device=p.device), target[s : s + chunk]] -= 1.0 / m
                gh[s : s + chunk] = p @ w
                gw.addmm_(p.T, hc)
        pos = (h * w[target]).sum(-1)  # (M,)
        ctx.save_for_backward(gh, gw)
        return (lse - pos).mean()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        gh, gw = ctx.saved_tensors
        return (
            None if gh is None else gh * grad,
            None if gw is None else gw * grad,
            None,
            None,
        )


def linear_cross_entropy(h: Tensor, w: Tensor, target: Tensor, chunk: int = 128) -> Tensor:
    """Mean cross-entropy of the logits ``h @ w.T`` against ``target``, the (M, N) logits never
    held whole: the same loss and gradients as ``F.cross_entropy(h @ w.T, target)`` up to float
    rounding, in less time on a CPU: the logits stay in cache, no log-softmax output or
    zero-filled gradient is materialised, and the gradients are formed in the forward pass,
    so each chunk of logits is made once (three catalog products in all, as autograd's).

    Args:
        h: (M, D) float32 hidden states.
        w: (N, D) float32 output embeddings.
        target: (M,) int64 class indices in [0, N).
        chunk: Rows of logits made at a time.

    Example:
        >>> h, w = torch.randn(5, 3), torch.randn(4, 3)
        >>> t = torch.tensor([0, 1, 2, 3, 0])
        >>> ref = F.cross_entropy(h @ w.T, t)
        >>> bool(torch.allclose(linear_cross_entropy(h, w, t, chunk=2), ref, atol=1e-6))
        True
    """
    if h.shape[0] == 0:
        return F.cross_entropy(h @ w.T, target)
    return _LinearCrossEntropy.apply(h, w, target, chunk)


class NegativeSoftmaxLoss(nn.Module):
    """Softmax over each positive and K sampled negatives, with the sampled-softmax correction.

    The logits are ``[s_pos, s_neg_1 - log(K q_1), ..., s_neg_K - log(K q_K)]`` and the target
    is the positive; a negative equal to its row's positive (an accidental hit) is masked out.

    Args (forward):
        pos: (M,) scores of the positives.
        neg: (M, K) scores of the negatives.
        hit: (M, K) bool, True where a negative is the row's positive (masked), or None.
        log_q: (K,) or (M, K) log sampling probability of each negative, or None: no
            correction (uniform negatives, as Klenitskiy & Vasilev train them).
    """

    def forward(
        self, pos: Tensor, neg: Tensor, hit: Tensor | None = None, log_q: Tensor | None = None
    ) -> Tensor:
        neg = neg.float()
        if log_q is not None:
            neg = neg - (math.log(neg.shape[-1]) + log_q.float())  # (M, K)
        if hit is not None:
            neg = neg.masked_fill(hit, float("-inf"))
        logits = torch.cat([pos.float().unsqueeze(-1), neg], -1)  # (M, 1 + K)
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    """gSASRec's exponent ``beta = alpha (t (1 - 1/alpha) + 1/alpha)`` of the positive's
    probability, with ``alpha = K / (N - 1)`` the negative sampling rate; ``t = 0`` gives
    beta = 1 (plain BCE), ``t = 1`` gives beta = alpha (fully calibrated).

    Example:
        >>> gbce_beta(256, 3417, 0.0)
        1.0
        >>> round(gbce_beta(256, 3417, 1.0), 4)  # alpha
        0.0749
    """
    alpha = min(1.0, n_negatives / max(1, n_items - 1))
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


class GBCELoss(nn.Module):
    """Generalised binary cross-entropy (gSASRec): ``-beta log sigma(s_pos) - sum_j log(1 -
    sigma(s_neg_j))``, averaged over the M * (1 + K) terms as gSASRec's code does.

    Args (forward):
        pos: (M,) scores of the positives.
        neg: (M, K) scores of the negatives.
        beta: The exponent from :func:`gbce_beta`.
        hit: (M, K) bool, True where a negative is the row's positive (left out), or None.
    """

    def forward(self, pos: Tensor, neg: Tensor, beta: float, hit: Tensor | None = None) -> Tensor:
        pos_term = beta * F.softplus(-pos.float())  # (M,)
        neg_terms = F.softplus(neg.float())  # (M, K)
        if hit is not None:
            neg_terms = neg_terms.masked_fill(hit, 0.0)
        return (pos_term.sum() + neg_terms.sum()) / (neg.shape[0] * (1 + neg.shape[1]))
