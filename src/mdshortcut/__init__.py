"""MDShortcut: few-step generative modelling and inverse design of amorphous materials.

Importing the package does no work: LAMMPS (and its MPI library) loads when
``mdshortcut.md.potentials.start_lammps`` first starts it, matplotlib only where figures are made.
"""

__version__ = "0.1.0"
