"""The ``mdshortcut`` command: the functions of the DAG, one subcommand each.

    mdshortcut properties IN.extxyz --potential {sw,tersoff} -o OUT.csv
    mdshortcut structure IN.extxyz [--reference REF.extxyz] -o OUT.csv

A subcommand is a function ``add(subparsers)`` in ``COMMANDS`` that adds its parser and sets
``run`` to a function of the parsed arguments. Bad input ends with one line on stderr naming
the file and frame, and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

import numpy as np
import pandas as pd
from ase.data import chemical_symbols

from mdshortcut.io import StructureError, read_structures
from mdshortcut.md.potentials import POTENTIALS, PotentialError
from mdshortcut.properties.labels import PropertiesConfig, label_frames, read_checked, write_table
from mdshortcut.properties.structure import StructureConfig, adf_bins, average_rdf_adf, rdf_bins, rmsd

USER_ERRORS = (StructureError, PotentialError, OSError)


def _add_config_options(parser: argparse.ArgumentParser, config_class) -> None:
    """One option per field of a config dataclass, defaulting to the field's default."""
    for f in fields(config_class):
        if f.name == "structures_per_shard":  # a DAG setting
            continue
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default, help=f"(default {f.default})")


def _config(args: argparse.Namespace, config_class):
    return config_class(**{f.name: getattr(args, f.name) for f in fields(config_class) if hasattr(args, f.name)})


def _run_properties(args: argparse.Namespace) -> None:
    frames = read_checked(args.structures, args.potential)
    write_table(args.output, label_frames(frames, args.potential, _config(args, PropertiesConfig)))


def add_properties(sub) -> None:
    p = sub.add_parser(
        "properties",
        help="relax each structure; shear modulus (GPa), ring size, density (g/cm3)",
        description="One CSV row per frame: index, shear_modulus, ring_size, density, converged, reason.",
    )
    p.add_argument("structures", help="extxyz file (periodic cells; ghost atoms X are removed)")
    p.add_argument("--potential", required=True, choices=sorted(POTENTIALS))
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    _add_config_options(p, PropertiesConfig)
    p.set_defaults(run=_run_properties)


def _distributions(path: str, cfg: StructureConfig) -> tuple[np.ndarray, np.ndarray]:
    frames = read_structures(path, chemical_symbols)  # any element, ghosts (X) included
    if not frames:
        raise StructureError(f"{path}: no structures")
    return average_rdf_adf(frames, cfg)


def _run_structure(args: argparse.Namespace) -> None:
    cfg = _config(args, StructureConfig)
    rdf, adf = _distributions(args.structures, cfg)
    table = pd.DataFrame(
        {
            "metric": ["rdf"] * len(rdf) + ["adf"] * len(adf),
            "x": np.concatenate([rdf_bins(cfg.rdf_rmax, cfg.rdf_bins), adf_bins(cfg.adf_bins)]),
            "value": np.concatenate([rdf, adf]),
        }
    )
    if args.reference:
        ref_rdf, ref_adf = _distributions(args.reference, cfg)
        table["reference"] = np.concatenate([ref_rdf, ref_adf])
        rmsds = pd.DataFrame(
            {"metric": ["rdf_rmsd", "adf_rmsd"], "x": np.nan, "value": [rmsd(rdf, ref_rdf), rmsd(adf, ref_adf)], "reference": np.nan}
        )
        table = pd.concat([table, rmsds], ignore_index=True)
    write_table(args.output, table)


def add_structure(sub) -> None:
    p = sub.add_parser(
        "structure",
        help="averaged RDF and ADF (and RMSDs against a reference)",
        description=(
            "CSV rows: metric (rdf: x = r in Å; adf: x = angle in degrees, value per degree), "
            "value and, with --reference, the reference's value; then rows rdf_rmsd and adf_rmsd."
        ),
    )
    p.add_argument("structures", help="extxyz file (periodic cells; ghost atoms X are removed)")
    p.add_argument("--reference", help="extxyz file of reference structures")
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    _add_config_options(p, StructureConfig)
    p.set_defaults(run=_run_structure)


COMMANDS = [add_properties, add_structure]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mdshortcut", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except USER_ERRORS as exc:
        print(f"mdshortcut {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
