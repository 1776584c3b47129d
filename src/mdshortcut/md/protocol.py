"""Melt-quench protocols: the MD part of a dataset's config as dataclasses, and the LAMMPS
commands of each stage (the protocol builder).

Units: temperatures K, times ps (the timestep in fs), pressures bar, lengths Å.

Stage semantics. ``md`` integrates with a Nosé–Hoover thermostat (``nvt``) or thermostat and
isotropic barostat (``npt``) whose target temperature is ramped linearly from ``t_start`` to
``t_end`` over the stage. ``minimize`` is a fixed-cell local minimisation followed by zeroing
the velocities: the paper's local relaxation and instantaneous quench. An ``md`` stage that
starts from rest (the first one, or one after a ``minimize``) first draws velocities at its
``t_start``; any other ``md`` stage continues with the velocities it inherits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

#: Fixed-cell conjugate-gradient minimisation with the ``forcezero`` line search (several
#: times faster than the default ``quadratic`` one on Tersoff SiO2, which often fails to
#: converge): stops when no force component exceeds 0.01 eV/Å, or after 2000 iterations /
#: 20000 force evaluations.
MINIMIZE = ("min_style cg", "min_modify norm max line forcezero", "minimize 0.0 1.0e-2 2000 20000")
#: A run whose temperature exceeds this multiple of the protocol's highest target
#: temperature is stopped (LAMMPS ``fix halt``) and counted as failed.
TEMPERATURE_LIMIT_FACTOR = 3.0
#: How often (steps) the temperature limit is checked.
HALT_EVERY = 100
#: The keys of a dataset's config that the melt-quench reads (the rest does not affect MD).
MD_KEYS = (
    "potential",
    "initial",
    "timestep_fs",
    "thermostat_damp_ps",
    "barostat_damp_ps",
    "thermo_every",
    "n_replicas",
    "replicas_per_shard",
    "max_retries",
    "protocol",
)


@dataclass(frozen=True)
class Stage:
    """One step of a protocol (see the module docstring); temperatures K, times ps."""

    kind: str
    name: str | None = None
    ensemble: str | None = None
    t_start: float | None = None
    t_end: float | None = None
    duration_ps: float | None = None
    rate_K_per_ps: float | None = None
    pressure_bar: float = 0.0

    @property
    def label(self) -> str:
        return self.name or self.kind

    @property
    def final_temperature(self) -> float:
        """Target temperature at the end of an md stage, K (t_end, default t_start)."""
        return self.t_start if self.t_end is None else self.t_end

    @property
    def duration(self) -> float:
        """Length of an md stage, ps: duration_ps, or |t_end − t_start| / rate_K_per_ps."""
        if self.duration_ps is not None:
            return self.duration_ps
        return abs(self.final_temperature - self.t_start) / self.rate_K_per_ps


@dataclass(frozen=True)
class Initial:
    """Starting structure: a diamond-cubic crystal repeated ``repeat`` times (lattice constant
    Å), or ``n_atoms`` = [min, max] atoms of ``formula`` placed at random in a cubic cell of
    volume ``volume_factor`` × Σ (4/3)π r_cov³, no two closer than ``min_distance`` Å."""

    kind: str
    repeat: tuple[int, int, int] = (1, 1, 1)
    lattice_constant: float = 5.431
    n_atoms: tuple[int, int] | None = None
    formula: Mapping[str, int] | None = None
    volume_factor: float = 4.0
    min_distance: float = 1.2


@dataclass(frozen=True)
class MDSettings:
    """Integration settings shared by every md stage."""

    timestep_fs: float = 1.0
    thermostat_damp_ps: float = 0.1
    barostat_damp_ps: float = 1.0
    thermo_every: int = 1000

    @property
    def timestep_ps(self) -> float:
        return self.timestep_fs * 1e-3

    def steps(self, duration_ps: float) -> int:
        """Number of timesteps in ``duration_ps``, rounded to the nearest integer."""
        return round(duration_ps / self.timestep_ps)


@dataclass(frozen=True)
class Protocol:
    """``stages`` run once per replica; then ``frames`` times: ``frame_interval_ps`` more of
    the last md stage (not before the first frame), then ``branch`` on a copy of the state."""

    stages: tuple[Stage, ...]
    frames: int = 1
    frame_interval_ps: float = 0.0
    branch: tuple[Stage, ...] = ()

    @property
    def label(self) -> str:
        """Stage names, e.g. ``relax>melt|quench>anneal`` (``|`` separates the branch)."""
        main = ">".join(s.label for s in self.stages)
        return main + ("|" + ">".join(s.label for s in self.branch) if self.branch else "")

    @property
    def decorrelation(self) -> Stage:
        """The MD run between frames: the last md stage, held at its final temperature."""
        md = [s for s in self.stages if s.kind == "md"]
        if not md:
            raise ValueError("protocol has no md stage to continue between frames")
        last = md[-1]
        return Stage(
            kind="md",
            name="decorrelate",
            ensemble=last.ensemble,
            t_start=last.final_temperature,
            duration_ps=self.frame_interval_ps,
            pressure_bar=last.pressure_bar,
        )

    @property
    def max_temperature(self) -> float:
        """Highest target temperature of any stage, K (0 without md stages)."""
        temps = [t for s in self.stages + self.branch if s.kind == "md" for t in (s.t_start, s.final_temperature)]
        return max(temps, default=0.0)


@dataclass(frozen=True)
class MeltQuench:
    """Everything the melt-quench of one dataset needs; built once by ``from_config``."""

    dataset: str
    potential: str
    initial: Initial
    md: MDSettings
    protocol: Protocol
    n_replicas: int = 1
    replicas_per_shard: int = 1
    max_retries: int = 3

    @classmethod
    def from_config(cls, dataset: str, cfg: Mapping) -> MeltQuench:
        """Build from one dataset's (schema-validated) config section; absent keys take the
        schema's defaults."""
        init = dict(cfg["initial"])
        for key in ("repeat", "n_atoms"):
            if key in init:
                init[key] = tuple(init[key])
        if "formula" in init:
            init["formula"] = dict(init["formula"])
        proto = cfg["protocol"]
        md_keys = ("timestep_fs", "thermostat_damp_ps", "barostat_damp_ps", "thermo_every")
        top = ("n_replicas", "replicas_per_shard", "max_retries")
        return cls(
            dataset=dataset,
            potential=cfg["potential"],
            initial=Initial(**init),
            md=MDSettings(**{k: cfg[k] for k in md_keys if k in cfg}),
            protocol=Protocol(
                stages=tuple(Stage(**s) for s in proto["stages"]),
                branch=tuple(Stage(**s) for s in proto.get("branch", ())),
                **{k: proto[k] for k in ("frames", "frame_interval_ps") if k in proto},
            ),
            **{k: cfg[k] for k in top if k in cfg},
        )

    def shard_replicas(self, shard: int) -> range:
        """Replica indices of shard ``shard`` (shards of ``replicas_per_shard``, the last may be
        smaller)."""
        start = shard * self.replicas_per_shard
        if shard < 0 or start >= self.n_replicas:
            raise ValueError(
                f"{self.dataset}: no shard {shard} ({self.n_replicas} replicas, {self.replicas_per_shard} per shard)"
            )
        return range(start, min(start + self.replicas_per_shard, self.n_replicas))


