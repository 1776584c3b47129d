"""Fixtures shared by several test modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TEST_CONFIG = REPO / "config/test.yaml"
TEST_RESULTS = yaml.safe_load(TEST_CONFIG.read_text())["results_dir"]  # the test config's results folder


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The command line of the workflow on config/test.yaml in ``workdir``."""
    snakefile, config = str(REPO / "Snakefile"), str(TEST_CONFIG)
    return [SNAKEMAKE, "--snakefile", snakefile, "--directory", str(workdir), "--configfile", config, *args]


def snakemake(workdir: Path, *args: str, timeout: int = 1800, **kwargs) -> subprocess.CompletedProcess:
    """The workflow on config/test.yaml in ``workdir`` (its output captured)."""
    return subprocess.run(
        snakemake_command(workdir, *args), cwd=workdir, capture_output=True, text=True, timeout=timeout, **kwargs
    )


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Path:
    """A folder where config/test.yaml has run through the whole DAG (`all`, the recipe
    `ablation` and the denoiser's `architecture` ablation), once per session (the end-to-end
    tables, the fault and reproducibility tests share it; copy it to change it)."""
    work = tmp_path_factory.mktemp("pipeline")
    res = snakemake(work, "--cores", "2", "all", "ablation", "architecture")
    assert res.returncode == 0, res.stderr[-6000:]
    return work


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (tiny tensors run faster so, above all on a busy machine)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def run_cli(capsys):
    """``mdshortcut ARGS`` in this process -> (exit status, stdout, stderr)."""
    from mdshortcut.cli import main

    def run(*args) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


TINY_SILICA = {
    "potential": "tersoff",
    "initial": {"kind": "random", "n_atoms": [18, 24], "formula": {"Si": 1, "O": 2}, "volume_factor": 4.0},
    "protocol": {
        "stages": [
            {"name": "relax", "kind": "minimize"},
            {"name": "melt", "kind": "md", "ensemble": "npt", "t_start": 3500, "duration_ps": 0.5},
        ],
        "frames": 2,
        "frame_interval_ps": 0.2,
        "branch": [{"name": "quench", "kind": "minimize"}],
    },
}
TINY_TRAINING = {
    "seed": 0,
    "device": "cpu",
    "model": {"n_layers": 2, "hidden": 16, "vector_channels": 2, "property_dim": 4},
    "process": {"shortcut_levels": 3},
    "training": {"steps": 4, "batch_size": 2, "checkpoint_every": 4, "threads": 1},
}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Real tiny a-SiO2 models: 4 structures melt-quenched with LAMMPS (Tersoff, 18-24 atoms),
    labelled by the properties function (relax, shear, rings), padded with ghosts at rho_max
    0.1, and trained for a few steps. Keys: 'shortcut-all', 'ode-none'; 'labels' is the labels
    table (CSV) and 'structures' the extxyz file."""
    from mdshortcut.data.ghost import build_tensors, save_tensors
    from mdshortcut.io import write_csv, write_structures
    from mdshortcut.md.melt_quench import run_replica
    from mdshortcut.md.protocol import MeltQuench
    from mdshortcut.properties.labels import PropertiesConfig, label_frames
    from mdshortcut.train import train_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("tiny_models")
    mq = MeltQuench.from_config("a-sio2", TINY_SILICA)
    frames = [atoms for replica in range(2) for atoms in run_replica(mq, replica, 0, seed=11 + replica).frames]
    table = label_frames(frames, "tersoff", PropertiesConfig(max_steps=300))
    assert table["converged"].all(), table.to_string()
    labels = ["shear_modulus", "ring_size"]
    tensors = build_tensors(frames, ["Si", "O"], 0.1, labels, table[labels].to_numpy(), "a-sio2", seed=0)
    save_tensors(tmp / "tensors.pt", tensors)
    write_structures(tmp / "structures.extxyz", frames)
    write_csv(tmp / "labels.csv", table)
    paths = {"structures": tmp / "structures.extxyz", "labels": tmp / "labels.csv"}
    for name in ("shortcut-all", "ode-none"):
        process, conditioning = name.split("-")
        paths[name] = tmp / f"{name}.pt"
        train_model(tmp / "tensors.pt", paths[name], tmp / f"ckpt-{name}", process, conditioning, TINY_TRAINING)
    torch.set_num_threads(threads)
    assert np.isfinite(table[labels].to_numpy()).all()
    return paths
