"""Pure ``nn.Module``s of zenrec's neural models: tensors in, tensors out.

Every scorer has the same four methods, so one trainer and one scoring path serve them all:

- ``user_repr(inputs) -> U``: user-side representation of a batch (id, features, history, context);
- ``item_repr(inputs) -> V``: item-side representation;
- ``score_pairs(U, V) -> (B,)``: score of aligned rows;
- ``score_matrix(U, V) -> (B, N)``: every user of ``U`` against every item of ``V``.

``dot_product`` says whether ``score_matrix`` is a plain matrix product (then in-batch and
full softmax losses are cheap). Ids and feature codes are shifted by one: row 0 of every
embedding is "unknown / padding" and stays zero.

Papers: BPR-MF (Rendle et al., UAI 2009); GMF, MLP and NeuMF (He et al., "Neural
Collaborative Filtering", WWW 2017); the MLP ranker follows Covington et al. (RecSys 2016)
and Cheng et al. ("Wide & Deep", DLRS 2016); two-tower retrieval with sampled softmax and
log-Q correction follows Yi et al. (RecSys 2019).

The whole-catalog models score through their own ``forward`` instead of the four methods:
:class:`MultVAEModule` (Liang et al., "Variational Autoencoders for Collaborative Filtering",
WWW 2018; interaction rows in, catalog logits out) and :class:`LightGCNModule` (He et al.,
"LightGCN", SIGIR 2020; the normalised graph in, propagated embeddings out). Their formulas are
in :mod:`zenrec.models.neural.vae` and :mod:`zenrec.models.neural.lightgcn`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn

from zenrec.models.neural.features import FieldSpec

__all__ = [
    "GMF",
    "MF",
    "NCFMLP",
    "FieldEmbedder",
    "LightGCNModule",
    "MLPRanker",
    "MultVAEModule",
    "NeuMF",
    "PairMLP",
    "ScoringModule",
    "TwoTower",
    "init_parameters",
]

Inputs = dict[str, Tensor]


class ScoringModule(nn.Module):
    """Base of every scorer module: the four methods the trainer and the scoring path call."""

    dot_product: bool = False
    """Whether ``score_matrix`` is a plain matrix product (cheap in-batch/full softmax)."""

    def user_repr(self, inputs: Inputs) -> Tensor:
        """User-side representation ``U`` of a batch of user inputs."""
        raise NotImplementedError

    def item_repr(self, inputs: Inputs) -> Tensor:
        """Item-side representation ``V`` of a batch of item inputs."""
        raise NotImplementedError

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        """(B,) scores of aligned rows of ``U`` and ``V``."""
        raise NotImplementedError

    def score_matrix(self, u: Tensor, v: Tensor) -> Tensor:
        """(B, N) scores of every user of ``U`` against every item of ``V``."""
        raise NotImplementedError


def init_parameters(module: nn.Module, gen: torch.Generator, emb_std: float = 0.1) -> None:
    """Initialise every parameter from ``gen`` (no global RNG): embeddings N(0, emb_std) with
    row 0 zeroed, linear weights Xavier-uniform, biases zero."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, emb_std, generator=gen)
                m.weight[0].zero_()
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, generator=gen)
                if m.bias is not None:
                    m.bias.zero_()


