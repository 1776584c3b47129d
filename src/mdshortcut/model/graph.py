"""Periodic graphs over batches of structures: wrapping, minimum images, neighbour lists.

Conventions (used by every module of the model):
- Cells are row vectors: ``cell[b, a]`` is lattice vector a of structure b (Å); a Cartesian
  position is ``frac @ cell``.
- An edge (i, j, shift) points from atom i to the periodic image of atom j at
  ``x_j + shift``: the displacement is ``r_ij = x_j - x_i + shift`` (Å), with ``shift`` an
  integer combination of the lattice vectors of the atoms' structure. An atom may neighbour
  several images of the same atom, or its own images, when the cutoff exceeds half the cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from vesin_torch import NeighborList


@dataclass
class Batch:
    """Many structures as one graph.

    cell: (B, 3, 3) Å, row vectors; positions: (N, 3) Å Cartesian; batch: (N,) long, the
    structure index of each atom (atoms of a structure are contiguous, in structure order);
    n_atoms: (B,) long, atoms per structure.
    """

    cell: Tensor
    positions: Tensor
    batch: Tensor
    n_atoms: Tensor

    @classmethod
    def from_structures(cls, cells: Tensor, positions: list[Tensor]) -> Batch:
        """Concatenate per-structure positions ((n_b, 3) Å each) under cells (B, 3, 3) Å."""
        if len(positions) != len(cells):
            raise ValueError(f"{len(cells)} cells but {len(positions)} position arrays")
        n_atoms = torch.tensor([len(p) for p in positions], dtype=torch.long, device=cells.device)
        batch = torch.repeat_interleave(torch.arange(len(cells), device=cells.device), n_atoms)
        return cls(cells, torch.cat(list(positions)), batch, n_atoms)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Batch:
        """The same batch on ``device``, with floating tensors cast to ``dtype`` if given."""
        return Batch(
            self.cell.to(device=device, dtype=dtype),
            self.positions.to(device=device, dtype=dtype),
            self.batch.to(device),
            self.n_atoms.to(device),
        )


def to_fractional(vectors: Tensor, cell: Tensor, batch: Tensor) -> Tensor:
    """Cartesian (N, 3) Å -> fractional (N, 3) coordinates in each atom's cell."""
    inv = torch.linalg.inv(cell)[batch]
    return torch.einsum("na,nab->nb", vectors, inv)


def to_cartesian(frac: Tensor, cell: Tensor, batch: Tensor) -> Tensor:
    """Fractional (N, 3) -> Cartesian (N, 3) Å in each atom's cell."""
    return torch.einsum("na,nab->nb", frac, cell[batch])


def wrap(positions: Tensor, cell: Tensor, batch: Tensor) -> Tensor:
    """Positions (N, 3) Å moved into their cell (fractional coordinates in [0, 1))."""
    frac = to_fractional(positions, cell, batch)
    return to_cartesian(frac - torch.floor(frac), cell, batch)


def minimum_image(dx: Tensor, cell: Tensor, batch: Tensor) -> Tensor:
    """Per-atom displacements (N, 3) Å -> their minimum image by a fractional round trip.

    Each fractional component is reduced to [-1/2, 1/2]; for strongly skewed cells this is
    the image in the cell's own lattice coordinates, the convention used throughout.
    """
    frac = to_fractional(dx, cell, batch)
    return to_cartesian(frac - torch.round(frac), cell, batch)


def edge_vectors(positions: Tensor, i: Tensor, j: Tensor, shift: Tensor) -> Tensor:
    """r_ij = x_j - x_i + shift (E, 3) Å, differentiable in positions."""
    return positions[j] - positions[i] + shift


# Pair-images per chunk of the dense search: its temporaries take 40-90 bytes each (<= 1.5 GB).
DENSE_CHUNK = 1 << 24
# Largest structure (atoms, ghosts included) searched densely on a GPU, vesin-torch above: a
# memory bound (one such structure's pairs fill a chunk), not a measured crossover (none yet).
DENSE_MAX_ATOMS = 4096


