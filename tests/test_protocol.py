"""The protocol builder: config -> dataclasses -> LAMMPS commands (no LAMMPS run here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from mdshortcut.md.protocol import (
    MDSettings,
    MeltQuench,
    Protocol,
    Stage,
    md_commands,
    md_section,
    setup_commands,
    stage_commands,
)

REPO = Path(__file__).resolve().parents[1]


def load(name: str) -> dict:
    cfg = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    validate(cfg, str(REPO / "config" / "schema.yaml"))  # fills the schema's defaults
    return cfg


@pytest.mark.parametrize("config", ["test", "config", "gpu", "paper"])
def test_every_config_builds(config):
    for name, ds in load(config)["datasets"].items():
        mq = MeltQuench.from_config(name, ds)
        assert mq.dataset == name and mq.potential == ds["potential"]
        assert len(mq.protocol.stages) == len(ds["protocol"]["stages"])
        assert mq.md.timestep_fs == ds["timestep_fs"]
        for stage in mq.protocol.stages + mq.protocol.branch:
            if stage.kind == "md":
                assert stage.duration > 0


def test_paper_a_si_protocol_durations():
    """A.9.1: 200 ps heat, 300 ps melt, 3000 -> 2500 K at 10^12 K/s (= 1 K/ps: 500 ps), 300 ps."""
    mq = MeltQuench.from_config("a-si", load("paper")["datasets"]["a-si"])
    assert [s.duration for s in mq.protocol.stages] == [200, 300, 500, 300]
    assert [mq.md.steps(s.duration) for s in mq.protocol.stages] == [200_000, 300_000, 500_000, 300_000]
    assert mq.protocol.label == "heat>melt>cool>equilibrate"
    assert mq.initial.repeat == (4, 4, 2)


def test_defaults_without_schema():
    """Absent keys take the schema's defaults (the dataclasses can be built from a bare dict)."""
    mq = MeltQuench.from_config(
        "x", {"potential": "sw", "initial": {"kind": "diamond"}, "protocol": {"stages": [{"kind": "minimize"}]}}
    )
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["$defs"]["dataset"]["properties"]
    for key in ("timestep_fs", "thermostat_damp_ps", "barostat_damp_ps", "thermo_every"):
        assert getattr(mq.md, key) == schema[key]["default"]
    for key in ("n_replicas", "replicas_per_shard", "max_retries"):
        assert getattr(mq, key) == schema[key]["default"]
    proto = schema["protocol"]["properties"]
    assert mq.protocol.frames == proto["frames"]["default"]
    assert mq.protocol.frame_interval_ps == proto["frame_interval_ps"]["default"]


def test_ramp_from_rate_and_duration():
    cool = Stage(kind="md", ensemble="npt", t_start=3000, t_end=2500, rate_K_per_ps=10.0)
    assert cool.duration == pytest.approx(50.0)
    heat = Stage(kind="md", ensemble="npt", t_start=2500, t_end=3000, rate_K_per_ps=2.0)
    assert heat.duration == pytest.approx(250.0)
    hold = Stage(kind="md", ensemble="nvt", t_start=300, duration_ps=2.5)
    assert hold.final_temperature == 300 and hold.duration == 2.5


def test_md_commands_nvt_ramp():
    md = MDSettings(timestep_fs=2.0, thermostat_damp_ps=0.2)
    stage = Stage(kind="md", ensemble="nvt", t_start=3000, t_end=2500, rate_K_per_ps=10.0)
    assert md_commands(stage, md, velocity_seed=None) == [
        "fix mq all nvt temp 3000 2500 0.2",
        "run 25000",  # 50 ps at 2 fs
        "unfix mq",
    ]


def test_md_commands_npt_with_velocities():
    md = MDSettings(barostat_damp_ps=0.5)
    stage = Stage(kind="md", ensemble="npt", t_start=3500, duration_ps=0.25, pressure_bar=1000.0)
    cmds = md_commands(stage, md, velocity_seed=42)
    assert cmds[0] == "velocity all create 3500 42 dist gaussian mom yes rot no"
    assert cmds[1] == "fix mq all npt temp 3500 3500 0.1 iso 1000.0 1000.0 0.5"
    assert cmds[2:] == ["run 250", "unfix mq"]