class FieldEmbedder(nn.Module):
    """Embeds a list of fields to ``(B, F, D)``.

    Args:
        fields: Field specs (categorical, multi, numeric, history).
        dim: Embedding size D.
        history_embedding: Embedding the ``history`` field pools (shared with the item ids).
    """

    def __init__(
        self, fields: Sequence[FieldSpec], dim: int, history_embedding: nn.Embedding | None = None
    ) -> None:
        super().__init__()
        self.fields = [f.name for f in fields]
        self.kinds = {f.name: f.kind for f in fields}
        self.tables = nn.ModuleDict()
        for f in fields:
            if f.kind in ("categorical", "multi"):
                self.tables[f.name] = nn.Embedding(f.cardinality, dim, padding_idx=0)
            elif f.kind == "numeric":
                self.tables[f.name] = nn.Linear(1, dim)
            elif f.kind == "history" and history_embedding is None:
                self.tables[f.name] = nn.Embedding(f.cardinality, dim, padding_idx=0)
        self.history_embedding = history_embedding

    def embedding(self, name: str) -> nn.Embedding:
        """The embedding table of a categorical, multi-valued or history field."""
        table = self.tables[name]
        if not isinstance(table, nn.Embedding):
            raise TypeError(f"field '{name}' is {self.kinds[name]}: it has no embedding table")
        return table

    def forward(self, inputs: Inputs) -> Tensor:
        """Args: inputs: name -> (B,) codes, (B, L) code lists or (B,) floats. Returns (B, F, D)."""
        out = []
        for name in self.fields:
            x = inputs[name]
            kind = self.kinds[name]
            if kind == "categorical":
                out.append(self.tables[name](x))  # (B, D)
            elif kind == "numeric":
                out.append(self.tables[name](x.unsqueeze(-1).float()))  # (B, D)
            else:
                table = (
                    self.history_embedding
                    if (kind == "history" and self.history_embedding is not None)
                    else self.embedding(name)
                )
                # fused gather + mean over non-zero codes: (B, L) -> (B, D), no (B, L, D) tensor
                out.append(nn.functional.embedding_bag(x, table.weight, mode="mean", padding_idx=0))
        return torch.stack(out, 1)  # (B, F, D)


class MF(ScoringModule):
    """Dot-product matrix factorisation (BPR-MF): score = <p_u, q_i>.

    Shapes: users (B,), items (N,) id codes (index + 1) -> scores (B,) or (B, N).
    """

    dot_product = True

    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users + 1, dim, padding_idx=0)
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)

    def user_repr(self, inputs: Inputs) -> Tensor:
        return self.user(inputs["user"])  # (B, D)

    def item_repr(self, inputs: Inputs) -> Tensor:
        return self.item(inputs["item"])  # (N, D)

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        return (u * v).sum(-1)  # (B,)

    def score_matrix(self, u: Tensor, v: Tensor) -> Tensor:
        return u @ v.T  # (B, N)


class GMF(MF):
    """Generalised matrix factorisation: score = h^T (p_u * q_i), a weighted dot product."""

    def __init__(self, n_users: int, n_items: int, dim: int) -> None:
        super().__init__(n_users, n_items, dim)
        self.h = nn.Linear(dim, 1, bias=False)

    def user_repr(self, inputs: Inputs) -> Tensor:
        return self.user(inputs["user"]) * self.h.weight[0]  # (B, D)


class PairMLP(nn.Module):
    """An MLP over ``[u ; v]`` whose first layer is split as ``W_u u + W_v v`` so that a
    (B, N) score matrix costs one (B, H) and one (N, H) product plus a broadcast add.

    Args:
        d_user: Width of ``u``.
        d_item: Width of ``v``.
        hidden: Hidden layer widths (at least one).
    """

    def __init__(self, d_user: int, d_item: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.first_u = nn.Linear(d_user, hidden[0], bias=True)
        self.first_v = nn.Linear(d_item, hidden[0], bias=False)
        self.rest = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(hidden))
        self.out_dim = hidden[-1]

    def _tail(self, h: Tensor) -> Tensor:
        h = torch.relu(h)
        for layer in self.rest:
            h = torch.relu(layer(h))
        return h

    def pairs(self, u: Tensor, v: Tensor) -> Tensor:
        """u (B, Du), v (B, Dv) -> (B, H_last)."""
        return self._tail(self.first_u(u) + self.first_v(v))

    def matrix(self, u: Tensor, v: Tensor) -> Tensor:
        """u (B, Du), v (N, Dv) -> (B, N, H_last)."""
        h = self.first_u(u).unsqueeze(1) + self.first_v(v).unsqueeze(0)  # (B, N, H1)
        return self._tail(h)


