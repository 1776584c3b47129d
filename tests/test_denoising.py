"""The denoising probe: the tethered-MD Bayes estimate against a harmonic crystal's exact
posterior (real LAMMPS), the network side against the SDE's own training loss on the same draw
(real tiny models), the held-out frames, and the table.

Harmonic crystal: atoms on springs k_h to their lattice sites have x0 ~ N(x_eq, s² I) with
s² = k_B T / k_h; with x_t = x0 + σ ε the posterior is Gaussian, E[x0 | x_t] = (k_h x_eq + K x_t)
/ (k_h + K) with K = k_B T / σ², so ε* = σ (x_t − x_eq) / (s² + σ²), and the expected Bayes loss
per atom is 3 s² / (s² + σ²).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
from ase.units import _amu, _k, kB

from conftest import REPO, SNAKEMAKE, TEST_RESULTS, snakemake
from mdshortcut.config import ConfigError
from mdshortcut.generative.common import draw_times
from mdshortcut.md.initial import diamond
from mdshortcut.md.lammps_io import lammps_frame, load_atoms
from mdshortcut.md.potentials import start_lammps
from mdshortcut.md.protocol import MeltQuench
from mdshortcut.md.tethered import (
    HeldoutError,
    TetherSettings,
    bayes_estimates,
    frame_posterior,
    heldout_protocol,
    probe_temperature,
    read_bayes,
    tethered_run,
    timestep_fs,
    write_bayes,
)
from mdshortcut.pipeline.denoising import (
    ProbeError,
    cluster_se,
    denoising_table,
    node_errors,
    padded_frames,
    sigma_summary,
)
from mdshortcut.pipeline.tables import probe_models
from mdshortcut.sample import load_model

T, K_H = 2500.0, 20.0  # K, eV/Å²: s = 0.104 Å, between the σ tested
S2 = kB * T / K_H


def harmonic_crystal(sigma: float, n_frames: int, settings: TetherSettings, seed: int = 0) -> dict[str, np.ndarray]:
    """A Bayes file's arrays (one σ) of a 64-atom harmonic crystal (LAMMPS pair_style zero and
    fix spring/self k_h to the lattice), with the exact ε* of each draw under 'exact'."""
    rng = np.random.default_rng(seed)
    atoms = diamond(5.431, (2, 2, 2))
    q, _ = lammps_frame(atoms.cell.array)
    parts = {k: [] for k in ("eps", "star_a", "star_b", "variance", "exact")}
    for _ in range(n_frames):
        x0 = np.sqrt(S2) * rng.standard_normal((len(atoms), 3))  # from the lattice sites
        eps = rng.standard_normal((len(atoms), 3))
        lmp = start_lammps()
        try:
            lmp.command("atom_modify map array")
            load_atoms(lmp, atoms, "sw")
            for cmd in ("pair_style zero 3.0", "pair_coeff * *", f"fix lattice all spring/self {K_H!r}"):
                lmp.command(cmd)
            run = tethered_run(lmp, (x0 + sigma * eps) @ q, T, sigma, settings, rng.integers(1, 10**8, 2).tolist())
        finally:
            lmp.close()
        parts["eps"].append(eps)
        parts["star_a"].append(-run.first @ q.T / sigma)
        parts["star_b"].append(-run.second @ q.T / sigma)
        parts["variance"].append(run.variance / sigma**2)
        parts["exact"].append(sigma * (x0 + sigma * eps) / (S2 + sigma**2))
    arrays = {k: np.concatenate(v)[None] for k, v in parts.items()}
    return arrays | {"sigma": np.array([sigma]), "frame": np.repeat(np.arange(n_frames), len(atoms))}


@pytest.mark.parametrize("sigma", [0.05, 0.2])
def test_tethered_md_finds_the_harmonic_crystals_posterior(sigma):
    arrays = harmonic_crystal(sigma, n_frames=8, settings=TetherSettings(equilibration_ps=1.0, sampling_ps=4.0))
    row = sigma_summary(arrays, 0)
    eps, star_a, star_b, exact = (arrays[k][0] for k in ("eps", "star_a", "star_b", "exact"))
    # E[x0 | x_t] itself: off by what the two halves say the run's noise is (mean square per atom)
    error = np.square(0.5 * (star_a + star_b) - exact).sum(axis=1).mean()
    stated = np.square(star_a - star_b).sum(axis=1).mean() / 4
    assert 0.5 * stated < error < 2 * stated and error < 0.005
    # this draw's Bayes loss, within the MD's stated noise; the expected one within the stated error
    draw = np.square(eps - exact).sum(axis=1).mean()
    assert abs(row["bayes"] - draw) < 4 * row["bayes_md_se"] + 1e-3
    expected = 3 * S2 / (S2 + sigma**2)
    assert abs(row["bayes"] - expected) < 4 * row["bayes_se"]
    n = np.bincount(arrays["frame"])
    variance_se = cluster_se(np.bincount(arrays["frame"], weights=arrays["variance"][0]), n)
    assert abs(row["bayes_var"] - expected) < 4 * variance_se
    assert row["bayes_md_se"] < row["bayes_se"] / 3  # the runs are long enough: draws dominate


def test_timestep_follows_the_tether_period():
    settings = TetherSettings(steps_per_period=30, max_timestep_fs=5.0)
    # Si at 2500 K, σ = 0.05 Å: K = k_B T/σ² (86.2 eV/Å²), period 2π √(m/K) = 36.5 fs, in SI units
    k = _k * 2500.0 / (0.05e-10) ** 2
    period_fs = 2 * np.pi * np.sqrt(28.0855 * _amu / k) * 1e15
    assert timestep_fs(settings, 2500.0, 0.05, 28.0855) == pytest.approx(period_fs / 30, rel=1e-5)
    assert timestep_fs(settings, 2500.0, 0.1, 28.0855) == pytest.approx(2 * period_fs / 30, rel=1e-5)
    assert timestep_fs(TetherSettings(max_timestep_fs=1.0), 2500.0, 0.2, 28.0855) == 1.0


def test_frame_posterior_is_rotation_equivariant(tiny_si):
    """The frame's axes are not LAMMPS's: ε* of a rotated frame and rotated ε is ε* rotated."""
    frame = tiny_si["frames"][0]
    rotation = np.linalg.qr(np.random.default_rng(3).standard_normal((3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))  # proper: the cell stays right-handed
    turned = frame.copy()
    turned.set_cell(frame.cell.array @ rotation.T, scale_atoms=False)
    turned.positions = frame.positions @ rotation.T
    eps = np.random.default_rng(4).standard_normal((len(frame), 3))
    short = TetherSettings(equilibration_ps=0.02, sampling_ps=0.04)  # before chaos amplifies rounding
    plain = frame_posterior(frame, "sw", eps, 0.1, 2500.0, short, [5, 6])
    rotated = frame_posterior(turned, "sw", eps @ rotation.T, 0.1, 2500.0, short, [5, 6])
    np.testing.assert_allclose(rotated[0], plain[0] @ rotation.T, atol=1e-6)
    np.testing.assert_allclose(rotated[2], plain[2], atol=1e-6)


# --- held-out frames and the Bayes file ----------------------------------------------------
TINY_SI = {
    "potential": "sw",
    "initial": {"kind": "diamond", "repeat": [2, 2, 2]},
    "protocol": {
        "stages": [{"name": "melt", "kind": "md", "ensemble": "nvt", "t_start": 2500, "duration_ps": 0.3}],
        "frames": 2,
        "frame_interval_ps": 0.1,
    },
}
TINY_TRAINING = {
    "seed": 0,
    "device": "cpu",
    "model": {"n_layers": 2, "hidden": 16, "vector_channels": 2, "property_dim": 4},
    "training": {"steps": 4, "batch_size": 2, "checkpoint_every": 4, "threads": 1},
}


@pytest.fixture(scope="module")
def tiny_si(tmp_path_factory):
    """Four liquid SW Si frames (two replicas, real LAMMPS), padded with ghosts at rho_max 0.06,
    and tiny models trained on them for a few steps: sde-none, shortcut-none on an SDE base,
    ode-none, and sde-noghost on the frames without ghosts; paths under their names, the frames
    under 'frames'."""
    from mdshortcut.data.ghost import build_tensors, save_tensors
    from mdshortcut.md.melt_quench import run_replica
    from mdshortcut.train import train_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("tiny_si")
    mq = MeltQuench.from_config("a-si", TINY_SI)
    frames = [atoms for replica in range(2) for atoms in run_replica(mq, replica, 0, seed=21 + replica).frames]
    for ghosts in (True, False):
        tensors = build_tensors(frames, ["Si"], 0.06, [], np.zeros((4, 0)), "a-si", seed=0, ghosts=ghosts)
        save_tensors(tmp / f"tensors-{ghosts}.pt", tensors)
    out = {"frames": frames}
    for name, process, ghosts in (
        ("sde-none", {}, True),
        ("shortcut-none", {"shortcut_base": "sde", "shortcut_levels": 2}, True),
        ("ode-none", {}, True),
        ("sde-noghost", {}, False),
    ):
        out[name] = tmp / f"{name}.pt"
        config = TINY_TRAINING | {"process": process}
        tensors = tmp / f"tensors-{ghosts}.pt"
        train_model(tensors, out[name], tmp / f"ckpt-{name}", name.split("-")[0], "none", config)
    torch.set_num_threads(threads)
    return out


def test_heldout_replicas_follow_the_dataset_protocol_with_their_own_seeds():
    from mdshortcut.md.melt_quench import replica_seed

    mq = heldout_protocol("a-si", TINY_SI | {"n_replicas": 64}, replicas=3, frames=5)
    assert (mq.dataset, mq.n_replicas, mq.replicas_per_shard, mq.protocol.frames) == ("a-si-heldout", 3, 3, 5)
    assert mq.protocol.stages == MeltQuench.from_config("a-si", TINY_SI).protocol.stages
    dataset_seeds = {replica_seed(0, "a-si", r, a) for r in range(64) for a in range(4)}
    assert not dataset_seeds & {replica_seed(0, mq.dataset, r, a) for r in range(3) for a in range(4)}
    once = TINY_SI | {"protocol": TINY_SI["protocol"] | {"frames": 1, "frame_interval_ps": 0.0}}
    with pytest.raises(HeldoutError, match="frame_interval_ps 0"):
        heldout_protocol("a-si", once, replicas=1, frames=2)


def test_frames_temperature_is_the_protocols_last_target():
    assert probe_temperature("a-si", TINY_SI, None) == 2500
    quenched = TINY_SI | {"protocol": {"stages": TINY_SI["protocol"]["stages"] + [{"kind": "minimize"}]}}
    assert probe_temperature("a-si", quenched, 300.0) == 300.0
    with pytest.raises(HeldoutError, match=r"denoising\.temperature\.a-si: required"):
        probe_temperature("a-si", quenched, None)
    annealed = quenched | {
        "protocol": quenched["protocol"]
        | {"branch": [{"kind": "minimize"}, {"kind": "md", "ensemble": "nvt", "t_start": 300, "duration_ps": 1}]}
    }
    assert probe_temperature("a-si", annealed, None) == 300


@pytest.fixture(scope="module")
def tiny_bayes(tiny_si, tmp_path_factory):
    """A Bayes file of the tiny frames at σ = 0.05, 0.2 Å from short tethered runs."""
    path = tmp_path_factory.mktemp("bayes") / "bayes.npz"
    settings = TetherSettings(equilibration_ps=0.2, sampling_ps=0.4)
    write_bayes(path, bayes_estimates(tiny_si["frames"], "sw", [0.05, 0.2], 2500.0, settings, seed=1))
    return path


def test_bayes_file_holds_seeded_draws_and_a_denoiser_better_than_zero(tiny_bayes, tiny_si):
    bayes = read_bayes(tiny_bayes)
    assert bayes["eps"].shape == bayes["star_a"].shape == (2, 4 * 64, 3) and bayes["cpu_s"].shape == (2, 4)
    again = np.random.default_rng(np.random.SeedSequence(1, spawn_key=(3, 1))).standard_normal((64, 3))
    np.testing.assert_array_equal(bayes["eps"][1, 3 * 64 :], again)  # frame 3, σ number 1
    small, large = sigma_summary(bayes, 0), sigma_summary(bayes, 1)  # σ = 0.05, 0.2 Å; the issue: 2.69, 1.72
    assert 2.5 < small["noise"] < 3.5 and 2.5 < large["noise"] < 3.5
    assert large["bayes"] < 2.2 and large["bayes_var"] < 2.2 < small["bayes_var"] < 3


# --- the network ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sde-none", "shortcut-none"])
def test_probe_loss_is_the_sde_training_loss_on_the_same_draw(tiny_si, name, one_thread):
    """One structure, the training loss's own draw of t, ε_X and ε_E: the probe's per-node errors
    average to the loss's position term; its ε-loss is the real atoms' part alone."""
    model = load_model(tiny_si[name])
    sde = model.process.base if name.startswith("shortcut") else model.process
    data = padded_frames(tiny_si["frames"][:1], model, seed=2)
    with torch.no_grad():
        _, parts = sde.loss(model.denoiser, data, torch.Generator().manual_seed(5))
    replay, after_t = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    cfg = sde.config
    t = draw_times(cfg, 1, cfg.t_min, cfg.t_max, data.graph.positions, replay)  # the loss's own draws, in order
    draw_times(cfg, 1, cfg.t_min, cfg.t_max, data.graph.positions, after_t)
    eps = torch.randn(data.graph.positions.shape, generator=replay)
    real = data.embeddings[:, 0] == 0
    errors, mask = node_errors(model, data, float(sde.sigma_x(t)), eps[real], after_t)
    assert torch.equal(mask, real) and int((~real).sum()) > 0
    assert float(errors.mean()) == pytest.approx(float(parts["x"]), rel=1e-5)
    assert float(errors[real].mean()) != pytest.approx(float(errors.mean()), rel=1e-3)


def test_flow_models_are_not_probed(tiny_si, tmp_path):
    with pytest.raises(ProbeError, match="predicts a velocity"):
        denoising_table([tiny_si["ode-none"]], {}, {}, seed=0, device="cpu", out=tmp_path / "t.csv")


def test_table_scores_each_model_on_the_real_atoms(tiny_si, tiny_bayes, tmp_path, one_thread):
    from mdshortcut.io import write_structures

    heldout = tmp_path / "heldout.extxyz"
    write_structures(heldout, tiny_si["frames"])
    models = [tiny_si["sde-none"], tiny_si["shortcut-none"]]
    out = tmp_path / "d.csv"
    table = denoising_table(models, {"a-si": heldout}, {"a-si": tiny_bayes}, seed=0, device="cpu", out=out)
    assert out.is_file()
    assert table["model"].tolist() == ["sde-none"] * 2 + ["shortcut-none"] * 2
    assert (table["n_atoms"] == 4 * 64).all() and (table["n_frames"] == 4).all()
    assert table["t"].tolist()[:2] == pytest.approx([0.05 / 1.7, 0.2 / 1.7])
    # barely trained networks: a loss near or above the noise's, captured well below 1
    assert (table["loss"] > table["bayes"]).all() and (table["captured"] < 0.9).all()
    np.testing.assert_allclose(table["captured"], (table["noise"] - table["loss"]) / (table["noise"] - table["bayes"]))


def test_a_model_without_ghosts_is_probed_on_its_atoms_alone(tiny_si, tiny_bayes, tmp_path, one_thread):
    """ghosts: false -> the network sees the 64 real atoms of each frame, as in its training; frames
    of another count are refused."""
    from mdshortcut.io import write_structures

    model = load_model(tiny_si["sde-noghost"])
    data = padded_frames(tiny_si["frames"], model, seed=2)
    assert data.graph.n_atoms.tolist() == [64] * 4 and bool((data.embeddings[:, 0] == 0).all())
    heldout = tmp_path / "heldout.extxyz"
    write_structures(heldout, tiny_si["frames"])
    table = denoising_table(
        [tiny_si["sde-noghost"]], {"a-si": heldout}, {"a-si": tiny_bayes}, 0, "cpu", tmp_path / "d.csv"
    )
    assert (table["n_atoms"] == 4 * 64).all() and table["captured"].notna().all()
    with pytest.raises(ProbeError, match=r"held-out frames of \[63\] atoms; the model was trained on 64 without"):
        padded_frames([tiny_si["frames"][0][:63]], model, seed=2)


def test_probed_models_are_the_epsilon_networks_of_the_listed_datasets():
    config = {
        "process": {"shortcut_base": "ode"},
        "datasets": {
            "a-si": {"models": {"ode": ["none"], "sde": ["none"], "shortcut": ["none"]}},
            "a-sio2": {"models": {"ode": ["all"]}},
        },
    }
    assert probe_models(config) == {"a-si": ["sde-none"]}
    config["process"]["shortcut_base"] = "sde"
    assert probe_models(config | {"denoising": {"datasets": ["a-si"]}}) == {"a-si": ["sde-none", "shortcut-none"]}
    with pytest.raises(ConfigError, match="'a-sio2' has no ε-prediction model"):
        probe_models(config | {"denoising": {"datasets": ["a-sio2"]}})


# --- the DAG ----------------------------------------------------------------------------------
def dry_run(workdir, config: str, target: str) -> str:
    cmd = [
        SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(REPO / f"config/{config}.yaml"),
        "-n",
        target,
    ]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_the_probe_is_a_target_outside_all(tmp_path):
    jobs = dry_run(tmp_path, "test", f"{TEST_RESULTS}/tables/denoising.csv")
    assert all(f"{rule} " in jobs for rule in ("denoising_heldout", "denoising_bayes", "denoising_table"))
    assert "denoising" not in dry_run(tmp_path, "test", "all")


def test_the_default_probe_scores_the_a_si_eps_models(tmp_path):
    """config.yaml probes a-Si only (denoising.datasets): its SDE and its MDShortcut, built on the
    SDE there (the paper's recipe); a-SiO2's quenched glass is not a Boltzmann ensemble."""
    default = dry_run(tmp_path, "config", "results/tables/denoising.csv")
    assert all(f"models/{m}.pt" in default for m in ("a-si/sde-none", "a-si/shortcut-none"))
    assert not any(f"models/{m}.pt" in default for m in ("a-si/ode-none", "a-sio2/sde-all"))


@pytest.mark.slow  # 1-5 min on 2 busy cores: the a-Si dataset, a model and the probe at CI scale
def test_probe_table_on_the_test_config(tmp_path):
    res = snakemake(tmp_path, "--cores", "2", f"{TEST_RESULTS}/tables/denoising.csv")
    assert res.returncode == 0, res.stderr[-6000:]
    table = pd.read_csv(tmp_path / TEST_RESULTS / "tables/denoising.csv")
    rows = [["a-si", "sde-none", 0.05], ["a-si", "sde-none", 0.1]]
    assert table[["dataset", "model", "sigma_A"]].values.tolist() == rows
    assert (table["n_atoms"] == 2 * 64).all() and table["captured"].notna().all()
    assert read_bayes(tmp_path / TEST_RESULTS / "denoising/a-si/bayes.npz")["eps"].shape == (2, 128, 3)
