"""The MD side of the denoising probe: held-out frames, and the Bayes-optimal denoiser of a
Boltzmann ensemble estimated by MD tethered to the noisy frame, in LAMMPS.

Frames x0 drawn from p(x0) ∝ exp(−U(x0)/k_B T) in a fixed cell, noised as x_t = x0 + σ ε
(ε ~ N(0, I), σ in Å), have the posterior
    p(x0 | x_t) ∝ exp(−[U(x0) + K/2 |x0 − x_t|²] / k_B T),   K = k_B T / σ²  (eV/Å²):
the Boltzmann ensemble of U plus a harmonic tether of every atom to its noisy position (LAMMPS
``fix spring/self``, force −K r). The time average of a Langevin run at T started at x_t
estimates E[x0 | x_t]; the best possible noise prediction is ε* = (x_t − E[x0 | x_t]) / σ and
the Bayes-optimal ε-loss of the draw is |ε − ε*|² per atom, whose expectation is the posterior
variance (x + y + z) / σ². (A melt-quenched glass is not such an ensemble: there the estimate is
that of the thermal ensemble around its basin.)

Estimator. After ``equilibration_ps`` the run is averaged over two consecutive halves of
``sampling_ps``, giving ε*_A and ε*_B. The loss of a draw is the cross product
(ε − ε*_A)·(ε − ε*_B), free of bias from the halves' independent sampling errors (|ε − ε*|² of
one average is biased up by its error's mean square); the halves' difference measures that
error (``pipeline.denoising.bayes_summary``: ``bayes_md_se``). How long: on 8 SW liquid Si
frames at 2500 K (64 atoms), 1 + 4 ps gives ``bayes_md_se`` 0.001-0.007 per atom at σ = 0.05-0.2
Å, 10-100× below the scatter of the draws (``bayes_se`` 0.05-0.13), and halves that agree
within 0.015 (2.1 CPU s a run); a longer run buys nothing, more frames do. On a harmonic crystal
the estimate matches the exact posterior (tests/test_denoising.py).

Timestep. The tether alone makes every atom an oscillator of period 2π √(m/K): 36.5 fs for Si
(28.09 amu) at 2500 K and σ = 0.05 Å, 73 fs at 0.1 Å. The timestep is that period over
``steps_per_period`` (default 30), capped by the dataset's MD timestep (a-Si: its 1 fs binds at
every σ ≥ 0.05 Å, ≥ 36 steps a period). The thermostat is Langevin with the
Grønbech-Jensen–Farago integrator (``gjf vhalf``), whose configurational sampling of a harmonic
well is exact at any stable timestep.

Units: LAMMPS metal (Å, eV, ps, amu), temperatures K. LAMMPS is imported only inside the MD
functions.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from ase.units import _amu, _e, kB

from mdshortcut.io import atomic_path, read_structures

log = logging.getLogger(__name__)

#: 1 eV/(Å² amu) as a squared angular frequency, 1/ps² (9648.5)
EV_PER_A2_AMU = _e / (1e-20 * _amu) * 1e-24


class HeldoutError(ValueError):
    """Held-out frames or a Bayes estimate that cannot be made; the message names the setting."""


@dataclass(frozen=True)
class TetherSettings:
    """The tethered run of one frame at one σ: ``equilibration_ps`` discarded, then two halves
    of ``sampling_ps`` / 2 averaged separately; Langevin damping time ``damp_ps``; timestep the
    tether's period / ``steps_per_period``, at most ``max_timestep_fs`` (defaults: the schema's;
    the module docstring has why)."""

    equilibration_ps: float = 1.0
    sampling_ps: float = 4.0
    damp_ps: float = 0.1
    steps_per_period: int = 30
    max_timestep_fs: float = 1.0


def tether_constant(temperature: float, sigma: float) -> float:
    """K = k_B T / σ² (eV/Å²) at T (K) and σ (Å)."""
    return kB * temperature / sigma**2


def timestep_fs(settings: TetherSettings, temperature: float, sigma: float, mass: float) -> float:
    """The tethered run's timestep (fs): the tether's period for ``mass`` (amu) over
    ``steps_per_period``, at most ``max_timestep_fs``."""
    omega = math.sqrt(tether_constant(temperature, sigma) / mass * EV_PER_A2_AMU)  # 1/ps
    return min(settings.max_timestep_fs, 2e3 * math.pi / omega / settings.steps_per_period)


@dataclass
class Tethered:
    """Mean displacements from x_t (Å) over the two halves, ``first`` and ``second`` (N, 3), and
    the posterior variance of each atom over the whole run, Σ over x, y, z (N,) Å²; in the frame
    of the positions handed in."""

    first: np.ndarray
    second: np.ndarray
    variance: np.ndarray


def tethered_run(
    lmp, displacement: np.ndarray, temperature: float, sigma: float, settings: TetherSettings, seeds: Sequence[int]
) -> Tethered:
    """Move the atoms of a LAMMPS instance (box, atoms and interactions defined, ids 1..N, atom
    map ``array``) by ``displacement`` (N, 3) Å in LAMMPS's frame to x_t, tether each one there
    with K = k_B T/σ², run Langevin dynamics at ``temperature`` (seeds: two positive ints, for
    the velocities and the thermostat) and return the displacements from x_t averaged over the
    two halves and the posterior variance (LAMMPS frame)."""
    n = lmp.get_natoms()
    masses = np.asarray(lmp.numpy.extract_atom("mass"))[1:]  # per type, index 0 unused
    dt = timestep_fs(settings, temperature, sigma, float(masses.min()))
    steps = [round(1e3 * t / dt) for t in (settings.equilibration_ps, settings.sampling_ps / 2)]
    positions = lmp.gather_atoms("x", 1, 3)
    np.ctypeslib.as_array(positions).reshape(n, 3)[:] += displacement  # a view of the ctypes array
    lmp.scatter_atoms("x", 1, 3, positions)
    t, damp = repr(float(temperature)), repr(float(settings.damp_ps))
    for cmd in (
        f"timestep {dt * 1e-3!r}",
        "run 0 post no",  # x_t wrapped into the box, image flags set: unwrapped positions are x_t
        f"fix tether all spring/self {tether_constant(temperature, sigma)!r}",
        "compute tether_d all displace/atom",  # displacement from x_t, unwrapped (its 4th column is |d|)
        "variable tether_d2 atom c_tether_d[1]^2+c_tether_d[2]^2+c_tether_d[3]^2",
        f"velocity all create {t} {seeds[0]} dist gaussian mom yes rot no",
        f"fix tether_t all langevin {t} {t} {damp} {seeds[1]} gjf vhalf",  # before nve (LAMMPS)
        "fix tether_nve all nve",
        f"run {steps[0]} post no",
        "reset_timestep 0",
        f"fix tether_avg all ave/atom 1 {steps[1]} {steps[1]} c_tether_d[1] c_tether_d[2] c_tether_d[3] v_tether_d2",
    ):
        lmp.command(cmd)
    halves = []
    for _ in range(2):
        lmp.command(f"run {steps[1]} post no")
        halves.append(np.ctypeslib.as_array(lmp.gather("f_tether_avg", 1, 4)).reshape(n, 4).copy())
    (a, b) = halves
    mean = 0.5 * (a[:, :3] + b[:, :3])
    return Tethered(a[:, :3], b[:, :3], 0.5 * (a[:, 3] + b[:, 3]) - np.square(mean).sum(axis=1))


def frame_posterior(
    frame: Atoms,
    potential: str,
    eps: np.ndarray,
    sigma: float,
    temperature: float,
    settings: TetherSettings,
    seeds: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ε*_A, ε*_B (N, 3) and the posterior variance over σ² (N,) of ``frame`` (x0) noised by
    ``eps`` (N, 3) at ``sigma`` Å, under ``potential`` at ``temperature`` K (``tethered_run``)."""
    from mdshortcut.md.lammps_io import lammps_frame, load_atoms
    from mdshortcut.md.potentials import start_lammps

    q, _ = lammps_frame(frame.cell.array)  # a row vector v of the frame is v @ q in LAMMPS's
    lmp = start_lammps()
    try:
        lmp.command("atom_modify map array")  # scatter_atoms needs the atom map
        load_atoms(lmp, frame, potential)
        run = tethered_run(lmp, sigma * np.asarray(eps) @ q, temperature, sigma, settings, seeds)
    finally:
        lmp.close()
    return -run.first @ q.T / sigma, -run.second @ q.T / sigma, run.variance / sigma**2


