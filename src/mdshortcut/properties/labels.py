"""One row of properties per structure: the labels of the training data and the measurements
of generated samples, computed the same way.

Row: ``shear_modulus`` (GPa), ``ring_size`` (Si atoms per ring), ``density`` (g/cm³),
``converged``, ``reason``. Ghost atoms are removed first; the structure is relaxed (variable
cell) and every property is measured on the relaxed structure. A structure whose relaxation
does not converge, or on which LAMMPS fails, keeps its row with NaN properties, ``converged``
False and the reason. When only a strained re-relaxation fails, the shear modulus alone is NaN
(``converged`` stays True: it refers to the relaxation) and ``reason`` says why; likewise a
network without rings has a NaN ring size, and a value outside its property's physical range
(``PHYSICAL``: a shear modulus <= 0, a mean ring size below 3) is NaN with the reason.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ase import Atoms
from vesin import NeighborList

from mdshortcut.data.ghost import GHOST, remove_ghosts
from mdshortcut.io import StructureError, read_structures, write_csv
from mdshortcut.md.potentials import get_potential
from mdshortcut.properties.elastic import MIN_SHEAR_MODULUS, relax, shear_constants
from mdshortcut.properties.rings import MIN_RING_SIZE, mean_ring_size

log = logging.getLogger(__name__)

PROPERTIES = ("shear_modulus", "ring_size", "density")
COLUMNS = ["index", *PROPERTIES, "converged", "reason"]
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660  # 1 amu/Å^3 in g/cm^3
MIN_DISTANCE = 0.5  # Å; closer atoms overlap (far below any bond, Si-O 1.6 Å)
#: each property's physical range, (lowest value, whether it is allowed), from beside its
#: measuring function; a density is positive. Targets outside it are refused, and a measured value
#: outside it is a failure with its reason, not a value (``physical_problem``).
PHYSICAL = {"shear_modulus": (MIN_SHEAR_MODULUS, False), "ring_size": (MIN_RING_SIZE, True), "density": (0.0, False)}


@dataclass(frozen=True)
class PropertiesConfig:
    """The ``properties`` config section.

    fmax (eV/Å) and max_steps: the variable-cell relaxation; shear_strain: engineering
    strain of the ± shears; strain_fmax (eV/Å): re-relaxation of the strained states (tight,
    see ``mdshortcut.properties.elastic``), with at most max_steps each;
    structures_per_shard: structures per DAG job.
    """

    fmax: float = 0.05
    max_steps: int = 1500
    shear_strain: float = 0.02
    structures_per_shard: int = 32
    strain_fmax: float = 1e-3


def density(atoms: Atoms) -> float:
    """Mass density, g/cm³ (ghosts excluded)."""
    atoms = remove_ghosts(atoms)
    return float(atoms.get_masses().sum() / atoms.cell.volume * AMU_PER_A3_TO_G_PER_CM3)


def check_overlaps(atoms: Atoms, where: str, min_distance: float = MIN_DISTANCE) -> None:
    """Raise StructureError naming ``where`` and the atoms if two (real) atoms are closer
    than ``min_distance`` (Å), periodic images included."""
    atoms = remove_ghosts(atoms)
    if len(atoms) == 0:
        return
    nl = NeighborList(cutoff=min_distance, full_list=False)
    i, j, d = nl.compute(atoms.positions, atoms.cell.array, True, quantities="ijd")
    if len(d):
        k = int(np.argmin(d))
        raise StructureError(f"{where}: atoms {i[k]} and {j[k]} overlap ({d[k]:.3f} Å apart, minimum {min_distance} Å)")


def read_checked(path: str | os.PathLike, potential: str) -> list[Atoms]:
    """Frames of an extxyz file that ``potential`` can relax: at least one, periodic cells, atoms
    of the potential's elements (ghosts allowed), no overlapping atoms. Errors name the file and frame."""
    elements = [*get_potential(potential).elements, GHOST]
    frames = read_structures(path, elements, require_atoms=True)
    for k, atoms in enumerate(frames):
        check_overlaps(atoms, f"{path} frame {k}")
    return frames


