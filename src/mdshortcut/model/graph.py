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


def _build(positions: Tensor, cell: Tensor, n_atoms: Tensor, cutoff: float) -> tuple[Tensor, Tensor, Tensor]:
    """Fresh periodic neighbour list of every structure, on the positions' device (vesin-torch
    computes on CPU and CUDA tensors alike: no host copy of the positions): i, j (E,) long,
    integer shifts (E, 3) long, in no particular order.

    One vesin call per structure (vesin-torch 0.6 has no batched call); only the atom counts
    are read on the host.
    """
    calc = NeighborList(cutoff=cutoff, full_list=True, n_threads=torch.get_num_threads())
    pos, cell = positions.detach(), cell.detach()
    counts = n_atoms.tolist()
    parts_i, parts_j, parts_s = [], [], []
    start = 0
    for b, n in enumerate(counts):
        i, j, s = calc.compute(pos[start : start + n], cell[b], True, "ijS")
        parts_i.append(i + start)
        parts_j.append(j + start)
        parts_s.append(s)
        start += n
    return torch.cat(parts_i), torch.cat(parts_j), torch.cat(parts_s).to(torch.long)


class NeighbourCache:
    """Periodic neighbour list (vesin-torch) of a batch, reused while atoms move little.

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
            self._list = _build(positions, cell.detach(), n_atoms, self.cutoff + self.skin)
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
