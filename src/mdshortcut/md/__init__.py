"""Molecular dynamics with LAMMPS: potentials and melt-quench protocols."""