class NCFMLP(ScoringModule):
    """NCF's MLP branch: score = w^T MLP([p_u ; q_i])."""

    dot_product = False

    def __init__(self, n_users: int, n_items: int, dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users + 1, dim, padding_idx=0)
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.mlp = PairMLP(dim, dim, hidden)
        self.out = nn.Linear(self.mlp.out_dim, 1)

    def user_repr(self, inputs: Inputs) -> Tensor:
        return self.user(inputs["user"])  # (B, D)

    def item_repr(self, inputs: Inputs) -> Tensor:
        return self.item(inputs["item"])  # (N, D)

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        return self.out(self.mlp.pairs(u, v)).squeeze(-1)  # (B,)

    def score_matrix(self, u: Tensor, v: Tensor) -> Tensor:
        return self.out(self.mlp.matrix(u, v)).squeeze(-1)  # (B, N)


class NeuMF(ScoringModule):
    """NeuMF: ``w^T [p_u * q_i ; MLP([p'_u ; q'_i])] + b`` with separate GMF and MLP embeddings."""

    dot_product = False

    def __init__(
        self, n_users: int, n_items: int, gmf_dim: int, mlp_dim: int, hidden: Sequence[int]
    ) -> None:
        super().__init__()
        self.gmf_dim = gmf_dim
        self.gmf_user = nn.Embedding(n_users + 1, gmf_dim, padding_idx=0)
        self.gmf_item = nn.Embedding(n_items + 1, gmf_dim, padding_idx=0)
        self.mlp_user = nn.Embedding(n_users + 1, mlp_dim, padding_idx=0)
        self.mlp_item = nn.Embedding(n_items + 1, mlp_dim, padding_idx=0)
        self.mlp = PairMLP(mlp_dim, mlp_dim, hidden)
        self.out = nn.Linear(gmf_dim + self.mlp.out_dim, 1)

    def user_repr(self, inputs: Inputs) -> Tensor:
        return torch.cat([self.gmf_user(inputs["user"]), self.mlp_user(inputs["user"])], -1)

    def item_repr(self, inputs: Inputs) -> Tensor:
        return torch.cat([self.gmf_item(inputs["item"]), self.mlp_item(inputs["item"])], -1)

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        g = self.gmf_dim
        h = torch.cat([u[:, :g] * v[:, :g], self.mlp.pairs(u[:, g:], v[:, g:])], -1)  # (B, G+H)
        return self.out(h).squeeze(-1)  # (B,)

    def score_matrix(self, u: Tensor, v: Tensor) -> Tensor:
        g = self.gmf_dim
        w = self.out.weight[0]  # (G + H,)
        gmf = (u[:, :g] * w[:g]) @ v[:, :g].T  # (B, N)
        mlp = self.mlp.matrix(u[:, g:], v[:, g:]) @ w[g:]  # (B, N, H) -> (B, N)
        return gmf + mlp + self.out.bias[0]