def bayes_estimates(
    frames: Sequence[Atoms],
    potential: str,
    sigmas: Sequence[float],
    temperature: float,
    settings: TetherSettings,
    seed: int,
) -> dict[str, np.ndarray]:
    """Tethered MD of every frame at every σ (Å): for frame k and σ number j, ε and the two
    LAMMPS seeds come from ``SeedSequence(seed, spawn_key=(k, j))``. Returns the arrays of a
    Bayes file (``write_bayes``): ``sigma`` (S,) Å, ``frame`` (N,) each atom's frame, ``eps``,
    ``star_a``, ``star_b`` (S, N, 3), ``variance`` (S, N) posterior variance / σ²,
    ``cpu_s`` (S, F) CPU seconds of each run, ``timestep_fs`` (S,), ``temperature`` () K."""
    from mdshortcut.md.melt_quench import LAMMPS_SEED_MAX
    from mdshortcut.md.potentials import get_potential

    n = [len(f) for f in frames]
    out = {k: [] for k in ("eps", "star_a", "star_b", "variance", "cpu_s")}
    for j, sigma in enumerate(sigmas):
        parts = {k: [] for k in out}
        for k, frame in enumerate(frames):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, j)))
            eps = rng.standard_normal((len(frame), 3))
            seeds = [int(s) for s in rng.integers(1, LAMMPS_SEED_MAX, 2)]
            cpu = time.process_time()
            star_a, star_b, variance = frame_posterior(frame, potential, eps, sigma, temperature, settings, seeds)
            parts["cpu_s"].append(time.process_time() - cpu)
            for key, value in zip(("eps", "star_a", "star_b", "variance"), (eps, star_a, star_b, variance)):
                parts[key].append(value)
            log.info(f"sigma {sigma} A frame {k + 1}/{len(frames)}: {parts['cpu_s'][-1]:.1f} CPU s")
        for key, values in parts.items():
            out[key].append(np.concatenate(values) if key != "cpu_s" else np.array(values))
    mass = min(float(atomic_masses[atomic_numbers[s]]) for s in get_potential(potential).elements)  # as LAMMPS's
    return {
        "sigma": np.asarray(sigmas, dtype=float),
        "frame": np.repeat(np.arange(len(frames)), n),
        **{k: np.stack(v) for k, v in out.items()},
        "timestep_fs": np.array([timestep_fs(settings, temperature, s, mass) for s in sigmas]),
        "temperature": np.asarray(float(temperature)),
    }


