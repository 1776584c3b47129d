"""Relaxation and relaxed-ion shear constants, with LAMMPS computing every force.

Units: Å, eV, GPa. Stress is tensile-positive (sigma = -P; LAMMPS's pressure P is in bar,
1 bar = 1e-4 GPa), Voigt order (xx, yy, zz, yz, xz, xy), in the Cartesian frame of the
structure passed in.

Two minimisers, each where it was measured to be reliable (150-atom Tersoff a-SiO2, 1 core):

- ``relax`` (variable cell): ASE's L-BFGS on a ``UnitCellFilter`` over ASE's ``LAMMPSlib``
  calculator, the paper's quasi-Newton relaxation. It converged 8/8 glasses to 0.05 eV/Å in
  120-320 steps (0.7 s CPU each); LAMMPS's CG with ``fix box/relax`` converged only 4-5/8
  within 1500 steps, and ``FrechetCellFilter`` costs 4x more CPU (matrix logarithms).
- ``relax_ions`` (fixed cell): LAMMPS's CG with the ``forcezero`` line search, which reaches
  1e-3 eV/Å in a few hundred steps (~0.25 s) where the default line search stalls.

Shear (``shear_constants``): engineering shear strain gamma on the tilt ``ab`` (``yz``, ``xz``,
``xy``) is the affine map F = I + gamma e_a (x) e_b (u_a = gamma r_b) of cell and atoms. The
ions are then re-relaxed at fixed cell (relaxed-ion constants) and
C_ab = (sigma_ab(+gamma) - sigma_ab(-gamma)) / (2 gamma): C44 from yz, C55 from xz, C66 from
xy. Without the ionic re-relaxation the constants of a glass come out several times too large.
The re-relaxation must be tight: with residual forces of 0.05 eV/Å the shear modulus of a
glass is 6-30 % off, at 1e-3 eV/Å it is within 0.5 % of the fully converged value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.calculators.lammpslib import LAMMPSlib
from ase.filters import UnitCellFilter
from ase.optimize import LBFGS

from mdshortcut.md.lammps_io import lammps_frame, load_atoms, read_atoms
from mdshortcut.md.potentials import get_potential, load_mpi, pair_commands, start_lammps

BAR_TO_GPA = 1e-4
VOIGT = ("xx", "yy", "zz", "yz", "xz", "xy")
SHEAR_TILTS = {"yz": (1, 2), "xz": (0, 2), "xy": (0, 1)}  # tilt -> (a, b): u_a = gamma r_b


@dataclass(frozen=True)
class Minimized:
    """Outcome of one minimisation.

    atoms: final structure (same Cartesian frame as the input); energy: eV; stress: (6,)
    Voigt, GPa; max_force: largest per-atom force length, eV/Å; steps: optimiser iterations;
    converged: the minimiser's criterion was met within its step budget.
    """

    atoms: Atoms
    energy: float
    stress: np.ndarray
    max_force: float
    steps: int
    converged: bool

    @property
    def reason(self) -> str:
        """Empty when converged; otherwise a one-line account of what is left."""
        if self.converged:
            return ""
        return f"not converged after {self.steps} steps (max force {self.max_force:.3g} eV/Å)"


@dataclass(frozen=True)
class ShearConstants:
    """Relaxed-ion shear constants, GPa; ``reason`` names the first unconverged strain."""

    c44: float
    c55: float
    c66: float
    converged: bool
    reason: str

    @property
    def modulus(self) -> float:
        """G = (C44 + C55 + C66) / 3, GPa."""
        return (self.c44 + self.c55 + self.c66) / 3.0


def _bare(atoms: Atoms) -> Atoms:
    """Symbols, positions and cell only: no velocities (LAMMPSlib would add kinetic stress)."""
    return Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=True)


def _max_force(forces: np.ndarray) -> float:
    return float(np.sqrt((forces**2).sum(axis=1)).max()) if len(forces) else 0.0


def relax(atoms: Atoms, potential: str, fmax: float, max_steps: int) -> Minimized:
    """Variable-cell relaxation to zero stress (L-BFGS + UnitCellFilter, LAMMPS forces).

    Converged: every generalised force of the filter, i.e. each atom's force and the
    cell's virial / N, is ≤ ``fmax`` (eV/Å) within ``max_steps`` steps. The cell keeps its
    orientation (the filter's deformation gradient is symmetric).
    """
    work = _bare(atoms)
    elements = get_potential(potential).elements
    load_mpi()
    calc = LAMMPSlib(
        lmpcmds=pair_commands(potential),
        atom_types={el: i + 1 for i, el in enumerate(elements)},
        keep_alive=True,
    )
    work.calc = calc
    try:
        opt = LBFGS(UnitCellFilter(work), logfile=None)
        converged = bool(opt.run(fmax=fmax, steps=max_steps))
        result = Minimized(
            atoms=_bare(work),
            energy=float(work.get_potential_energy()),
            stress=work.get_stress(voigt=True) / units.GPa,
            max_force=_max_force(work.get_forces()),
            steps=int(opt.nsteps),
            converged=converged,
        )
    finally:
        calc.clean()
    return result


def _pressure_matrix(lmp) -> np.ndarray:
    p = {c: lmp.get_thermo(f"p{c}") for c in ("xx", "yy", "zz", "xy", "xz", "yz")}
    return np.array([[p["xx"], p["xy"], p["xz"]], [p["xy"], p["yy"], p["yz"]], [p["xz"], p["yz"], p["zz"]]])


def relax_ions(atoms: Atoms, potential: str, fmax: float, max_steps: int) -> Minimized:
    """Fixed-cell relaxation with LAMMPS's CG (``forcezero`` line search).

    Converged: max per-atom force ≤ ``fmax`` (eV/Å), measured after the last of at most
    ``max_steps`` iterations (``max_steps`` 0 evaluates the structure as it is). LAMMPS runs
    in its own rotated frame; positions and stress are rotated back to the input frame.
    """
    q, _ = lammps_frame(atoms.cell.array)
    lmp = start_lammps()
    try:
        load_atoms(lmp, atoms, potential)
        lmp.command("thermo_style custom step pe pxx pyy pzz pxy pxz pyz")
        lmp.command("min_style cg")
        lmp.command("min_modify norm max line forcezero")  # norm max: per-atom force length
        if max_steps > 0:
            lmp.command(f"minimize 0.0 {fmax!r} {max_steps} {10 * max_steps}")
        lmp.command("run 0")
        n = len(atoms)
        forces = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3)
        sigma = -BAR_TO_GPA * (q @ _pressure_matrix(lmp) @ q.T)
        final = read_atoms(lmp, potential)
        max_force = _max_force(forces)
        result = Minimized(
            atoms=Atoms(
                final.get_chemical_symbols(),
                positions=final.positions @ q.T,
                cell=atoms.cell,
                pbc=True,
            ),
            energy=float(lmp.get_thermo("pe")),
            stress=np.array([sigma[i, j] for i, j in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))]),
            max_force=max_force,
            steps=int(lmp.extract_global("ntimestep")),
            converged=max_force <= fmax,
        )
    finally:
        lmp.close()
    return result


def sheared(atoms: Atoms, tilt: str, gamma: float) -> Atoms:
    """``atoms`` under the affine simple shear u_a = gamma r_b of ``tilt`` (see module doc)."""
    a, b = SHEAR_TILTS[tilt]
    f = np.eye(3)
    f[a, b] = gamma
    out = _bare(atoms)
    out.set_cell(atoms.cell.array @ f.T, scale_atoms=True)
    return out


def shear_constants(
    relaxed: Atoms,
    potential: str,
    strain: float,
    fmax: float,
    max_steps: int,
    ionic_relaxation: bool = True,
) -> ShearConstants:
    """C44, C55, C66 (GPa) of a relaxed structure by ± ``strain`` central differences.

    Each strained state is re-relaxed at fixed cell to ``fmax`` (eV/Å, keep it ≤ 1e-3; see
    module doc) in at most ``max_steps`` steps, unless ``ionic_relaxation`` is False (clamped-ion
    constants, only for comparison).
    """
    constants, reasons = {}, []
    for tilt in SHEAR_TILTS:
        sigma = []
        for gamma in (strain, -strain):
            state = relax_ions(sheared(relaxed, tilt, gamma), potential, fmax, max_steps if ionic_relaxation else 0)
            if ionic_relaxation and not state.converged:
                reasons.append(f"{tilt} strain {gamma:+g}: {state.reason}")
            sigma.append(state.stress[VOIGT.index(tilt)])
        constants[tilt] = (sigma[0] - sigma[1]) / (2.0 * strain)
    return ShearConstants(
        c44=constants["yz"],
        c55=constants["xz"],
        c66=constants["xy"],
        converged=not reasons,
        reason=reasons[0] if reasons else "",
    )
