"""Pure modules of the sequential, target-attention and multi-task models.

- :class:`SASRecNet` (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018).
  Input sequence ``s`` (B, T) of item index + 1 (0 = padding, left-padded). With item
  embeddings ``M`` (N+1, D) and learned positions ``P`` (T, D)::

      E = sqrt(D) * M[s] + P                               # (B, T, D), padding rows zeroed
      for each block b:  A = E + Dropout(SDPA(LN(E) W_q, E W_k, E W_v; causal))
                         E = A + Dropout(FFN(LN(A)))        # FFN(x) = W_2 GELU(W_1 x)
      F = LN(E)                                            # (B, T, D)
      r_{t,i} = F_t . M_i                                  # next-item score at position t

  Attention uses :func:`torch.nn.functional.scaled_dot_product_attention` with a causal mask
  (a position sees itself and earlier positions) and padded keys masked.

- :class:`DINNet` (Zhou et al., "Deep Interest Network for Click-Through Rate Prediction",
  KDD 2018). For history embeddings ``e_1..e_T`` and candidate embedding ``v_A`` the activation
  unit gives ``a(e_j, v_A) = MLP([e_j, v_A, e_j - v_A, e_j * v_A])`` and the user interest is
  ``v_U(A) = sum_j a(e_j, v_A) e_j`` (no softmax, as in the paper; ``softmax=True`` normalises).
  The click logit is ``MLP([user fields, context, v_U(A), item fields])``.

- :class:`MultiTaskNet` (Ma et al., "Modeling Task Relationships in Multi-task Learning with
  Multi-gate Mixture-of-Experts", KDD 2018). Input ``x`` = concatenated field embeddings;
  experts ``f_e(x)`` (E MLPs); per task k a gate ``g^k(x) = softmax(W_gk x)`` (E,), tower input
  ``sum_e g^k_e(x) f_e(x)`` and output ``y_k = h^k(...)``. ``n_experts=1`` without gates is the
  shared-bottom baseline (Caruana 1997): one bottom MLP feeding every tower.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from zenrec.models.neural.features import FieldSpec
from zenrec.models.neural.nn import FieldEmbedder, ScoringModule

__all__ = ["DINNet", "MultiTaskNet", "SASRecNet"]

Inputs = dict[str, Tensor]


def _mlp(widths: Sequence[int], dropout: float = 0.0, last_act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    pairs = list(pairwise(widths))
    for j, (a, b) in enumerate(pairs):
        layers.append(nn.Linear(a, b))
        if last_act or j < len(pairs) - 1:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class _Dropout(nn.Module):
    """Inverted dropout; on CPU its mask comes from ``torch.rand`` (``rand >= p``, scaled by
    ``1 / (1 - p)``), which costs less than half of ``nn.Dropout``'s ``bernoulli_`` there (one
    thread, (128, 50, 64): 3-5 ms against 8). Same distribution: each entry is kept with
    probability ``1 - p``; other devices use ``F.dropout``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))  # 0 or 1/(1-p)
        return x * keep


def _attention_probs(q: Tensor, k: Tensor, mask: Tensor) -> Tensor:
    """Scaled dot-product attention probabilities (B, H, T, T); mask True = may attend."""
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, T, T)
    return torch.softmax(s.masked_fill(~mask, float("-inf")), -1)


class _Block(nn.Module):
    """One pre-LN causal self-attention block (attention + position-wise FFN)."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, dim)
        self.ff2 = nn.Linear(dim, dim)
        self.drop = _Dropout(dropout)
        self.p = dropout

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, d = x.shape
        h = self.n_heads
        q = self.q(self.ln1(x)).view(b, t, h, d // h).transpose(1, 2)  # (B, H, T, D/H)
        k, v = self.kv(x).view(b, t, 2, h, d // h).permute(2, 0, 3, 1, 4)  # (B, H, T, D/H) each
        return q, k, v

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, T, D), mask (B, 1, T, T) bool (True = may attend) -> (B, T, D)."""
        b, t, d = x.shape
        q, k, v = self._qkv(x)
        if self.training and self.p > 0 and x.device.type == "cpu":
            # SDPA's own attention dropout draws with bernoulli_, slow on CPU: the same
            # attention written out, with the cheaper mask of _Dropout
            a = self.drop(_attention_probs(q, k, mask)) @ v  # (B, H, T, D/H)
        else:
            a = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.p if self.training else 0.0
            )
        a = a.transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        x = x + self.drop(self.out(a))
        return x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(self.ln2(x))))))

    def weights(self, x: Tensor, mask: Tensor) -> Tensor:
        """Attention probabilities (B, H, T, T), computed explicitly (for explanations)."""
        q, k, _ = self._qkv(x)
        return _attention_probs(q, k, mask)