BAYES_KEYS = ("sigma", "frame", "eps", "star_a", "star_b", "variance", "cpu_s", "timestep_fs", "temperature")


def write_bayes(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a Bayes file (``bayes_estimates``'s arrays, .npz) atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: arrays[k] for k in BAYES_KEYS})


def read_bayes(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a Bayes file (no pickled objects); HeldoutError naming the file if one is missing."""
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in BAYES_KEYS if k not in data]
        if missing:
            raise HeldoutError(f"{path}: not a Bayes file (missing {missing})")
        return {k: data[k] for k in BAYES_KEYS}


def frame_temperature(protocol) -> float | None:
    """Temperature (K) of the frames a melt-quench ``Protocol`` records: the final target of its
    last stage (the branch's, if any), None if that stage is a minimisation (0 K)."""
    last = (protocol.branch or protocol.stages)[-1]
    return last.final_temperature if last.kind == "md" else None


def heldout_protocol(dataset: str, md_cfg: Mapping, replicas: int, frames: int):
    """The ``MeltQuench`` of a dataset's held-out frames: its protocol and potential, ``replicas``
    replicas of ``frames`` frames, named ``{dataset}-heldout`` (which seeds its replicas apart
    from the dataset's: ``melt_quench.replica_seed`` hashes the name)."""
    from mdshortcut.md.protocol import MeltQuench

    mq = MeltQuench.from_config(f"{dataset}-heldout", md_cfg)
    if frames > 1 and mq.protocol.frame_interval_ps == 0:
        raise HeldoutError(f"denoising.frames: {dataset}'s protocol has frame_interval_ps 0 (frames would repeat)")
    protocol = replace(mq.protocol, frames=frames)
    return replace(mq, n_replicas=replicas, replicas_per_shard=replicas, protocol=protocol)


def write_heldout(
    dataset: str,
    md_cfg: Mapping,
    replicas: int,
    frames: int,
    seed: int,
    structures: str | os.PathLike,
    failures: str | os.PathLike,
    log_file: str | os.PathLike | None = None,
) -> int:
    """Melt-quench the held-out frames of a dataset (``heldout_protocol``; the melt_quench rule's
    ``run_shard``, retries included) into ``structures``; returns the number of frames."""
    from mdshortcut.md.melt_quench import run_shard

    n, _ = run_shard(heldout_protocol(dataset, md_cfg, replicas, frames), seed, 0, structures, failures, log_file)
    if n == 0:
        raise HeldoutError(f"{dataset}: every held-out replica failed (see {failures})")
    return n


def probe_temperature(dataset: str, md_cfg: Mapping, override: float | None) -> float:
    """The temperature (K) of a dataset's frames: ``override``, else the final target of the
    protocol's last stage (``tethered.frame_temperature``)."""
    from mdshortcut.md.protocol import MeltQuench

    temperature = override or frame_temperature(MeltQuench.from_config(dataset, md_cfg).protocol)
    if temperature is None:
        raise HeldoutError(f"denoising.temperature.{dataset}: required, its frames are minimised (0 K)")
    return temperature


def write_bayes_file(
    structures: str | os.PathLike,
    out: str | os.PathLike,
    dataset: str,
    md_cfg: Mapping,
    sigmas: Sequence[float],
    md: Mapping,
    temperature: float | None,
    seed: int,
) -> None:
    """The Bayes file of a dataset's held-out frames (``tethered.bayes_estimates``): its
    potential, its frames' temperature (``probe_temperature``), ``md`` the tethered runs'
    settings (``TetherSettings``, timestep capped by the dataset's)."""
    from mdshortcut.md.protocol import MeltQuench

    mq = MeltQuench.from_config(dataset, md_cfg)
    frames = read_structures(structures)
    settings = TetherSettings(**{**md, "max_timestep_fs": mq.md.timestep_fs})
    temperature = probe_temperature(dataset, md_cfg, temperature)
    log.info(f"{dataset}: {len(frames)} frames at {temperature} K, sigma {list(sigmas)} A, {settings}")
    write_bayes(out, bayes_estimates(frames, mq.potential, sigmas, temperature, settings, seed))