def build_neighbours(positions: Tensor, cell: Tensor, n_atoms: Tensor, cutoff: float) -> tuple[Tensor, Tensor, Tensor]:
    """Periodic neighbour list of a batch, on the positions' device: every (i, j, shift) with
    |x_j - x_i + shift @ cell| < cutoff (Å), i != j or shift != 0.

    positions (N, 3) Å (float32 or float64; distances are compared in float64, as vesin does),
    cell (B, 3, 3) Å, n_atoms (B,) long (contiguous structures), cutoff Å. Returns i, j (E,)
    long and integer shifts (E, 3) long, in no particular order: the edges vesin-torch gives
    for each structure (but for pairs within ~1e-12 Å of the cutoff, where float64 rounding
    may differ). One call per batch. On a GPU a dense search over all structures at once
    (``_dense``) up to ``DENSE_MAX_ATOMS`` atoms per structure, one vesin-torch call per
    structure above (on an H200 the per-structure vesin build was 60 % of a batch-128 training
    step, 0.53 ms a structure of 76 nodes: results/reference/bench/gpu.csv; the dense search's
    GPU time is not yet measured). On the CPU always
    vesin: with one thread the dense search was as fast as vesin up to ~110 atoms per
    structure (a-Si, 77: 3.0 against 2.9 ms a structure) and 3.5× slower at 256.
    """
    positions, cell = positions.detach(), cell.detach()
    if positions.device.type == "cpu" or int(n_atoms.max()) > DENSE_MAX_ATOMS:
        return _vesin(positions, cell, n_atoms, cutoff)
    return _dense(positions, cell, n_atoms, cutoff)


def _vesin(positions: Tensor, cell: Tensor, n_atoms: Tensor, cutoff: float) -> tuple[Tensor, Tensor, Tensor]:
    """``build_neighbours`` by one vesin-torch call per structure (vesin-torch 0.6 has no
    batched call; only the atom counts are read on the host)."""
    calc = NeighborList(cutoff=cutoff, full_list=True, n_threads=torch.get_num_threads())
    parts_i, parts_j, parts_s = [], [], []
    start = 0
    for b, n in enumerate(n_atoms.tolist()):
        i, j, s = calc.compute(positions[start : start + n], cell[b], True, "ijS")
        parts_i.append(i + start)
        parts_j.append(j + start)
        parts_s.append(s)
        start += n
    return torch.cat(parts_i), torch.cat(parts_j), torch.cat(parts_s).to(torch.long)