def md_section(cfg: Mapping) -> dict:
    """The part of a dataset's config that the melt-quench reads, keys sorted at every level
    (rule params: a change elsewhere, e.g. in sampling, or a mere reordering of keys must not
    re-run MD)."""
    return _sorted({k: cfg[k] for k in MD_KEYS if k in cfg})


def _sorted(obj):
    if isinstance(obj, Mapping):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list | tuple):
        return [_sorted(v) for v in obj]
    return obj


def setup_commands(md: MDSettings, max_temperature: float) -> list[str]:
    """Timestep, thermo output and the temperature guard, issued once per LAMMPS instance."""
    limit = TEMPERATURE_LIMIT_FACTOR * max_temperature
    return [
        f"timestep {md.timestep_ps!r}",
        f"thermo {md.thermo_every}",
        "thermo_style custom step time temp pe press vol density",
        "thermo_modify flush yes",
        "variable mq_temp equal temp",
        f"fix mq_guard all halt {HALT_EVERY} v_mq_temp > {limit!r} error hard",
    ]


def md_commands(stage: Stage, md: MDSettings, velocity_seed: int | None) -> list[str]:
    """Commands of one md stage; ``velocity_seed`` given: first draw Gaussian velocities at
    t_start (zero total momentum) with that LAMMPS seed (a positive int)."""
    if stage.ensemble not in ("nvt", "npt"):
        raise ValueError(f"stage {stage.label}: ensemble must be nvt or npt, not {stage.ensemble!r}")
    cmds = []
    if velocity_seed is not None:
        cmds.append(f"velocity all create {stage.t_start!r} {velocity_seed} dist gaussian mom yes rot no")
    temp = f"temp {stage.t_start!r} {stage.final_temperature!r} {md.thermostat_damp_ps!r}"
    if stage.ensemble == "npt":
        p = stage.pressure_bar
        fix = f"fix mq all npt {temp} iso {p!r} {p!r} {md.barostat_damp_ps!r}"
    else:
        fix = f"fix mq all nvt {temp}"
    return cmds + [fix, f"run {md.steps(stage.duration)}", "unfix mq"]


def minimize_commands() -> list[str]:
    """Fixed-cell local minimisation, then the atoms at rest (an instantaneous quench)."""
    return [*MINIMIZE, "velocity all set 0.0 0.0 0.0"]


def stage_commands(
    stages: tuple[Stage, ...], md: MDSettings, seeds: Iterator[int], thermalized: bool
) -> list[list[str]]:
    """The commands of each stage, in order (one list per stage).

    ``thermalized``: the atoms carry velocities already (else they are at rest). An md stage
    that starts from rest takes its velocity seed from ``seeds``.
    """
    blocks = []
    for stage in stages:
        if stage.kind == "minimize":
            blocks.append(minimize_commands())
            thermalized = False
        elif stage.kind == "md":
            blocks.append(md_commands(stage, md, None if thermalized else next(seeds)))
            thermalized = True
        else:
            raise ValueError(f"stage {stage.label}: unknown kind {stage.kind!r}")
    return blocks