class SASRecNet(ScoringModule):
    """SASRec: item + learned positional embeddings, causal self-attention blocks.

    Args:
        n_items: Catalog size N (embedding rows N+1, row 0 = padding).
        dim: Hidden size D (divisible by ``n_heads``).
        max_len: Sequence length T.
        n_blocks: Number of attention blocks.
        n_heads: Attention heads.
        dropout: Dropout on embeddings, attention and FFN outputs.
    """

    def __init__(
        self, n_items: int, dim: int, max_len: int, n_blocks: int, n_heads: int, dropout: float
    ) -> None:
        super().__init__()
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList([_Block(dim, n_heads, dropout) for _ in range(n_blocks)])
        self.ln = nn.LayerNorm(dim)
        self.drop = _Dropout(dropout)
        self.scale = math.sqrt(dim)

    @staticmethod
    def _mask(seq: Tensor) -> Tensor:
        t = seq.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=seq.device).tril()  # (T, T)
        keys = (seq > 0)[:, None, None, :]  # (B, 1, 1, T)
        eye = torch.eye(t, dtype=torch.bool, device=seq.device)
        return causal & (keys | eye)  # (B, 1, T, T): padding queries see themselves only

    def _embed(self, seq: Tensor) -> Tensor:
        pos = torch.arange(seq.shape[1], device=seq.device)
        x = self.item(seq) * self.scale + self.pos(pos)  # (B, T, D)
        return self.drop(x) * (seq > 0).unsqueeze(-1)

    def forward(self, seq: Tensor) -> Tensor:
        """seq (B, T) int64 -> hidden states (B, T, D)."""
        mask = self._mask(seq)
        x = self._embed(seq)
        for blk in self.blocks:
            x = blk(x, mask) * (seq > 0).unsqueeze(-1)
        return self.ln(x)

    def last_hidden(self, seq: Tensor) -> Tensor:
        """(B, T) -> (B, D): the state at the last (most recent) position."""
        return self.forward(seq)[:, -1]

    def item_weights(self) -> Tensor:
        """(N, D) output item embeddings (shared with the input embedding)."""
        return self.item.weight[1:]

    def last_attention(self, seq: Tensor) -> Tensor:
        """(B, T): the last block's attention of the last position over the sequence, averaged
        over heads (padding gets 0)."""
        mask = self._mask(seq)
        x = self._embed(seq)
        for blk in self.blocks[:-1]:
            x = blk(x, mask) * (seq > 0).unsqueeze(-1)
        w = self.blocks[-1].weights(x, mask)  # (B, H, T, T)
        return w[:, :, -1, :].mean(1) * (seq > 0)  # (B, T)