class MLPRanker(ScoringModule):
    """Feature MLP ranker: ``MLP([user fields ; context ; item fields]) + <sum u, sum v>``.

    User-side fields (id, features, history, context) and item-side fields (id, features) are
    embedded, flattened and concatenated, then go through ReLU layers to one output. With
    ``dot_term`` the dot product of the summed user-side and summed item-side field embeddings
    is added (the "wide"/FM part): an MLP alone learns a dot product badly (Rendle et al. 2020).

    Args:
        user_fields: User-side and context field specs (the ``user`` id is added).
        item_fields: Item-side field specs (the ``item`` id is added).
        n_users: Size of the user vocabulary.
        n_items: Size of the item vocabulary.
        dim: Embedding size per field.
        hidden: Hidden layer widths.
        bias: Initial output bias (e.g. the mean rating for the rating head).
        dot_term: Add the dot product of summed user-side and item-side embeddings.
    """

    dot_product = False

    def __init__(
        self,
        user_fields: Sequence[FieldSpec],
        item_fields: Sequence[FieldSpec],
        n_users: int,
        n_items: int,
        dim: int,
        hidden: Sequence[int],
        bias: float = 0.0,
        dot_term: bool = True,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.dot_term = dot_term
        uid = FieldSpec(name="user", side="user", kind="categorical", cardinality=n_users + 1)
        iid = FieldSpec(name="item", side="item", kind="categorical", cardinality=n_items + 1)
        self.item_fields = [iid, *item_fields]
        self.items = FieldEmbedder(self.item_fields, dim)
        self.users = FieldEmbedder(
            [uid, *user_fields], dim, history_embedding=self.items.embedding("item")
        )
        self.mlp = PairMLP(dim * (1 + len(user_fields)), dim * len(self.item_fields), hidden)
        self.out = nn.Linear(self.mlp.out_dim, 1)
        self.init_bias = bias

    def user_repr(self, inputs: Inputs) -> Tensor:
        return self.users(inputs).flatten(1)  # (B, F_u, D) -> (B, F_u * D)

    def item_repr(self, inputs: Inputs) -> Tensor:
        return self.items(inputs).flatten(1)  # (N, F_i, D) -> (N, F_i * D)

    def _sums(self, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        us = u.view(u.shape[0], -1, self.dim).sum(1)  # (B, F_u * D) -> (B, D)
        vs = v.view(v.shape[0], -1, self.dim).sum(1)  # (N, F_i * D) -> (N, D)
        return us, vs

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        s = self.out(self.mlp.pairs(u, v)).squeeze(-1) + self.init_bias  # (B,)
        if self.dot_term:
            us, vs = self._sums(u, v)
            s = s + (us * vs).sum(-1)
        return s

    def score_matrix(self, u: Tensor, v: Tensor) -> Tensor:
        s = self.out(self.mlp.matrix(u, v)).squeeze(-1) + self.init_bias  # (B, N)
        if self.dot_term:
            us, vs = self._sums(u, v)
            s = s + us @ vs.T
        return s


class Tower(nn.Module):
    """Fields -> concatenated embeddings -> ReLU MLP -> (B, out_dim) (optionally L2-normalised)."""

    def __init__(
        self,
        embedder: FieldEmbedder,
        n_fields: int,
        dim: int,
        hidden: Sequence[int],
        out_dim: int,
        normalize: bool,
    ) -> None:
        super().__init__()
        self.embedder = embedder
        widths = [n_fields * dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))
        self.proj = nn.Linear(widths[-1], out_dim)
        self.normalize = normalize

    def forward(self, inputs: Inputs) -> Tensor:
        h = self.embedder(inputs).flatten(1)  # (B, F, D) -> (B, F * D)
        for layer in self.layers:
            h = torch.relu(layer(h))
        h = self.proj(h)  # (B, out_dim)
        return nn.functional.normalize(h, dim=-1) if self.normalize else h


class TwoTower(ScoringModule):
    """Two-tower retrieval model: score = <user_tower(u, context, history), item_tower(i)> / T.

    The history field mean-pools the item-id embedding of the item tower.

    Args:
        user_fields: User-side and context field specs (the ``user`` id is added first).
        item_fields: Item-side field specs (the ``item`` id is added first).
        n_users: Size of the user vocabulary.
        n_items: Size of the item vocabulary.
        dim: Field embedding size.
        hidden: Hidden widths of each tower.
        out_dim: Output (retrieval) embedding size.
        normalize: L2-normalise tower outputs (cosine similarity).
        temperature: Divides the score (useful with ``normalize``).
    """

    dot_product = True

    def __init__(
        self,
        user_fields: Sequence[FieldSpec],
        item_fields: Sequence[FieldSpec],
        n_users: int,
        n_items: int,
        dim: int,
        hidden: Sequence[int],
        out_dim: int,
        normalize: bool = False,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        uid = FieldSpec(name="user", side="user", kind="categorical", cardinality=n_users + 1)
        iid = FieldSpec(name="item", side="item", kind="categorical", cardinality=n_items + 1)
        item_emb = FieldEmbedder([iid, *item_fields], dim)
        user_emb = FieldEmbedder(
            [uid, *user_fields], dim, history_embedding=item_emb.embedding("item")
        )
        self.item_tower = Tower(item_emb, 1 + len(item_fields), dim, hidden, out_dim, normalize)
        self.user_tower = Tower(user_emb, 1 + len(user_fields), dim, hidden, out_dim, normalize)
        self.inv_temperature = 1.0 / temperature

    def user_repr(self, inputs: Inputs) -> Tensor:
        return self.user_tower(inputs) * self.inv_temperature  # (B, E)

    def item_repr(self, inputs: Inputs) -> Tensor:
        return self.item_tower(inputs)  # (N, E)

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        return (u * v).sum(-1)  # (B,)

    def score_matrix(self, u: Tensor, v: Tensor) -> Tensor:
        return u @ v.T  # (B, N)


# ====================================================================== whole-catalog models
class MultVAEModule(ScoringModule):
    """Encoder-decoder of Mult-VAE (pure: rows in, logits out).

    Args:
        n_items: Catalog size N.
        hidden: Width H of the encoder and decoder hidden layer.
        latent: Size Z of the latent code.
        dropout: Input dropout probability.
        noise_scale: Standard deviation of the reparameterisation noise (1: the paper).
    """

    def __init__(
        self, n_items: int, hidden: int, latent: int, dropout: float, noise_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.latent = latent
        self.enc = nn.Linear(n_items, hidden)
        self.enc_out = nn.Linear(hidden, 2 * latent)
        self.dec = nn.Linear(latent, hidden)
        self.dec_out = nn.Linear(hidden, n_items)
        self.dropout = dropout
        self.noise_scale = noise_scale
        # optimiser steps taken, kept with the weights so KL annealing survives checkpoint/resume
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def encode(self, x: Tensor, gen: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """x (B, N) counts -> mu (B, Z), logvar (B, Z); input dropout (from ``gen``) in training."""
        h = nn.functional.normalize(x, dim=1)
        if self.training and self.dropout > 0:
            keep = torch.rand(h.shape, generator=gen, device=h.device) >= self.dropout  # (B, N)
            h = h * keep / (1.0 - self.dropout)
        h = torch.tanh(self.enc(h))  # (B, H)
        out = self.enc_out(h)  # (B, 2Z)
        return out[:, : self.latent], out[:, self.latent :]

    def decode(self, z: Tensor) -> Tensor:
        """z (B, Z) -> logits (B, N)."""
        return self.dec_out(torch.tanh(self.dec(z)))

    def forward(
        self, x: Tensor, gen: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, N) -> (logits (B, N), mu (B, Z), logvar (B, Z)); samples z only in training."""
        mu, logvar = self.encode(x, gen)
        z = mu
        if self.training and self.noise_scale > 0:
            eps = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
            z = mu + self.noise_scale * eps * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ E`` for a constant symmetric sparse (CSR) ``A``: the gradient is ``A @ G``.

    The backward reuses ``A`` itself, since ``A^T = A``, and both directions run as CSR @ dense.
    On ML-100K's graph (2,625 nodes, 160k edges, D 64, 3 layers) forward + backward takes 11.6 ms
    against 62 ms with torch's ``sparse.mm`` on the COO tensor (one thread).
    """

    @staticmethod
    def forward(ctx: Any, adj: Tensor, e: Tensor) -> Tensor:
        ctx.adj = adj
        return adj @ e

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:
        return None, ctx.adj @ grad


class LightGCNModule(ScoringModule):
    """Ego embeddings and layer-averaged propagation (pure: graph in, embeddings out).

    Args:
        n_users: Number of users U.
        n_items: Number of items I.
        dim: Embedding size D.
        layers: Propagation layers K.
    """

    def __init__(self, n_users: int, n_items: int, dim: int, layers: int) -> None:
        super().__init__()
        self.n_users, self.n_items, self.layers = n_users, n_items, layers
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)

    def propagate(self, adj: Tensor) -> list[Tensor]:
        """adj (U+I, U+I) symmetric sparse CSR -> [E^(0), ..., E^(K)], each (U+I, D)."""
        e = torch.cat([self.user.weight, self.item.weight], 0)  # (U+I, D)
        out = [e]
        for _ in range(self.layers):
            e = _SymmetricSpMM.apply(adj, e)
            out.append(e)
        return out

    def forward(self, adj: Tensor) -> tuple[Tensor, Tensor]:
        """adj -> final user (U, D) and item (I, D) embeddings (mean over layers)."""
        e = torch.stack(self.propagate(adj), 0).mean(0)  # (U+I, D)
        return e[: self.n_users], e[self.n_users :]
