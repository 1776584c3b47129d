"""Ring sizes of a covalent network, as defined in the paper (appendix A.7).

Atoms are bonded when closer than 1.3 × (r_i + r_j), covalent radii r(Si) = 1.11 Å and
r(O) = 0.66 Å. For each bond, the shortest path between its two atoms that avoids that bond
closes a ring. Rings are deduplicated by their set of atoms, and a ring's size is its number
of Si atoms; the statistic is the mean size over the distinct rings.

Periodic images count: the search runs on the infinite periodic network, whose nodes are
(atom index, image shift) pairs. A ring may pass through several images of one atom, and a
chain that only closes on itself by wrapping round the cell (an infinite chain) is no ring.
Two rings are the same when their node sets differ by a lattice translation, so the
result does not depend on the choice of cell or supercell.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from ase import Atoms
from vesin import NeighborList

COVALENT_RADII = {"Si": 1.11, "O": 0.66}  # Å, paper A.7
BOND_FACTOR = 1.3
MAX_RING_ATOMS = 24  # longest ring searched: 12 Si in SiO2, 24 Si in a pure Si network

Node = tuple[int, tuple[int, int, int]]  # (atom index, image shift)
Ring = frozenset  # of Node, translated to a canonical image


def bonds(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bonds (i, j, shift): atom j in image ``shift`` (3 ints) is bonded to atom i in image 0.

    Each bond appears once. Raises ValueError for an element without a covalent radius.
    """
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(COVALENT_RADII))
    if unknown:
        raise ValueError(f"no covalent radius for {', '.join(unknown)} (known: Si, O)")
    if len(atoms) == 0:
        empty = np.zeros(0, dtype=int)
        return empty, empty, np.zeros((0, 3), dtype=int)
    radii = np.array([COVALENT_RADII[s] for s in symbols])
    cutoff = BOND_FACTOR * 2 * radii.max()
    nl = NeighborList(cutoff=cutoff, full_list=False)
    i, j, shift, d = nl.compute(atoms.positions, atoms.cell.array, True, quantities="ijSd")
    keep = d < BOND_FACTOR * (radii[i] + radii[j])
    return i[keep], j[keep], shift[keep].astype(int)


def _adjacency(n: int, i, j, shift) -> list[list[tuple[int, tuple[int, int, int], int]]]:
    """Per atom: sorted (neighbour, image shift, bond index) in both directions."""
    adj: list[list] = [[] for _ in range(n)]
    for b, (a, c, s) in enumerate(zip(i.tolist(), j.tolist(), shift.tolist())):
        adj[a].append((c, tuple(s), b))
        adj[c].append((a, (-s[0], -s[1], -s[2]), b))
    for row in adj:
        row.sort()
    return adj


def _shortest_path(adj, start: int, target: Node, bond: int, max_atoms: int) -> list[Node] | None:
    """Breadth-first path (start, 0) -> target avoiding ``bond`` between these two ends."""
    origin: Node = (start, (0, 0, 0))
    parent: dict[Node, Node | None] = {origin: None}
    depth = {origin: 0}
    queue = deque([origin])
    while queue:
        node = queue.popleft()
        if depth[node] + 1 >= max_atoms:
            break  # a path one step longer would make a ring above max_atoms
        atom, (sx, sy, sz) = node
        for other, (dx, dy, dz), b in adj[atom]:
            if b == bond and node == origin and (other, (dx, dy, dz)) == target:
                continue  # the bond itself
            nxt = (other, (sx + dx, sy + dy, sz + dz))
            if nxt in parent:
                continue
            parent[nxt] = node
            depth[nxt] = depth[node] + 1
            if nxt == target:
                path = [nxt]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1]
            queue.append(nxt)
    return None


def _canonical(path: list[Node]) -> Ring:
    """The node set translated so that its smallest (atom, shift) node sits in image 0."""
    candidates = []
    for atom, shift in path:
        if atom == min(a for a, _ in path):
            candidates.append(tuple(sorted((a, tuple(np.subtract(s, shift).tolist())) for a, s in path)))
    return frozenset(min(candidates))


def shortest_rings(atoms: Atoms, max_atoms: int = MAX_RING_ATOMS) -> list[list[Node] | None]:
    """For each bond of ``bonds(atoms)``: the ring it closes (list of nodes) or None.

    None when no path of fewer than ``max_atoms`` atoms avoids the bond (a bridge, e.g. a
    dangling bond, or a ring larger than ``max_atoms``).
    """
    i, j, shift = bonds(atoms)
    adj = _adjacency(len(atoms), i, j, shift)
    return [
        _shortest_path(adj, a, (c, tuple(s)), b, max_atoms)
        for b, (a, c, s) in enumerate(zip(i.tolist(), j.tolist(), shift.tolist()))
    ]


def ring_sizes(atoms: Atoms, max_atoms: int = MAX_RING_ATOMS) -> list[int]:
    """Number of Si atoms of each distinct ring (sorted)."""
    is_si = np.array([s == "Si" for s in atoms.get_chemical_symbols()])
    distinct = {_canonical(ring) for ring in shortest_rings(atoms, max_atoms) if ring is not None}
    return sorted(int(sum(is_si[a] for a, _ in ring)) for ring in distinct)


def mean_ring_size(atoms: Atoms, max_atoms: int = MAX_RING_ATOMS) -> float:
    """Mean number of Si per distinct ring; NaN when the network has no ring."""
    sizes = ring_sizes(atoms, max_atoms)
    return float(np.mean(sizes)) if sizes else float("nan")