class DINNet(ScoringModule):
    """DIN: target attention over the behaviour history plus an MLP over all fields.

    Args:
        user_fields: User and context fields except the history (may be empty).
        item_fields: Item feature fields (the id is added here).
        n_users: Users (id field of N_u + 1 rows).
        n_items: Items (id embedding shared by candidate and history).
        dim: Embedding size D.
        attention_layers: Hidden widths of the activation unit.
        layers: Hidden widths of the output MLP.
        softmax: Normalise attention weights with a softmax over the history.
        user_id: Embed the user id (False: a user is its history and user fields only).
    """

    dot_product = False

    def __init__(
        self,
        user_fields: Sequence[FieldSpec],
        item_fields: Sequence[FieldSpec],
        n_users: int,
        n_items: int,
        dim: int,
        attention_layers: Sequence[int],
        layers: Sequence[int],
        softmax: bool = False,
        user_id: bool = True,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.user = nn.Embedding(n_users + 1, dim, padding_idx=0) if user_id else None
        self.user_fields = FieldEmbedder(list(user_fields), dim)
        self.item_fields = FieldEmbedder(list(item_fields), dim)
        self.n_uf = len(user_fields) + int(user_id)
        self.n_if = len(item_fields) + 1
        self.att = nn.Sequential(
            _mlp([4 * dim, *attention_layers], last_act=True),
            nn.Linear(attention_layers[-1] if attention_layers else 4 * dim, 1),
        )
        d_in = (self.n_uf + 1 + self.n_if) * dim
        self.mlp = nn.Sequential(
            _mlp([d_in, *layers], last_act=True), nn.Linear(layers[-1] if layers else d_in, 1)
        )
        self.softmax = softmax

    def user_repr(self, inputs: Inputs) -> tuple[Tensor, Tensor]:
        """-> (user fields (B, Fu*D), history codes (B, T))."""
        hist = inputs["history"]
        parts = [hist.new_zeros((hist.shape[0], 0, self.dim), dtype=torch.float32)]  # (B, 0, D)
        if self.user is not None:
            parts.append(self.user(inputs["user"]).unsqueeze(1))  # (B, 1, D)
        if self.user_fields.fields:
            parts.append(self.user_fields(inputs))  # (B, Fu-1, D)
        u = torch.cat(parts, 1).flatten(1)  # (B, Fu*D)
        return u, inputs["history"]

    def item_repr(self, inputs: Inputs) -> Tensor:
        """-> (N, Fi*D); the first D columns are the id embedding (the attention query)."""
        parts = [self.item(inputs["item"]).unsqueeze(1)]  # (N, 1, D)
        if self.item_fields.fields:
            parts.append(self.item_fields(inputs))
        return torch.cat(parts, 1).flatten(1)

    def _activation(self, e: Tensor, q: Tensor) -> Tensor:
        """Activation-unit logits (B, K, T) of histories ``e`` (B, T, D) for candidates ``q``
        (B, K, D).

        The first layer ``W [e, q, e - q, e * q] + b`` is evaluated as
        ``(W_1 + W_3) e + (W_2 - W_3) q + W_4 (e * q) + b``: the same function, but the ``e``
        term is computed once per history position, the ``q`` term once per candidate, and no
        (B, K, T, 4D) input is built.
        """
        layers = [*self.att[0].children(), self.att[1]]
        first = layers[0]
        assert isinstance(first, nn.Linear)
        w1, w2, w3, w4 = first.weight.split(self.dim, 1)  # 4 x (H, D)
        he = e @ (w1 + w3).T  # (B, T, H)
        hq = q @ (w2 - w3).T + first.bias  # (B, K, H)
        z = (e.unsqueeze(1) * q.unsqueeze(2)) @ w4.T  # (B, K, T, H)
        z = z + he.unsqueeze(1) + hq.unsqueeze(2)  # (B, K, T, H)
        for layer in layers[1:]:
            z = layer(z)
        return z.squeeze(-1)  # (B, K, T)

    def _weights(self, hist: Tensor, logits: Tensor) -> Tensor:
        """Attention weights (B, K, T) from logits (B, K, T); padded positions get 0."""
        valid = (hist > 0).unsqueeze(1)  # (B, 1, T)
        if self.softmax:
            w = torch.softmax(logits.masked_fill(~valid, float("-inf")), -1)
            return torch.nan_to_num(w, nan=0.0)
        return logits * valid

    def attention(self, u: tuple[Tensor, Tensor], v: Tensor) -> Tensor:
        """Activation-unit weights (B, T) of each history item for the aligned candidate."""
        hist = u[1]  # (B, T)
        q = v[:, : self.dim].unsqueeze(1)  # (B, 1, D)
        return self._weights(hist, self._activation(self.item(hist), q)).squeeze(1)

    def score_candidates(self, u: tuple[Tensor, Tensor], v: Tensor) -> Tensor:
        """(B, K) scores of each user row against its own K candidates ``v`` (B, K, Fi*D).

        The history is embedded and projected once per user row, not once per candidate
        (training scores a positive and its sampled negatives in one call).
        """
        hist = u[1]  # (B, T)
        e = self.item(hist)  # (B, T, D)
        w = self._weights(hist, self._activation(e, v[..., : self.dim]))  # (B, K, T)
        interest = w @ e  # (B, K, D)
        k = v.shape[1]
        x = torch.cat([u[0].unsqueeze(1).expand(-1, k, -1), interest, v], -1)  # (B, K, F*D)
        return self.mlp(x).squeeze(-1)  # (B, K)

    def score_pairs(self, u: tuple[Tensor, Tensor], v: Tensor) -> Tensor:
        return self.score_candidates(u, v.unsqueeze(1)).squeeze(1)  # (B,)

    def score_matrix(self, u: tuple[Tensor, Tensor], v: Tensor) -> Tensor:
        b = u[0].shape[0]
        return self.score_candidates(u, v.unsqueeze(0).expand(b, -1, -1))  # (B, N)


class MultiTaskNet(ScoringModule):
    """MMoE (``n_experts`` > 1, one softmax gate per task) or shared-bottom (``gates=False``).

    Args:
        user_fields, item_fields: Fields embedded and concatenated into the input x.
        n_users, n_items: Id vocabularies.
        dim: Embedding size D of each field.
        n_experts: Experts E (shared-bottom: 1).
        expert_layers: Hidden widths of each expert (or of the shared bottom).
        tower_layers: Hidden widths of each task tower.
        n_tasks: Tasks K (outputs).
        gates: Mix experts with per-task softmax gates (MMoE); False = shared bottom.
        bias: Initial output bias per task (e.g. the mean rating).
    """

    dot_product = False
    bias: Tensor

    def __init__(
        self,
        user_fields: Sequence[FieldSpec],
        item_fields: Sequence[FieldSpec],
        n_users: int,
        n_items: int,
        dim: int,
        n_experts: int,
        expert_layers: Sequence[int],
        tower_layers: Sequence[int],
        n_tasks: int,
        gates: bool,
        bias: Sequence[float],
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users + 1, dim, padding_idx=0)
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.user_fields = FieldEmbedder(list(user_fields), dim)
        self.item_fields = FieldEmbedder(list(item_fields), dim)
        d_in = (len(user_fields) + len(item_fields) + 2) * dim
        self.experts = nn.ModuleList(
            [_mlp([d_in, *expert_layers], dropout) for _ in range(n_experts)]
        )
        self.gates = (
            nn.ModuleList([nn.Linear(d_in, n_experts) for _ in range(n_tasks)]) if gates else None
        )
        h = expert_layers[-1]
        self.towers = nn.ModuleList(
            [
                nn.Sequential(
                    _mlp([h, *tower_layers], dropout),
                    nn.Linear(tower_layers[-1] if tower_layers else h, 1),
                )
                for _ in range(n_tasks)
            ]
        )
        self.register_buffer("bias", torch.tensor(list(bias), dtype=torch.float32))

    def user_repr(self, inputs: Inputs) -> Tensor:
        parts = [self.user(inputs["user"]).unsqueeze(1)]
        if self.user_fields.fields:
            parts.append(self.user_fields(inputs))
        return torch.cat(parts, 1).flatten(1)  # (B, Fu*D)

    def item_repr(self, inputs: Inputs) -> Tensor:
        parts = [self.item(inputs["item"]).unsqueeze(1)]
        if self.item_fields.fields:
            parts.append(self.item_fields(inputs))
        return torch.cat(parts, 1).flatten(1)  # (N, Fi*D)

    def tasks(self, u: Tensor, v: Tensor) -> Tensor:
        """Aligned rows -> (B, K) outputs (task 0 a rating, others logits)."""
        x = torch.cat([u, v], 1)  # (B, d_in)
        ex = torch.stack([e(x) for e in self.experts], 1)  # (B, E, H)
        outs = []
        for k, tower in enumerate(self.towers):
            if self.gates is None:
                mixed = ex[:, 0]  # (B, H)
            else:
                g = torch.softmax(self.gates[k](x), -1)  # (B, E)
                mixed = (g.unsqueeze(-1) * ex).sum(1)  # (B, H)
            outs.append(tower(mixed).squeeze(-1))
        return torch.stack(outs, 1) + self.bias  # (B, K)

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        return self.tasks(u, v)[:, 0]  # (B,)

    def score_matrix(self, u: Tensor, v: Tensor) -> Tensor:
        b, n = u.shape[0], v.shape[0]
        return self.score_pairs(u.repeat_interleave(n, 0), v.repeat(b, 1)).view(b, n)
