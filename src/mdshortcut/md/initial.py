"""Starting structures of melt-quench replicas (paper A.9): a diamond crystal, or atoms placed
at random in a cubic cell. Lengths Å, volumes Å^3."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, covalent_radii

from mdshortcut.md.protocol import Initial

#: Candidate positions tried per atom before random placement gives up.
MAX_PLACEMENT_TRIES = 20_000


class InitialStructureError(ValueError):
    """The initial-structure settings cannot produce a structure (the message says why)."""


def diamond(lattice_constant: float, repeat: tuple[int, int, int]) -> Atoms:
    """Diamond-cubic silicon: the 8-atom cubic cell (edge ``lattice_constant``) repeated."""
    return bulk("Si", "diamond", a=lattice_constant, cubic=True).repeat(repeat)


def draw_symbols(n_atoms: tuple[int, int], formula: Mapping[str, int], rng: np.random.Generator) -> list[str]:
    """Chemical symbols of a number of whole formula units drawn uniformly such that the atom
    count lies in [min, max] (e.g. SiO2 in [24, 36]: 8..12 units)."""
    unit = sum(formula.values())
    lo, hi = math.ceil(n_atoms[0] / unit), n_atoms[1] // unit
    if lo > hi or hi < 1:
        name = "".join(e + (str(n) if n > 1 else "") for e, n in formula.items())
        raise InitialStructureError(
            f"initial.n_atoms: no whole number of {name} units ({unit} atoms each) lies in [{n_atoms[0]}, {n_atoms[1]}]"
        )
    units = int(rng.integers(lo, hi + 1))
    return [el for el, n in formula.items() for _ in range(n * units)]


def covalent_volume(symbols: list[str]) -> float:
    """Σ (4/3)π r_cov³ over the atoms, Å^3 (ASE covalent radii: Si 1.11 Å, O 0.66 Å)."""
    radii = covalent_radii[[atomic_numbers[s] for s in symbols]]
    return float(np.sum(4.0 / 3.0 * np.pi * radii**3))


def random_packing(symbols: list[str], edge: float, min_distance: float, rng: np.random.Generator) -> Atoms:
    """Atoms placed one by one uniformly in a periodic cube of edge ``edge`` Å, rejecting any
    position closer than ``min_distance`` Å (minimum image) to an atom already placed."""
    positions = np.empty((len(symbols), 3))
    batch = 64
    for i in range(len(symbols)):
        for _ in range(0, MAX_PLACEMENT_TRIES, batch):
            trial = rng.uniform(0.0, edge, size=(batch, 3))
            d = trial[:, None, :] - positions[None, :i, :]
            d -= edge * np.round(d / edge)
            ok = np.flatnonzero((np.einsum("tij,tij->ti", d, d) >= min_distance**2).all(axis=1))
            if ok.size:
                positions[i] = trial[ok[0]]
                break
        else:
            raise InitialStructureError(
                f"initial.min_distance: cannot place atom {i + 1} of {len(symbols)} at least "
                f"{min_distance} Å from the others in a {edge:.2f} Å cube "
                f"(lower min_distance or raise volume_factor)"
            )
    return Atoms(symbols=symbols, positions=positions, cell=[edge, edge, edge], pbc=True)


def initial_structure(initial: Initial, rng: np.random.Generator) -> Atoms:
    """The starting structure of one replica; ``rng`` draws the size and positions of a
    random structure (a crystal uses none)."""
    if initial.kind == "diamond":
        return diamond(initial.lattice_constant, initial.repeat)
    if initial.kind == "random":
        if initial.n_atoms is None or not initial.formula:
            raise InitialStructureError("initial: kind random needs n_atoms and formula")
        symbols = draw_symbols(initial.n_atoms, initial.formula, rng)
        edge = (initial.volume_factor * covalent_volume(symbols)) ** (1.0 / 3.0)
        return random_packing(symbols, edge, initial.min_distance, rng)
    raise InitialStructureError(f"initial.kind: unknown kind {initial.kind!r} (diamond or random)")
