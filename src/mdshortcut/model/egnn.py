"""Periodic multi-channel EGNN (paper appendix A.5, Eq. 12-15).

Node features H (N, d_h); k vector channels per atom X (N, k, 3) Å; edges (i, j, shift) of
``graph.py`` with r_ij = x_j - x_i + shift. In the paper's notation the periodic offset is
o_ij = shift, so X_i - X_j - o_ij = -r_ij.

One layer (Eq. 13-14), every MLP being ``Linear -> LayerNorm -> SiLU -> Linear``:
    m_ij   = MLP_edge([H_i, H_j, e_ij]),  alpha_ij = sigmoid(MLP_att(m_ij))  (MLP_att: one Linear)
    H_i   += MLP_node([H_i, sum_j f_cut(r_ij) alpha_ij m_ij / n_norm])
    Phi_ij = MLP_coord([H_i, H_j, e_ij]) in R^{k x k}   (with the updated H)
    X_i   += sum_j f_cut(r_ij) Phi_ij (X_i - X_j - o_ij) / n_norm
e_ij (Eq. 12, one scalar; or a radial basis, ``distance_features``) and f_cut (Eq. 15) use the
distances of the ORIGINAL positions (the paper), or of the current first channel in every layer
(``update_distances``); o_ij is the offset of the original positions: the channels drift away
from the atoms. An optional conditioning vector (the noise-level embedding) is mapped into H
before every layer.

Clarification (docs/design.md §4): Eq. 13 prints f_cut only in the node update; we also weight the coordinate
messages by it (as the AMDEN predecessor code does), otherwise the position output would jump
when an atom crosses the cutoff, which Eq. 15 is there to prevent.

Two forward paths compute the same function with the same weights:
- ``forward`` (fused): the edges are grouped by receiving atom i into padded neighbourhoods
  (``Neighbourhoods``: atoms in blocks of similar degree, each block (n, K) slots, padding
  weighted 0), so that sums over j are dense reductions and the H_i terms broadcasts. The
  first linear map of each edge MLP is applied per node and gathered
  (W [H_i, H_j, e] = (W_a H)_i + (W_b H)_j + w_e e). The last linear map of MLP_edge is moved
  behind the sum over neighbours (the attention logit is its composition with MLP_att, one
  dot product per edge). The coordinate update never forms Phi_ij: with
  D_ij = f_cut (X_i - X_j - o_ij) / n_norm (k, 3),
      sum_j Phi_ij D_ij = W (sum_j s_ij ⊗ D_ij) + B (sum_j D_ij)
  where s_ij is the MLP's hidden activation and (W, B) its last linear map, so the per-edge
  k x k x d_h map and the k x k mixing become one (d_h x K) @ (K x 3k) matrix product per
  atom (2.7x fewer multiply-adds at d_h = 64, k = 8; the first layer, whose channels all sit
  at the atom, mixes a single channel). Both blocks are ``torch.autograd.Function``s with a
  hand-written backward, processed in blocks of ``CHUNK_SLOTS`` slots (training) or
  ``INFERENCE_SLOTS``: per slot, the backward keeps what costs an exponential or a LayerNorm
  reduction to recompute (``Saved``) and D_ij (four passes over the slots to gather again),
  and recomputes the rest (the gathered inputs, the attention weights). Measured through
  ``train_model`` on default a-Si SDE steps (one CPU thread, interleaved): 0.54x the CPU time
  of the previous chunked-autograd path (commit 48d17c6). The channels are tracked
  as displacements from the atom (precision does not depend on where the atoms sit).
  ``EGNN.compiled`` runs the block kernels under torch.compile.
- ``forward_reference`` (straightforward): Eq. 13 written out directly, concatenating
  [H_i, H_j, e_ij] per edge, forming Phi_ij and carrying absolute channel positions, all
  differentiated by autograd. It is the reference of the tests and of the speed benchmarks.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .graph import edge_vectors

# slots (padded edges) per block of the fused path on CPU, for training and for inference.
# Measured on a default SDE step: 8192 beat 2048 by 1.2x and 4096 by 1.05x (fewer Python
# calls), 16384 and above no better; inference at the paper's size is flat from 2048 to 16384.
CHUNK_SLOTS = 8192
INFERENCE_SLOTS = 16384


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

    def hidden_weights(self, hidden: int) -> Hidden:
        """The per-edge part of the first linear map (its columns after [h_i, h_j] of width
        ``hidden`` each) and the LayerNorm (see ``Hidden``)."""
        return Hidden(self.first.weight[:, 2 * hidden :], self.norm.weight, self.norm.bias)


class Hidden(NamedTuple):
    """Per-edge weights of an edge MLP's hidden layer s = SiLU(LayerNorm(pre_i + pre_j + W_e e)):
    w_e (d_h, R), the columns of the first linear map acting on the R edge features; norm_w,
    norm_b (d_h,), the LayerNorm's affine map."""

    w_e: Tensor
    norm_w: Tensor
    norm_b: Tensor


