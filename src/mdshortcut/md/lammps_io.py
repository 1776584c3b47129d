"""Moving ASE ``Atoms`` into and out of a LAMMPS instance (metal units, one MPI rank).

LAMMPS stores a triclinic cell as a lower-triangular matrix of row vectors
(a along x, b in the xy plane). ``load_atoms`` rotates the structure into that frame,
which changes no distance, energy or scalar property.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from lammps import lammps

from mdshortcut.md.potentials import check_elements, get_potential, pair_commands


def lammps_frame(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation Q (3, 3) and lower-triangular cell R = cell @ Q with positive diagonal.

    Positions transform as ``positions @ Q``. Raises ValueError for a left-handed cell.
    """
    cell = np.asarray(cell, dtype=float)
    if np.linalg.det(cell) <= 0:
        raise ValueError("cell is left-handed or degenerate; LAMMPS needs a right-handed cell")
    q, r = np.linalg.qr(cell.T)
    signs = np.sign(np.diag(r))
    q = q * signs
    tri = cell @ q
    tri[np.triu_indices(3, 1)] = 0.0
    return q, tri


def load_atoms(lmp: lammps, atoms: Atoms, potential: str) -> None:
    """Create the box and the atoms in ``lmp`` and define ``potential`` on them.

    Atom types follow the potential's element order (1-based); LAMMPS ids are 1..N in the
    order of ``atoms``. Velocities are not transferred (a fresh structure starts at rest).
    """
    check_elements(potential, atoms.get_chemical_symbols())
    elements = get_potential(potential).elements
    q, tri = lammps_frame(atoms.cell.array)
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = tri.tolist()
    lmp.command(f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r} units box")
    lmp.command(f"create_box {len(elements)} box")
    for t, el in enumerate(elements, start=1):
        lmp.command(f"mass {t} {float(atomic_masses[atomic_numbers[el]])!r}")
    frac = np.linalg.solve(tri.T, (atoms.positions @ q).T).T % 1.0
    x = frac @ tri
    types = [elements.index(s) + 1 for s in atoms.get_chemical_symbols()]
    n = len(atoms)
    lmp.create_atoms(n, list(range(1, n + 1)), types, x.ravel().tolist())
    for cmd in pair_commands(potential):
        lmp.command(cmd)


def lammps_cell(lmp: lammps) -> np.ndarray:
    """The current cell as row vectors (3, 3), Å."""
    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    lx, ly, lz = (hi - lo for lo, hi in zip(boxlo, boxhi))
    return np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])


def read_atoms(lmp: lammps, potential: str) -> Atoms:
    """The current structure (ordered by LAMMPS id), wrapped into its cell."""
    elements = get_potential(potential).elements
    n = lmp.get_natoms()
    x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3).copy()
    types = np.ctypeslib.as_array(lmp.gather_atoms("type", 0, 1)).copy()
    boxlo = np.array(lmp.extract_box()[0])
    atoms = Atoms(
        symbols=[elements[t - 1] for t in types],
        positions=x - boxlo,
        cell=lammps_cell(lmp),
        pbc=True,
    )
    atoms.wrap()
    return atoms
