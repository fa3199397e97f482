"""Training losses, each its own module: MSE, BCE, BPR, sampled softmax, full softmax.

Sampled softmax with in-batch negatives and log-Q correction follows Yi et al., "Sampling-Bias-
Corrected Neural Modeling for Large Corpus Item Recommendations" (RecSys 2019): the logit of
item j is reduced by log q_j, the probability that j appears in a batch, so popular items are
not over-penalised for being frequent negatives.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["BCELoss", "BPRLoss", "FullSoftmaxLoss", "MSELoss", "SampledSoftmaxLoss"]


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