def physical_problem(prop: str, value: float) -> str:
    """Why a measured ``value`` of ``prop`` is outside its physical range (``PHYSICAL``), or ''."""
    lowest, allowed = PHYSICAL[prop]
    if value < lowest or (value == lowest and not allowed):
        return f"{prop} {value:.4g} is not physical (must be {'>=' if allowed else '>'} {lowest:g})"
    return ""


def _failed(reason: str) -> dict:
    return {**{p: math.nan for p in PROPERTIES}, "converged": False, "reason": reason}


def label_structure(atoms: Atoms, potential: str, cfg: PropertiesConfig) -> dict:
    """Properties of one structure (module doc); never raises for a failed relaxation."""
    atoms = remove_ghosts(atoms)
    try:
        relaxed = relax(atoms, potential, cfg.fmax, cfg.max_steps)
        if not relaxed.converged:
            return _failed(f"relaxation {relaxed.reason}")
        shear = shear_constants(relaxed.atoms, potential, cfg.shear_strain, cfg.strain_fmax, cfg.max_steps)
    except Exception as exc:  # LAMMPS reports lost atoms etc. as plain Exceptions
        return _failed(f"LAMMPS failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    # The relaxed structure stands: a failed strained re-relaxation costs only the modulus.
    rings = mean_ring_size(relaxed.atoms)
    reasons = [f"strained re-relaxation {shear.reason}"] * (not shear.converged)
    reasons += ["no ring in the bond network"] * (not math.isfinite(rings))
    row = {"shear_modulus": shear.modulus if shear.converged else math.nan, "ring_size": rings,
           "density": density(relaxed.atoms)}  # fmt: skip
    for prop, value in row.items():  # an implausible value is a failure with its reason, not a value
        problem = physical_problem(prop, value) if math.isfinite(value) else ""
        if problem:
            row[prop] = math.nan
            reasons.append(problem)
    return {**row, "converged": True, "reason": "; ".join(reasons)}


def label_frames(frames: Sequence[Atoms], potential: str, cfg: PropertiesConfig, first_index: int = 0) -> pd.DataFrame:
    """One row per frame (columns ``COLUMNS``), ``index`` counting from ``first_index``."""
    rows = []
    for k, atoms in enumerate(frames):
        row = {"index": first_index + k, **label_structure(atoms, potential, cfg)}
        log.info(
            "structure %d: shear modulus %.3f GPa, ring size %.3f, density %.4f g/cm3, converged %s %s",
            *(row[c] for c in COLUMNS),
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A labels table (``COLUMNS``); raises StructureError naming the file if malformed."""
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"reason": str})
    except (OSError, pd.errors.ParserError) as exc:
        raise StructureError(f"{path}: not a readable labels table ({exc})") from exc
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise StructureError(f"{path}: missing column(s) {', '.join(missing)}")
    table["reason"] = table["reason"].fillna("")
    return table


def label_shard(
    structures: str | os.PathLike, out: str | os.PathLike, potential: str, cfg: PropertiesConfig, shard: int
) -> int:
    """Label frames [shard·S, (shard+1)·S) of ``structures`` (S = cfg.structures_per_shard)
    into the CSV ``out``; a shard past the last frame writes an empty table. Returns the row count."""
    frames = read_checked(structures, potential)
    start = shard * cfg.structures_per_shard
    table = label_frames(frames[start : start + cfg.structures_per_shard], potential, cfg, first_index=start)
    write_csv(out, table)
    return len(table)


def check_indices(table: pd.DataFrame, n_frames: int) -> None:
    """A labels merge's check: one row per frame, in frame order; raises StructureError."""
    if table["index"].tolist() != list(range(n_frames)):
        seen = set(table["index"].tolist())
        missing = sorted(set(range(n_frames)) - seen)[:5]
        raise StructureError(
            f"{n_frames} frames but labels with missing indices {missing}, "
            f"{len(table) - len(seen)} duplicated, indices beyond {n_frames - 1} or out of order"
        )
