"""The generative processes: material ODE, material SDE and MDShortcut (one interface)."""

from __future__ import annotations

from .common import Prior, Process, ProcessConfig, Sample, ShortcutBase, atom_counts, draw_prior
from .ode import MaterialODE
from .sde import MaterialSDE
from .shortcut import MDShortcut

PROCESSES = {cls.name: cls for cls in (MaterialODE, MaterialSDE, MDShortcut)}


def make_process(name: str, config: ProcessConfig) -> Process:
    """The process called ``name`` (ode, sde or shortcut)."""
    if name not in PROCESSES:
        raise ValueError(f"unknown process '{name}' (known: {', '.join(PROCESSES)})")
    return PROCESSES[name](config)


__all__ = [
    "PROCESSES",
    "MDShortcut",
    "MaterialODE",
    "MaterialSDE",
    "Prior",
    "Process",
    "ProcessConfig",
    "Sample",
    "ShortcutBase",
    "atom_counts",
    "draw_prior",
    "make_process",
]
