"""Periodic multi-channel EGNN (paper appendix A.5, Eq. 12-15).

Node features H (N, d_h); k vector channels per atom X (N, k, 3) Å; edges (i, j, shift) of
``graph.py`` with r_ij = x_j - x_i + shift. In the paper's notation the periodic offset is
o_ij = shift, so X_i - X_j - o_ij = -r_ij.

One layer (Eq. 13-14), every MLP being ``Linear -> LayerNorm -> SiLU -> Linear``:
    m_ij   = MLP_edge([H_i, H_j, e_ij]),  alpha_ij = sigmoid(MLP_att(m_ij))  (MLP_att: one Linear)
    H_i   += MLP_node([H_i, sum_j f_cut(r_ij) alpha_ij m_ij / n_norm])
    Phi_ij = MLP_coord([H_i, H_j, e_ij]) in R^{k x k}   (with the updated H)
    X_i   += sum_j f_cut(r_ij) Phi_ij (X_i - X_j - o_ij) / n_norm
e_ij (Eq. 12) and f_cut (Eq. 15) use the distances of the ORIGINAL positions, and o_ij is
the offset of the original positions: the channels drift away from the atoms.

Clarification (docs/design.md §4): Eq. 13 prints f_cut only in the node update; we also weight the coordinate
messages by it (as the AMDEN predecessor code does), otherwise the position output would jump
when an atom crosses the cutoff, which Eq. 15 is there to prevent.

Two forward paths compute the same function with the same weights:
- ``forward`` (optimised): the first linear map of each edge MLP is applied per node and
  gathered (W [H_i, H_j, e] = (W_a H)_i + (W_b H)_j + w_e e); the last linear map of MLP_edge
  is moved behind the sum over neighbours (a linear map commutes with the weighted sum; the
  attention logit is its composition with MLP_att, one dot product per edge); the channels are
  tracked as displacements from the atom (precision does not depend on where the atoms sit);
  on CPU the edges are processed in blocks of EDGE_CHUNK so that per-edge temporaries stay in
  cache (cost linear in the number of edges); ``EGNN.compiled`` runs the per-edge kernels
  under torch.compile (fused gathers, LayerNorm, SiLU).
- ``forward_reference`` (straightforward): Eq. 13 written out directly, concatenating [H_i, H_j, e_ij]
  per edge and carrying absolute channel positions. It is the reference of the tests and of
  the speed benchmark.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .graph import edge_vectors

EDGE_CHUNK = 2048  # edges per block of the optimised path on CPU: temporaries stay in cache


class MLP(nn.Module):
    """Linear -> LayerNorm -> SiLU -> Linear."""

    def __init__(self, n_in: int, hidden: int, n_out: int):
        super().__init__()
        self.first = nn.Linear(n_in, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.last = nn.Linear(hidden, n_out)

    def forward(self, z: Tensor) -> Tensor:
        return self.last(F.silu(self.norm(self.first(z))))

    def node_maps(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """For input width 2 d + 1 = [h_i, h_j, e]: the first linear map split per node,
        (W_a h + b, W_b h), each (N, hidden), so that first([h_i, h_j, e]) = gathered sum + w_e e."""
        d = h.shape[1]
        w = self.first.weight
        return F.linear(h, w[:, :d], self.first.bias), F.linear(h, w[:, d : 2 * d])

    def edge_weight(self) -> Tensor:
        """The column w_e (hidden,) of the first linear map acting on the edge scalar."""
        return self.first.weight[:, -1]


def _hidden(pre_i, pre_j, i, j, e, w_e, ln_w, ln_b, eps: float) -> Tensor:
    """SiLU(LayerNorm(pre_i[i] + pre_j[j] + e w_e)) (C, hidden) for a block of C edges."""
    z = pre_j.index_select(0, j)
    z += pre_i.index_select(0, i)
    z.addcmul_(e[:, None], w_e)
    return F.silu(F.layer_norm(z, (z.shape[1],), ln_w, ln_b, eps))


def edge_messages(pre_i, pre_j, i, j, e, fc, w_e, ln_w, ln_b, eps: float, w_att, b_att, n_norm: float):
    """Node-update kernel for a block of edges: hidden activations s weighted by
    f_cut alpha / n_norm (C, hidden), and the weights (C,). alpha = sigmoid(w_att . s + b_att)."""
    s = _hidden(pre_i, pre_j, i, j, e, w_e, ln_w, ln_b, eps)
    weight = fc * torch.sigmoid(F.linear(s, w_att, b_att)).squeeze(1) / n_norm
    return s * weight[:, None], weight


def coord_messages(pre_i, pre_j, i, j, e, fc, w_e, ln_w, ln_b, eps: float, w_last, b_last, dx, r_vec, n_norm: float):
    """Coordinate-update kernel for a block of edges: f_cut Phi_ij (X_i - X_j - o_ij) / n_norm
    (C, k, 3) Å, with X - x = dx (N, k, 3) and X_i - X_j - o_ij = dx_i - dx_j - r_ij."""
    s = _hidden(pre_i, pre_j, i, j, e, w_e, ln_w, ln_b, eps)
    k = dx.shape[1]
    phi = F.linear(s, w_last, b_last).view(-1, k, k)
    d = dx.index_select(0, i) - dx.index_select(0, j) - r_vec[:, None, :]
    return torch.bmm(phi, d) * (fc / n_norm)[:, None, None]


_COMPILED: dict[str, object] = {}


def kernels(compiled: bool) -> tuple:
    """(edge_messages, coord_messages), eager or under torch.compile (compiled once, lazily)."""
    if not compiled:
        return edge_messages, coord_messages
    if not _COMPILED:
        _COMPILED["edge"] = torch.compile(edge_messages, dynamic=True)
        _COMPILED["coord"] = torch.compile(coord_messages, dynamic=True)
    return _COMPILED["edge"], _COMPILED["coord"]


def edge_feature(r: Tensor, cutoff: float) -> Tensor:
    """Eq. 12: e_ij = 2 tanh(r^2 / r_cut^2) - 1, r (E,) Å -> (E,)."""
    return torch.tanh(r.square() / cutoff**2) * 2 - 1


def smooth_cutoff(r: Tensor, cutoff: float) -> Tensor:
    """Eq. 15: f_cut(r) = 2 tanh(1 - min(r, r_cut)/r_cut)^2, r (E,) Å -> (E,), 0 beyond r_cut."""
    return 2 * torch.tanh(1 - r.clamp(max=cutoff) / cutoff).square()


class EGNNLayer(nn.Module):
    """One EGNN layer of hidden width d_h with k vector channels (see module docstring)."""

    def __init__(self, hidden: int, channels: int, n_norm: float):
        super().__init__()
        self.channels = channels
        self.n_norm = float(n_norm)
        self.edge = MLP(2 * hidden + 1, hidden, hidden)
        self.att = nn.Linear(hidden, 1)
        self.node = MLP(2 * hidden, hidden, hidden)
        self.coord = MLP(2 * hidden + 1, hidden, channels * channels)
        nn.init.xavier_uniform_(self.coord.last.weight, gain=0.01)
        nn.init.zeros_(self.coord.last.bias)

    def forward(self, h, dx, i, j, r_vec, e, fc, chunk: int, compiled: bool = False):
        """Optimised path. h (N, d_h); dx (N, k, 3) Å channel displacements X - x;
        i, j (E,); r_vec (E, 3) Å = r_ij; e, fc (E,); edges in blocks of ``chunk``.
        Returns updated (h, dx)."""
        edge_kernel, coord_kernel = kernels(compiled)
        blocks = [slice(b, b + chunk) for b in range(0, len(i), chunk)]
        w_last, b_last = self.edge.last.weight, self.edge.last.bias
        w_att = self.att.weight @ w_last  # (1, d_h): alpha logit = att(last(s))
        b_att = self.att.weight @ b_last + self.att.bias
        pre_i, pre_j = self.edge.node_maps(h)
        norm = self.edge.norm
        agg_s, agg_w = torch.zeros_like(h), h.new_zeros(len(h))
        for b in blocks:
            msg, weight = edge_kernel(
                pre_i, pre_j, i[b], j[b], e[b], fc[b], self.edge.edge_weight(), norm.weight, norm.bias, norm.eps,
                w_att, b_att, self.n_norm,
            )
            agg_s.index_add_(0, i[b], msg)
            agg_w.index_add_(0, i[b], weight)
        m_agg = F.linear(agg_s, w_last) + agg_w[:, None] * b_last  # = sum_j f_cut alpha m_ij / n_norm
        h = h + self.node(torch.cat([h, m_agg], dim=1))

        pre_i, pre_j = self.coord.node_maps(h)
        norm = self.coord.norm
        upd = torch.zeros_like(dx)
        for b in blocks:
            msg = coord_kernel(
                pre_i, pre_j, i[b], j[b], e[b], fc[b], self.coord.edge_weight(), norm.weight, norm.bias, norm.eps,
                self.coord.last.weight, self.coord.last.bias, dx, r_vec[b], self.n_norm,
            )
            upd.index_add_(0, i[b], msg)
        return h, dx + upd

    def forward_reference(self, h: Tensor, x: Tensor, i: Tensor, j: Tensor, shift: Tensor, e: Tensor, fc: Tensor):
        """Straightforward path, Eq. 13 written out. x (N, k, 3) Å absolute channel positions,
        shift (E, 3) Å = o_ij. Returns updated (h, x)."""
        n = h.shape[0]
        m = self.edge(torch.cat([h[i], h[j], e[:, None]], dim=1))
        alpha = torch.sigmoid(self.att(m))
        msg = fc[:, None] * alpha * m / self.n_norm
        m_agg = h.new_zeros(n, m.shape[1]).index_add_(0, i, msg)
        h = h + self.node(torch.cat([h, m_agg], dim=1))

        phi = self.coord(torch.cat([h[i], h[j], e[:, None]], dim=1)).view(-1, self.channels, self.channels)
        d = x[i] - x[j] - shift[:, None, :]
        upd = fc[:, None, None] * torch.bmm(phi, d) / self.n_norm
        return h, x + torch.zeros_like(x).index_add_(0, i, upd)


class EGNN(nn.Module):
    """L periodic EGNN layers over a graph with fixed edges (Eq. 12-15)."""

    def __init__(self, n_layers: int, hidden: int, channels: int, cutoff: float, n_norm: float):
        super().__init__()
        self.cutoff = float(cutoff)
        self.channels = channels
        self.compiled = False  # per-edge kernels of the optimised path under torch.compile
        self.layers = nn.ModuleList(EGNNLayer(hidden, channels, n_norm) for _ in range(n_layers))

    def forward(self, h: Tensor, positions: Tensor, i: Tensor, j: Tensor, shift: Tensor) -> tuple[Tensor, Tensor]:
        """Optimised path. h (N, d_h), positions (N, 3) Å, edges i, j (E,), shift (E, 3) Å.

        Returns H^(L) (N, d_h) and X^(L) - X^(0) (N, k, 3) Å (channel displacements).
        """
        r_vec = edge_vectors(positions, i, j, shift)
        r = r_vec.norm(dim=1)
        e, fc = edge_feature(r, self.cutoff), smooth_cutoff(r, self.cutoff)
        dx = positions.new_zeros(len(positions), self.channels, 3)
        chunk = EDGE_CHUNK if positions.device.type == "cpu" else max(len(i), 1)
        for layer in self.layers:
            h, dx = layer(h, dx, i, j, r_vec, e, fc, chunk, self.compiled)
        return h, dx

    def forward_reference(
        self, h: Tensor, positions: Tensor, i: Tensor, j: Tensor, shift: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Straightforward path with the same inputs and outputs as ``forward``."""
        r = (positions[i] - positions[j] - shift).norm(dim=1)
        e, fc = edge_feature(r, self.cutoff), smooth_cutoff(r, self.cutoff)
        x0 = positions[:, None, :].expand(-1, self.channels, -1)
        x = x0
        for layer in self.layers:
            h, x = layer.forward_reference(h, x, i, j, shift, e, fc)
        return h, x - x0