LN_EPS = 1e-5  # nn.LayerNorm's default, the reference path's


class Neighbourhoods(NamedTuple):
    """The edges grouped by receiving atom into padded blocks (the fused path's layout).

    Atoms are taken in order of increasing degree (``order`` (N,)); block b holds the atoms
    ``order[start:stop]`` and K slots each (K = the largest degree in the block), so padding
    stays small. Per slot (P = sum of n·K over blocks): ``edge`` (P,) the edge index (0 at
    padding), ``j`` (P,) the sending atom (the receiving atom at padding), ``valid`` (P,).
    ``blocks``: the ``Block`` views. ``compiled``: run the block kernels under torch.compile.
    """

    order: Tensor
    blocks: tuple[Block, ...]
    edge: Tensor
    j: Tensor
    valid: Tensor
    compiled: bool = False

    @classmethod
    def build(cls, i: Tensor, j: Tensor, n_nodes: int, slots: int | None, compiled: bool = False) -> Neighbourhoods:
        """From edges i, j (E,) long; ``slots`` per block (None: one block)."""
        degree = torch.bincount(i, minlength=n_nodes)
        by_i = torch.argsort(i, stable=True)
        first = torch.cumsum(degree, 0) - degree
        order = torch.argsort(degree, stable=True)
        sorted_degree = degree[order].tolist()
        k_max = max(sorted_degree[-1] if sorted_degree else 0, 1)
        per_block = n_nodes if slots is None else max(1, slots // k_max)
        blocks, edges, valids, slot = [], [], [], 0
        for start in range(0, n_nodes, per_block):
            stop = min(start + per_block, n_nodes)
            k = max(sorted_degree[stop - 1], 1)
            nodes = order[start:stop]
            pos = torch.arange(k, device=i.device)
            valid = pos < degree[nodes, None]
            where = torch.where(valid, first[nodes, None] + pos, 0)
            edges.append((by_i[where.clamp(max=max(len(i) - 1, 0))] if len(i) else where).reshape(-1))
            valids.append(valid.reshape(-1))
            blocks.append((start, stop, slot, k))
            slot += (stop - start) * k
        edge, valid = torch.cat(edges), torch.cat(valids)
        receiver = torch.cat([order[a:b, None].expand(-1, k).reshape(-1) for a, b, _, k in blocks])
        senders = torch.where(valid, j[edge] if len(j) else receiver, receiver)
        views = tuple(
            Block(order[a:b], slice(a, b), slots, (b - a, k), senders[slots].view(b - a, k))
            for a, b, p, k in blocks
            for slots in [slice(p, p + (b - a) * k)]
        )
        return cls(order, views, edge, senders, valid, compiled)


class Block(NamedTuple):
    """One block of ``Neighbourhoods``: its atoms (n,), their rows in block order, its slots,
    shape (n, K) and sending atoms j (n, K)."""

    nodes: Tensor
    rows: slice
    slots: slice
    shape: tuple[int, int]
    j: Tensor

    def take(self, *per_slot: Tensor) -> list[Tensor]:
        """Each of ``per_slot`` (P, ...) for this block's slots, as (n, K, ...)."""
        return [t[self.slots].view(*self.shape, *t.shape[1:]) for t in per_slot]


class Saved(NamedTuple):
    """What a block's hidden layer keeps for the backward pass (each (n, K, d_h) but mean,
    rstd (n, K, 1)): the LayerNorm input z and its statistics, the activation s = SiLU(y) and
    sigmoid(y) of the LayerNorm output y. The exponentials and the LayerNorm statistics are
    what is costly to recompute on a CPU (1.5-2 ns per element against 0.3-0.5 for a product)."""

    z: Tensor
    mean: Tensor
    rstd: Tensor
    s: Tensor
    sig: Tensor


def _hidden(pre_i: Tensor, pre_j: Tensor, j: Tensor, e: Tensor, w: Hidden) -> tuple[Tensor, Saved]:
    """s = SiLU(LayerNorm(pre_i + pre_j[j] + W_e e)) (n, K, d_h) of a block: pre_i (n, d_h) of
    its atoms, j (n, K), edge features e (n, K, R)."""
    n, k = j.shape
    z = pre_j.index_select(0, j.reshape(-1)).view(n, k, -1)
    z += pre_i[:, None, :]
    z.view(n * k, -1).addmm_(e.reshape(n * k, -1), w.w_e.t())
    y, mean, rstd = torch.ops.aten.native_layer_norm(z, [z.shape[-1]], w.norm_w, w.norm_b, LN_EPS)
    sig = torch.sigmoid(y)
    s = y * sig
    return s, Saved(z, mean, rstd, s, sig)


def _hidden_backward(g_s: Tensor, saved: Saved, e: Tensor, w: Hidden, need_e: bool):
    """Gradients of ``_hidden`` from g_s (n, K, d_h): g_z (n, K, d_h) (that of pre_i per slot
    and of pre_j[j]), of w_e (d_h, R), norm_w, norm_b, and of e (n, K, R) (None unless ``need_e``)."""
    g_y = torch.addcmul(saved.sig, saved.s, 1 - saved.sig)  # SiLU'(y) = sig (1 + y (1 - sig)) = sig + s (1 - sig)
    g_y *= g_s
    g_z, g_nw, g_nb = torch.ops.aten.native_layer_norm_backward(
        g_y, saved.z, [g_y.shape[-1]], saved.mean, saved.rstd, w.norm_w, w.norm_b, [True, True, True]
    )
    h = g_z.shape[-1]
    g_we = g_z.reshape(-1, h).t() @ e.reshape(-1, e.shape[-1])
    return g_z, g_we, g_nw, g_nb, (g_z @ w.w_e) if need_e else None


_COMPILED: dict[str, object] = {}


def kernels(compiled: bool) -> tuple:
    """(_hidden, _hidden_backward, _displacements), eager or under torch.compile (compiled
    once, lazily, with dynamic shapes: block sizes change every step)."""
    eager = (_hidden, _hidden_backward, _displacements)
    if not compiled:
        return eager
    if not _COMPILED:
        _COMPILED.update({f.__name__: torch.compile(f, dynamic=True) for f in eager})
    return tuple(_COMPILED[f.__name__] for f in eager)


def _unsort(nb: Neighbourhoods, x: Tensor) -> Tensor:
    """Rows in block order (atoms ``nb.order``) -> rows in atom order."""
    return torch.empty_like(x).index_copy_(0, nb.order, x)


def _accumulate(sums: list[Tensor], grads) -> None:
    for acc, g in zip(sums, grads):
        acc += g


def block_slots(training: bool, device: torch.device) -> int | None:
    """Slots per block: ``CHUNK_SLOTS`` when training on the CPU, ``INFERENCE_SLOTS`` without
    gradients, one block on other devices (enough memory, fewer launches)."""
    return None if device.type != "cpu" else (CHUNK_SLOTS if training else INFERENCE_SLOTS)


class EdgeBlock(torch.autograd.Function):
    """Node-update messages: for every atom i, agg_s_i = sum_j f_cut alpha_ij s_ij / n_norm
    (d_h,) and agg_w_i = sum_j f_cut alpha_ij / n_norm, with s_ij the hidden activation of
    MLP_edge and alpha_ij = sigmoid(w_att . s_ij + b_att). Inputs per slot: e, fcn = f_cut /
    n_norm (0 at padding)."""

    @staticmethod
    def forward(ctx, nb, pre_i, pre_j, e, fcn, w_e, norm_w, norm_b, w_att, b_att):
        w = Hidden(w_e, norm_w, norm_b)
        hidden = kernels(nb.compiled)[0]
        agg_s, agg_w = torch.empty_like(pre_i), pre_i.new_empty(len(pre_i))  # block order
        ctx.saved = []
        for block in nb.blocks:
            eb, fb = block.take(e, fcn)
            s, saved = hidden(pre_i[block.nodes], pre_j, block.j, eb, w)
            sg = torch.sigmoid(s @ w_att + b_att)
            weight = fb * sg
            agg_s[block.rows] = torch.bmm(weight[:, None, :], s)[:, 0]
            agg_w[block.rows] = weight.sum(1)
            ctx.saved.append((saved, sg))
        ctx.nb = nb
        ctx.save_for_backward(pre_i, pre_j, e, fcn, w_e, norm_w, norm_b, w_att, b_att)
        return _unsort(nb, agg_s), _unsort(nb, agg_w)

    @staticmethod
    def backward(ctx, g_agg_s, g_agg_w):
        pre_i, pre_j, e, fcn, w_e, norm_w, norm_b, w_att, b_att = ctx.saved_tensors
        nb, w, need = ctx.nb, Hidden(w_e, norm_w, norm_b), ctx.needs_input_grad
        hidden_backward = kernels(nb.compiled)[1]
        g_agg_s, g_agg_w = g_agg_s[nb.order], g_agg_w[nb.order]
        g_pre_i, g_pre_j = torch.empty_like(pre_i), torch.zeros_like(pre_j)
        g_e = torch.zeros_like(e) if need[3] else None
        g_fcn = torch.zeros_like(fcn) if need[4] else None
        g_w = [torch.zeros_like(x) for x in (w_e, norm_w, norm_b, w_att)]
        g_batt = b_att.new_zeros(())
        for block, (saved, sg) in zip(nb.blocks, ctx.saved):
            eb, fb = block.take(e, fcn)
            s = saved.s
            g_msg = g_agg_s[block.rows]
            # a batched dot product: vecdot is 3x faster than bmm's matrix-vector form on a CPU
            g_weight = torch.linalg.vecdot(s, g_msg[:, None, :]) + g_agg_w[block.rows, None]
            g_a = g_weight * fb * sg * (1 - sg)
            # g_s = f_cut alpha g_msg + g_a w_att (n, K, d_h)
            g_s = ((fb * sg)[..., None] * g_msg[:, None, :]).addcmul_(g_a[..., None], w_att)
            g_w[3] += (g_a.reshape(1, -1) @ s.reshape(-1, s.shape[-1]))[0]
            g_batt += g_a.sum()
            g_z, *g_hidden, g_eb = hidden_backward(g_s, saved, eb, w, need[3])
            _accumulate(g_w, g_hidden)
            g_pre_i[block.rows] = g_z.sum(1)
            g_pre_j.index_add_(0, block.j.reshape(-1), g_z.reshape(-1, g_z.shape[-1]))
            if g_e is not None:
                g_e[block.slots] = g_eb.reshape(-1, e.shape[-1])
            if g_fcn is not None:
                g_fcn[block.slots] = (g_weight * sg).reshape(-1)
        return None, _unsort(nb, g_pre_i), g_pre_j, g_e, g_fcn, *g_w, g_batt


class CoordBlock(torch.autograd.Function):
    """Coordinate update: upd_i = sum_j Phi_ij D_ij (3, k) Å with Phi_ij = W s_ij + B (k x k)
    from the hidden activation s_ij of MLP_coord and D_ij = fcn (dx_i - dx_j - r_ij), computed
    as W (sum_j s_ij ⊗ D_ij) + B sum_j D_ij (module docstring). Channels are innermost:
    dx (N, 3, k) Å channel displacements. Inputs per slot: e, fcn, r (P, 3) Å; W (k'·k, d_h),
    B (k'·k,), the last linear map of MLP_coord (k' output channels; k' != k for the first
    layer, see ``EGNNLayer.forward``)."""

    @staticmethod
    def forward(ctx, nb, pre_i, pre_j, e, fcn, r, dx, w_e, norm_w, norm_b, w_last, b_last):
        w = Hidden(w_e, norm_w, norm_b)
        hidden, _, displacements = kernels(nb.compiled)
        k = dx.shape[2]  # input channels; output channels: len(b_last) / k
        w_mix, b_mix = w_last.view(-1, k * pre_i.shape[1]).t(), b_last.view(-1, k).t()  # [(b, h), a], [b, a]
        upd = dx.new_empty(len(dx), 3, len(b_mix.T))  # block order
        ctx.saved = []
        for block in nb.blocks:
            eb, fb, rb = block.take(e, fcn, r)
            s, saved = hidden(pre_i[block.nodes], pre_j, block.j, eb, w)
            d = displacements(dx, block.nodes, block.j, rb, fb)
            t = torch.bmm(d.transpose(1, 2), s).view(-1, k * s.shape[2])  # sum_j D ⊗ s: [(i, x), (b, h)]
            f = d.sum(1).view(-1, k)  # sum_j D: [(i, x), b]
            upd[block.rows] = torch.addmm(f @ b_mix, t, w_mix).view(-1, 3, upd.shape[2])
            ctx.saved.append((saved, t, f, d))
        ctx.nb = nb
        ctx.save_for_backward(pre_i, pre_j, e, fcn, r, dx, w_e, norm_w, norm_b, w_last, b_last)
        return _unsort(nb, upd)

    @staticmethod
    def backward(ctx, g_upd):
        pre_i, pre_j, e, fcn, r, dx, w_e, norm_w, norm_b, w_last, b_last = ctx.saved_tensors
        nb, w, need = ctx.nb, Hidden(w_e, norm_w, norm_b), ctx.needs_input_grad
        _, hidden_backward, displacements = kernels(nb.compiled)
        k = dx.shape[2]
        h = pre_i.shape[1]
        w_mix, b_mix = w_last.view(-1, k * h), b_last.view(-1, k)
        g_upd = g_upd[nb.order].contiguous()
        g_pre_i, g_pre_j = torch.empty_like(pre_i), torch.zeros_like(pre_j)
        g_e = torch.zeros_like(e) if need[3] else None
        g_fcn = torch.zeros_like(fcn) if need[4] else None
        g_r = torch.zeros_like(r) if need[5] else None
        g_dx = torch.zeros_like(dx) if need[6] else None
        g_w = [torch.zeros_like(x) for x in (w_e, norm_w, norm_b, w_mix, b_mix)]
        for block, (saved, t, f, d) in zip(nb.blocks, ctx.saved):
            nodes, j, slots = block.nodes, block.j, block.slots
            eb, fb, rb = block.take(e, fcn, r)
            g = g_upd[block.rows].view(-1, len(b_mix))  # [(i, x), a]
            g_w[3].addmm_(g.t(), t)
            g_w[4].addmm_(g.t(), f)
            g_t = (g @ w_mix).view(len(nodes), 3 * k, h)
            g_s = torch.bmm(d, g_t)
            if g_fcn is not None or g_r is not None or g_dx is not None:
                g_d = torch.bmm(saved.s, g_t.transpose(1, 2)) + (g @ b_mix).view(len(nodes), 1, 3 * k)  # of D
                if g_fcn is not None:
                    g_fcn[slots] = (g_d * displacements(dx, nodes, j, rb, None)).sum(2).reshape(-1)
                g_raw = (g_d * fb[..., None]).view(*fb.shape, 3, k)
                if g_r is not None:
                    g_r[slots] = -g_raw.sum(3).reshape(-1, 3)
                if g_dx is not None:
                    g_dx[nodes] += g_raw.sum(1)
                    g_dx.index_add_(0, j.reshape(-1), g_raw.reshape(-1, 3, k), alpha=-1)
            g_z, *g_hidden, g_eb = hidden_backward(g_s, saved, eb, w, need[3])
            _accumulate(g_w, g_hidden)
            g_pre_i[block.rows] = g_z.sum(1)
            g_pre_j.index_add_(0, j.reshape(-1), g_z.reshape(-1, h))
            if g_e is not None:
                g_e[slots] = g_eb.reshape(-1, e.shape[-1])
        g_last = g_w[3].view_as(w_last), g_w[4].view_as(b_last)
        return None, _unsort(nb, g_pre_i), g_pre_j, g_e, g_fcn, g_r, g_dx, *g_w[:3], *g_last


def _displacements(dx: Tensor, nodes: Tensor, j: Tensor, r: Tensor, fcn: Tensor | None) -> Tensor:
    """D = fcn (dx_i - dx_j - r_ij) (n, K, 3k) [(x, b)] of a block, dx (N, 3, k) (without the
    fcn factor if None)."""
    n, kn = j.shape
    d = dx[nodes][:, None] - dx.index_select(0, j.reshape(-1)).view(n, kn, *dx.shape[1:]) - r[..., None]
    if fcn is not None:
        d *= fcn[..., None, None]
    return d.view(n, kn, -1)


DISTANCE_FEATURES = ("tanh", "gaussian", "bessel")


def edge_feature(r: Tensor, cutoff: float) -> Tensor:
    """Eq. 12: e_ij = 2 tanh(r^2 / r_cut^2) - 1, r (E,) Å -> (E,)."""
    return torch.tanh(r.square() / cutoff**2) * 2 - 1


def distance_features(r: Tensor, cutoff: float, kind: str, count: int) -> Tensor:
    """Edge features (E, R) of distances r (E,) Å.

    - ``tanh``: the paper's one scalar (Eq. 12, R = 1). Across the whole first shell of a-Si
      (2.0-2.9 Å) it moves only from -0.81 to -0.61, so a 0.05 Å change of a bond moves it by ~0.01.
    - ``gaussian``: ``count`` Gaussians exp(-((r - μ_k)/w)^2 / 2), centres μ_k evenly spaced over
      [0, r_cut], width w their spacing (SchNet's expansion).
    - ``bessel``: sqrt(2/r_cut) sin(kπ r / r_cut) / r, k = 1..count (DimeNet's radial basis).
    """
    if kind == "tanh":
        return edge_feature(r, cutoff)[:, None]
    if kind == "gaussian":
        centres = torch.linspace(0.0, cutoff, count, device=r.device, dtype=r.dtype)
        width = cutoff / max(count - 1, 1)
        return torch.exp(-0.5 * ((r[:, None] - centres) / width).square())
    if kind == "bessel":
        k = torch.arange(1, count + 1, device=r.device, dtype=r.dtype)
        safe = r.clamp(min=1e-3)[:, None]  # padding slots of the fused path may sit at r = 0
        return (2.0 / cutoff) ** 0.5 * torch.sin(k * torch.pi * safe / cutoff) / safe
    raise ValueError(f"distance features must be one of {', '.join(DISTANCE_FEATURES)} (got {kind!r})")


def smooth_cutoff(r: Tensor, cutoff: float) -> Tensor:
    """Eq. 15: f_cut(r) = 2 tanh(1 - min(r, r_cut)/r_cut)^2, r (E,) Å -> (E,), 0 beyond r_cut."""
    return 2 * torch.tanh(1 - r.clamp(max=cutoff) / cutoff).square()


class EGNNLayer(nn.Module):
    """One EGNN layer of hidden width d_h with k vector channels and R edge features (see
    module docstring); ``cond_dim`` > 0 adds a linear map of a per-atom conditioning vector
    (the noise-level embedding) to H before the layer (zero at initialisation)."""

    def __init__(self, hidden: int, channels: int, n_norm: float, n_edge: int = 1, cond_dim: int = 0):
        super().__init__()
        self.channels = channels
        self.n_norm = float(n_norm)
        self.edge = MLP(2 * hidden + n_edge, hidden, hidden)
        self.att = nn.Linear(hidden, 1)
        self.node = MLP(2 * hidden, hidden, hidden)
        self.coord = MLP(2 * hidden + n_edge, hidden, channels * channels)
        nn.init.xavier_uniform_(self.coord.last.weight, gain=0.01)
        nn.init.zeros_(self.coord.last.bias)
        self.cond = nn.Linear(cond_dim, hidden) if cond_dim else None
        if self.cond is not None:
            nn.init.zeros_(self.cond.weight)
            nn.init.zeros_(self.cond.bias)

    def conditioned(self, h: Tensor, cond: Tensor | None) -> Tensor:
        """H plus the layer's map of the conditioning vector (N, cond_dim), if it takes one."""
        return h if self.cond is None else h + self.cond(cond)

    def forward(self, h: Tensor, dx: Tensor, nb: Neighbourhoods, e: Tensor, fcn: Tensor, r: Tensor, cond=None):
        """Fused path. h (N, d_h); dx (N, 3, k) Å channel displacements X - x (None: all zero,
        the first layer, which then mixes one channel, 8x less work); per slot of
        ``nb``: e (P, R) edge features, fcn = f_cut / n_norm (P,), r (P, 3) Å = r_ij; cond (N,
        cond_dim) or None. Returns updated (h, dx)."""
        h = self.conditioned(h, cond)
        d_h = h.shape[1]
        w_last, b_last = self.edge.last.weight, self.edge.last.bias
        w_att = (self.att.weight @ w_last)[0]  # (d_h,): alpha logit = att(last(s))
        b_att = (self.att.weight @ b_last + self.att.bias)[0]
        edge_w = self.edge.hidden_weights(d_h)
        agg_s, agg_w = EdgeBlock.apply(nb, *self.edge.node_maps(h), e, fcn, *edge_w, w_att, b_att)
        m_agg = F.linear(agg_s, w_last) + agg_w[:, None] * b_last  # = sum_j f_cut alpha m_ij / n_norm
        h = h + self.node(torch.cat([h, m_agg], dim=1))
        coord = self.coord
        w_mix, b_mix, first = coord.last.weight, coord.last.bias, dx is None
        if first:  # all channels at the atoms: Phi_ij D_ij = (Phi_ij summed over its columns) D_ij
            k = self.channels
            w_mix, b_mix = w_mix.view(k, k, d_h).sum(1), b_mix.view(k, k).sum(1)
            dx = h.new_zeros(len(h), 3, 1)
        upd = CoordBlock.apply(nb, *coord.node_maps(h), e, fcn, r, dx, *coord.hidden_weights(d_h), w_mix, b_mix)
        return h, upd if first else dx + upd

    def forward_reference(self, h, x, i, j, shift, e: Tensor, fc: Tensor, cond=None):
        """Straightforward path, Eq. 13 written out. x (N, k, 3) Å absolute channel positions,
        shift (E, 3) Å = o_ij, e (E, R). Returns updated (h, x)."""
        h = self.conditioned(h, cond)
        n = h.shape[0]
        m = self.edge(torch.cat([h[i], h[j], e], dim=1))
        alpha = torch.sigmoid(self.att(m))
        msg = fc[:, None] * alpha * m / self.n_norm
        m_agg = h.new_zeros(n, m.shape[1]).index_add_(0, i, msg)
        h = h + self.node(torch.cat([h, m_agg], dim=1))

        phi = self.coord(torch.cat([h[i], h[j], e], dim=1)).view(-1, self.channels, self.channels)
        d = x[i] - x[j] - shift[:, None, :]
        upd = fc[:, None, None] * torch.bmm(phi, d) / self.n_norm
        return h, x + torch.zeros_like(x).index_add_(0, i, upd)


class EGNN(nn.Module):
    """L periodic EGNN layers over a graph with fixed edges (Eq. 12-15).

    ``distance``, ``n_radial``: the edge features (``distance_features``); ``cond_dim``: width of
    a conditioning vector added to H before every layer (0: none); ``update_distances``: the
    invariants e_ij and f_cut of layer l > 1 come from the current first channel's distances
    |X_j^(l-1,0) - X_i^(l-1,0) + o_ij| instead of the input positions' (standard EGNN)."""

    def __init__(
        self,
        n_layers: int,
        hidden: int,
        channels: int,
        cutoff: float,
        n_norm: float,
        *,
        distance: str = "tanh",
        n_radial: int = 1,
        cond_dim: int = 0,
        update_distances: bool = False,
    ):
        super().__init__()
        if distance not in DISTANCE_FEATURES:
            raise ValueError(f"distance features must be one of {', '.join(DISTANCE_FEATURES)} (got {distance!r})")
        self.cutoff = float(cutoff)
        self.channels = channels
        self.n_norm = float(n_norm)
        self.distance = distance
        self.n_radial = 1 if distance == "tanh" else int(n_radial)
        self.update_distances = bool(update_distances)
        self.compiled = False  # block kernels of the fused path under torch.compile
        self.layers = nn.ModuleList(
            EGNNLayer(hidden, channels, n_norm, self.n_radial, cond_dim) for _ in range(n_layers)
        )

    def invariants(self, dist: Tensor) -> tuple[Tensor, Tensor]:
        """Edge features (E, R) and f_cut (E,) of distances (E,) Å."""
        return distance_features(dist, self.cutoff, self.distance, self.n_radial), smooth_cutoff(dist, self.cutoff)

    def forward(self, h: Tensor, positions: Tensor, i: Tensor, j: Tensor, shift: Tensor, cond=None):
        """Fused path. h (N, d_h), positions (N, 3) Å, edges i, j (E,), shift (E, 3) Å, cond
        (N, cond_dim) or None.

        Returns H^(L) (N, d_h) and X^(L) - X^(0) (N, k, 3) Å (channel displacements).
        """
        training = torch.is_grad_enabled() and (h.requires_grad or positions.requires_grad)
        nb = Neighbourhoods.build(i, j, len(positions), block_slots(training, positions.device), self.compiled)
        r = edge_vectors(positions, i, j, shift)[nb.edge] if len(i) else positions.new_zeros(len(nb.edge), 3)
        receiver = i[nb.edge] if len(i) else nb.j
        dx = None  # channel displacements (N, 3, k), channels innermost; None: all zero
        for layer in self.layers:
            if dx is None or self.update_distances:
                moved = r
                if dx is not None:  # index_select: its backward (index_add_) sums in one order on any
                    d0 = dx[:, :, 0]  # thread count; dx[idx]'s did not (2-thread training differed)
                    moved = r + d0.index_select(0, nb.j) - d0.index_select(0, receiver)
                e, fc = self.invariants(moved.norm(dim=1))
                fcn = torch.where(nb.valid, fc / self.n_norm, 0.0)
            h, dx = layer(h, dx, nb, e, fcn, r, cond)
        if dx is None:  # no layers
            return h, positions.new_zeros(len(positions), self.channels, 3)
        return h, dx.transpose(1, 2)

    def forward_reference(self, h, positions, i, j, shift, cond=None) -> tuple[Tensor, Tensor]:
        """Straightforward path with the same inputs and outputs as ``forward``."""
        x0 = positions[:, None, :].expand(-1, self.channels, -1)
        x = x0
        for k, layer in enumerate(self.layers):
            if k == 0 or self.update_distances:
                e, fc = self.invariants((x[i, 0] - x[j, 0] - shift).norm(dim=1))
            h, x = layer.forward_reference(h, x, i, j, shift, e, fc, cond)
        return h, x - x0