def test_md_commands_reject_unknown_ensemble():
    with pytest.raises(ValueError, match="ensemble"):
        md_commands(Stage(kind="md", ensemble="nve", t_start=300, duration_ps=1), MDSettings(), None)


MELT = Stage(kind="md", name="melt", ensemble="npt", t_start=3500, duration_ps=1)
QUENCH = Stage(kind="minimize", name="quench")
ANNEAL = Stage(kind="md", name="anneal", ensemble="nvt", t_start=300, duration_ps=0.5)


def _velocity_seeds(blocks):
    return [int(c.split()[4]) if c.startswith("velocity all create") else None for b in blocks for c in b[:1]]


def test_velocities_drawn_from_rest_only():
    """Velocities are created by an md stage that starts from rest: the first one, and one after
    a minimisation (which ends with the atoms at rest); other md stages continue."""
    seeds = iter([11, 22, 33])
    blocks = stage_commands((QUENCH, MELT, MELT, QUENCH, ANNEAL), MDSettings(), seeds, thermalized=False)
    assert _velocity_seeds(blocks) == [None, 11, None, None, 22]
    assert next(seeds) == 33  # exactly two seeds consumed, in order
    assert blocks[0][-2:] == ["minimize 0.0 1.0e-2 2000 20000", "velocity all set 0.0 0.0 0.0"]


def test_branch_continues_velocities_of_the_snapshot():
    blocks = stage_commands((ANNEAL,), MDSettings(), iter([5]), thermalized=True)
    assert _velocity_seeds(blocks) == [None]
    blocks = stage_commands((QUENCH, ANNEAL), MDSettings(), iter([5]), thermalized=True)
    assert _velocity_seeds(blocks) == [None, 5]


def test_protocol_label_decorrelation_and_limit():
    cool = Stage(kind="md", name="cool", ensemble="npt", t_start=3000, t_end=2500, rate_K_per_ps=10, pressure_bar=5.0)
    proto = Protocol(stages=(QUENCH, MELT, cool), frames=3, frame_interval_ps=2.0, branch=(QUENCH, ANNEAL))
    assert proto.label == "quench>melt>cool|quench>anneal"
    dec = proto.decorrelation
    assert (dec.ensemble, dec.t_start, dec.final_temperature, dec.duration, dec.pressure_bar) == (
        "npt",
        2500,
        2500,
        2.0,
        5.0,
    )
    assert proto.max_temperature == 3500
    guard = setup_commands(MDSettings(), proto.max_temperature)[-1]
    assert guard == "fix mq_guard all halt 100 v_mq_temp > 10500.0 error hard"
    with pytest.raises(ValueError, match="no md stage"):
        _ = Protocol(stages=(QUENCH,)).decorrelation


def test_md_section_ignores_non_md_keys():
    ds = load("test")["datasets"]["a-sio2"]
    section = md_section(ds)
    assert "sampling" not in section and "labels" not in section and "models" not in section
    assert MeltQuench.from_config("a-sio2", section) == MeltQuench.from_config("a-sio2", ds)
    reordered = {k: ds[k] for k in reversed(list(ds))}
    reordered["initial"] = {k: ds["initial"][k] for k in reversed(list(ds["initial"]))}
    assert repr(md_section(reordered)) == repr(section)  # Snakemake compares params as text


def test_shard_replicas_cover_every_replica_once():
    mq = MeltQuench.from_config(
        "a-sio2", {**load("test")["datasets"]["a-sio2"], "n_replicas": 7, "replicas_per_shard": 3}
    )
    shards = [list(mq.shard_replicas(k)) for k in range(3)]
    assert shards == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError, match="no shard 3"):
        mq.shard_replicas(3)