def _dense(positions: Tensor, cell: Tensor, n_atoms: Tensor, cutoff: float) -> tuple[Tensor, Tensor, Tensor]:
    """``build_neighbours`` by testing every atom pair of a structure against its candidate
    images, all structures at once (padded to the largest), in chunks of structures of at
    most ``DENSE_CHUNK`` pair-images; reads two scalars on the host (the largest structure
    and the number of candidate images), nothing per structure.

    Positions are wrapped into the cell (fractional f in [0, 1)); a pair's image s can be
    within the cutoff only if |f_j - f_i + s|_a < cutoff / h_a in each lattice direction a
    (h_a: the distance between the cell's faces normal to a), which leaves
    floor(2 cutoff / h_a) + 1 consecutive candidates per direction from the lowest: 1 per
    direction in cells wider than twice the cutoff, 2 in the a-Si cells here (h ~ 11 Å,
    cutoff 6.5 Å: 8 images per pair rather than 27).
    """
    dev = positions.device
    pos, cell = positions.to(torch.float64), cell.to(torch.float64)
    n_struct = len(cell)
    batch = torch.repeat_interleave(torch.arange(n_struct, device=dev), n_atoms, output_size=len(pos))
    frac = to_fractional(pos, cell, batch)
    lattice_jump = torch.floor(frac)  # x = x_wrapped + lattice_jump @ cell
    wrapped = to_cartesian(frac - lattice_jump, cell, batch)
    normals = torch.cross(cell[:, [1, 2, 0]], cell[:, [2, 0, 1]], dim=-1)  # (B, 3, 3): b×c, c×a, a×b
    heights = torch.linalg.det(cell).abs()[:, None] / normals.norm(dim=-1)  # (B, 3) Å
    reach = (cutoff + 1e-6) / heights  # (B, 3), in cell lengths; the margin only widens the search
    n_max, *span = torch.cat([n_atoms.max()[None], torch.floor(2 * reach).amax(0).to(torch.long) + 1]).tolist()
    grid = torch.stack(torch.meshgrid(*(torch.arange(k, device=dev) for k in span), indexing="ij"), -1).reshape(-1, 3)

    first = torch.cumsum(n_atoms, 0) - n_atoms
    slot = torch.arange(n_max, device=dev)
    chunk = max(1, DENSE_CHUNK // (n_max * n_max * len(grid)))
    parts_i, parts_j, parts_s = [], [], []
    for lo in range(0, n_struct, chunk):
        b = slice(lo, lo + chunk)
        valid = slot[None, :] < n_atoms[b, None]  # (Bc, n)
        index = torch.where(valid, first[b, None] + slot, 0)  # (Bc, n) global atom index, 0 = padding
        f, x = (frac - lattice_jump)[index], wrapped[index]  # (Bc, n, 3)
        lowest = torch.floor(f[:, :, None] - f[:, None] - reach[b, None, None]) + 1  # (Bc, n_i, n_j, 3)
        # r = x_j - x_i + (lowest + k) @ cell = u + v_k; |r|^2 = |u|^2 + 2 u.v_k + |v_k|^2
        u = (x[:, None] - x[:, :, None] + lowest @ cell[b, None]).flatten(1, 2)  # (Bc, n_i n_j, 3)
        v = grid.to(cell.dtype) @ cell[b]  # (Bc, K, 3)
        r2 = (u * u).sum(-1, keepdim=True) + 2 * u @ v.transpose(1, 2) + (v * v).sum(-1)[:, None]
        near = (r2 < cutoff * cutoff).view(-1, n_max, n_max, len(grid))  # (Bc, n_i, n_j, K)
        near &= (valid[:, :, None] & valid[:, None, :])[..., None]
        itself = ((torch.floor(-reach[b]) + 1)[:, None] + grid == 0).all(-1)  # (Bc, K): image 0 of i == j
        near[:, slot, slot] &= ~itself[:, None]
        s, a, c, k = near.nonzero(as_tuple=True)
        i, j = index[s, a], index[s, c]
        image = lowest[s, a, c].to(torch.long) + grid[k]
        parts_i.append(i)
        parts_j.append(j)
        parts_s.append(image + lattice_jump[i].to(torch.long) - lattice_jump[j].to(torch.long))
    return torch.cat(parts_i), torch.cat(parts_j), torch.cat(parts_s)


class NeighbourCache:
    """Periodic neighbour list (``build_neighbours``) of a batch, reused while atoms move little.

    ``edges`` returns every (i, j, shift) with |x_j - x_i + shift| < cutoff (Å), the same set a
    fresh build would give. The list is built with cutoff + skin and reused until an atom has
    moved (minimum image) more than skin/2 from where it was at the build, or the cell, the
    atom count or the batch assignment changed; atoms wrapped back into the cell meanwhile are
    handled (their lattice jump is folded into the shifts). ``skin = 0`` rebuilds every call.
    ``n_builds`` counts the builds.
    """

    def __init__(self, cutoff: float, skin: float = 0.0):
        if cutoff <= 0 or skin < 0:
            raise ValueError(f"cutoff must be > 0 and skin >= 0 (got {cutoff}, {skin})")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.n_builds = 0
        self._ref: tuple[Tensor, Tensor, Tensor] | None = None  # positions, cell, batch
        self._list: tuple[Tensor, Tensor, Tensor] | None = None  # i, j, integer shifts

    def _stale(self, positions: Tensor, cell: Tensor, batch: Tensor) -> bool:
        if self._ref is None or self.skin == 0:
            return True
        ref_pos, ref_cell, ref_batch = self._ref
        if ref_pos.shape != positions.shape or ref_cell.shape != cell.shape or ref_pos.device != positions.device:
            return True
        if not (torch.equal(ref_cell, cell) and torch.equal(ref_batch, batch)):
            return True
        moved = minimum_image(positions - ref_pos, cell, batch)
        return bool((moved.norm(dim=1) > self.skin / 2).any())

    def edges(self, positions: Tensor, cell: Tensor, batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Edges of the batch: i (E,) long, j (E,) long, shift (E, 3) Å (same dtype as positions).

        positions (N, 3) Å, cell (B, 3, 3) Å, batch (N,) long with contiguous structures.
        """
        positions = positions.detach()
        fresh = self._stale(positions, cell, batch)
        if fresh:
            n_atoms = torch.bincount(batch, minlength=len(cell))
            self._list = build_neighbours(positions, cell, n_atoms, self.cutoff + self.skin)
            self._ref = (positions.clone(), cell.detach().clone(), batch.clone())
            self.n_builds += 1
        i, j, shift_int = self._list
        if not fresh:  # lattice jumps since the build (atoms wrapped back into the cell): x = x_ref + d + m @ cell
            jumps = torch.round(to_fractional(positions - self._ref[0], cell, batch))
            shift_int = shift_int + (jumps[i] - jumps[j]).to(torch.long)
        shift = torch.einsum("ea,eab->eb", shift_int.to(positions.dtype), cell.detach()[batch[i]])
        if self.skin == 0:  # built at the cutoff just now
            return i, j, shift
        within = edge_vectors(positions, i, j, shift).norm(dim=1) < self.cutoff
        return i[within], j[within], shift[within]
