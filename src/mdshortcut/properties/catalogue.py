"""The material properties, one row each: what labels, evaluation, ``mdshortcut generate``'s
target checks, the report's tables and figures, the CLI's help and the schema test read.

A row: name (a labels column, a conditioning set, a sampling target), unit, the physical bounds
(a target outside them is refused, a measured value outside them is implausible), the paper's
table title, an axis label, and the measuring function. Measuring functions take a relaxed
structure (ghosts removed), the LAMMPS potential's name and the ``PropertiesConfig``, and return
(value, reason): NaN with the reason when the property cannot be measured on that structure.
They import the MD code when called, so that reading the table needs no LAMMPS. Adding a
property: a row and its function here (docs/design.md §7).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660  # 1 amu/Å^3 in g/cm^3


def shear_modulus(atoms, potential: str, cfg) -> tuple[float, str]:
    """Relaxed-ion shear modulus G (GPa, ``elastic.shear_constants``); NaN when a strained
    re-relaxation does not converge (the relaxed structure itself stands)."""
    from mdshortcut.properties.elastic import shear_constants

    shear = shear_constants(atoms, potential, cfg.shear_strain, cfg.strain_fmax, cfg.max_steps)
    return (shear.modulus, "") if shear.converged else (math.nan, f"strained re-relaxation {shear.reason}")


def ring_size(atoms, potential: str, cfg) -> tuple[float, str]:
    """Mean size of the primitive rings (Si atoms per ring, ``rings.mean_ring_size``); NaN for a
    bond network without rings."""
    from mdshortcut.properties.rings import mean_ring_size

    rings = mean_ring_size(atoms)
    return rings, "" if math.isfinite(rings) else "no ring in the bond network"


def density(atoms, potential: str = "", cfg=None) -> tuple[float, str]:
    """Mass density (g/cm³) of the atoms in the cell (ghosts excluded)."""
    from mdshortcut.data.ghost import remove_ghosts

    atoms = remove_ghosts(atoms)
    return float(atoms.get_masses().sum() / atoms.cell.volume * AMU_PER_A3_TO_G_PER_CM3), ""


@dataclass(frozen=True)
class Property:
    """One property (module doc). ``lowest``/``highest``: the physical bounds, in ``unit``;
    ``lowest_allowed``: whether ``lowest`` itself is possible (a shear modulus of 0 is a liquid)."""

    name: str
    unit: str
    lowest: float
    lowest_allowed: bool
    title: str  # as in the paper's tables
    axis: str  # an axis label with its unit
    measure: Callable[..., tuple[float, str]]
    highest: float = math.inf

    def possible(self, value: float) -> bool:
        """Whether ``value`` is within the physical bounds."""
        above = value >= self.lowest if self.lowest_allowed else value > self.lowest
        return above and value <= self.highest

    def bounds(self) -> str:
        """The physical bounds in words, e.g. '> 0 GPa', '>= 3 Si atoms per ring'."""
        text = f"{'>=' if self.lowest_allowed else '>'} {self.lowest:g}"
        return text + (f" and <= {self.highest:g}" if math.isfinite(self.highest) else "") + f" {self.unit}"


PROPERTIES = {
    p.name: p
    for p in (
        # a solid resists shear: G > 0
        Property("shear_modulus", "GPa", 0.0, False, "Shear modulus [GPa]", "shear modulus G (GPa)", shear_modulus),
        # the shortest ring has 3 Si atoms
        Property(
            "ring_size",
            "Si atoms per ring",
            3.0,
            True,
            "Ring size distribution (RSD) [Si atoms per ring]",
            "mean ring size (Si atoms per ring)",
            ring_size,
        ),
        Property("density", "g/cm³", 0.0, False, "Density [g/cm³]", "density (g/cm³)", density),
    )
}
