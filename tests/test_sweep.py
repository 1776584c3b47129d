"""Sampling plans: runs per config, shards, targets, cells, seeds, merged sidecars."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms

from mdshortcut.io import read_structures, write_structures
from mdshortcut.pipeline.shards import merge_shards
from mdshortcut.pipeline.sweep import (
    SamplingConfig,
    draw_cells,
    plan,
    sampling_runs,
    shard_seed,
    split_run,
    write_run_timing,
)

REPO = Path(__file__).resolve().parents[1]


def _config(name):
    return yaml.safe_load((REPO / f"config/{name}.yaml").read_text())


def test_paper_runs():
    cfg = _config("paper")
    assert sampling_runs(cfg["datasets"]["a-si"]) == ["ode-none", "sde-none", "shortcut-none"]
    runs = sampling_runs(cfg["datasets"]["a-sio2"])
    # Table 2: for each property ODE/SDE (All) and (Target), MDShortcut (All)
    assert runs == [
        "ode-all/shear_modulus",
        "ode-shear_modulus/shear_modulus",
        "sde-all/shear_modulus",
        "sde-shear_modulus/shear_modulus",
        "shortcut-all/shear_modulus",
        "ode-all/ring_size",
        "ode-ring_size/ring_size",
        "sde-all/ring_size",
        "sde-ring_size/ring_size",
        "shortcut-all/ring_size",
    ]
    assert split_run("ode-all/ring_size") == ("ode-all", "ring_size")
    assert split_run("ode-none") == ("ode-none", None)


def test_shards_cover_every_sample_once():
    cfg = SamplingConfig(n_samples=10, samples_per_shard=4)
    assert cfg.n_shards == 3
    assert [list(cfg.shard(k)) for k in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    with pytest.raises(ValueError, match="shard 3 out of range"):
        cfg.shard(3)


def test_inverse_design_plan_matches_the_paper():
    cfg = SamplingConfig.from_config(_config("paper")["datasets"]["a-sio2"]["sampling"])
    cells, targets = plan(cfg, "shear_modulus", None)
    assert cells.shape == (2000, 3, 3)
    np.testing.assert_allclose(cells[123], np.diag([18.0, 18.0, 18.0]))
    t = targets["shear_modulus"]
    assert list(targets) == ["shear_modulus"] and t.shape == (2000,)
    assert t[0] == 10.0 and t[-1] == 50.0 and np.allclose(np.diff(t), 40.0 / 1999)
    _, rings = plan(cfg, "ring_size", None)
    assert rings["ring_size"][0] == 4.0 and rings["ring_size"][-1] == 6.0
    with pytest.raises(ValueError, match="no sampling target range for 'density'"):
        plan(cfg, "density", None)


def test_draw_cells_from_data():
    frames = [Atoms("Si", cell=np.eye(3) * (10 + i), pbc=True) for i in range(5)]
    cells = draw_cells(frames, 5, seed=1)
    edges = sorted(c[0, 0] for c in cells)
    assert edges == [10, 11, 12, 13, 14]  # n <= N: each training cell once
    assert (draw_cells(frames, 5, seed=1) == cells).all()
    more = draw_cells(frames, 12, seed=1)
    assert more.shape == (12, 3, 3) and set(more[:, 0, 0]) <= {10, 11, 12, 13, 14}
    with pytest.raises(ValueError, match="no training structures"):
        draw_cells([], 3, seed=0)


def test_shard_seed_is_stable_and_distinct():
    assert shard_seed(0, "a-si", "", 3) == shard_seed(0, "a-si", "", 3)
    seeds = {
        shard_seed(s, d, p, k) for s in (0, 1) for d in ("a-si", "a-sio2") for p in ("", "ring_size") for k in range(4)
    }
    assert len(seeds) == 32
    assert 0 <= shard_seed(0, "x") < 2**31


def test_merged_run_sums_times_and_keeps_order(tmp_path):
    shards, timings = [], []
    for k, (n, sec) in enumerate([(3, 1.5), (2, 0.5)]):
        frames = [Atoms("Si", cell=[5, 5, 5], pbc=True, info={"sample": 3 * k + i}) for i in range(n)]
        shards.append(tmp_path / f"shard{k}.extxyz")
        write_structures(shards[-1], frames)
        timings.append(tmp_path / f"shard{k}.json")
        timings[-1].write_text(json.dumps({"seconds": sec, "n_samples": n, "device": "cpu"}))
    frames = merge_shards(shards, tmp_path / "ns4.extxyz")
    write_run_timing("sde-all/ring_size", "a-sio2", 4, timings, len(frames), tmp_path / "ns4.json")
    side = json.loads((tmp_path / "ns4.json").read_text())
    assert side["model"] == "sde-all" and side["property"] == "ring_size" and side["n_samples"] == 5
    assert side["seconds"] == pytest.approx(2.0)
    assert side["seconds_per_sample"] == pytest.approx(0.4)
    assert side["seconds_per_step"] == pytest.approx(0.5)
    assert side["seconds_per_10k"] == pytest.approx(4000.0)
    assert [a.info["sample"] for a in read_structures(tmp_path / "ns4.extxyz")] == [0, 1, 2, 3, 4]
    timings[1].write_text(json.dumps({"seconds": 0.5, "n_samples": 3, "device": "cpu"}))
    with pytest.raises(ValueError, match="timings count 6 samples, shards hold 5"):
        write_run_timing("sde-all/ring_size", "a-sio2", 4, timings, len(frames), tmp_path / "x.json")


# --- timed generation with real (tiny) trained models, see conftest.tiny_models -----------------

from mdshortcut.pipeline.sweep import sample_shard, write_cells  # noqa: E402

SILICA = {"dataset": "a-sio2", "potential": "tersoff", "labels": ["shear_modulus", "ring_size"]}  # tiny_models' data


def test_inverse_design_shard(tiny_models, tmp_path):
    cfg = SamplingConfig(
        n_steps=(2,), n_samples=5, samples_per_shard=3, batch_size=2, cell=8.0, targets={"shear_modulus": (10.0, 50.0)}
    )
    outs = []
    for k in range(2):
        out = tmp_path / f"shard{k}"
        sample_shard(
            tiny_models["shortcut-all"],
            "shortcut-all/shear_modulus",
            2,
            1,
            cfg,
            None,
            seed=7,
            device="cpu",
            out_structures=f"{out}.extxyz",
            out_timing=f"{out}.json",
            **SILICA,
        )
        outs.append(read_structures(f"{out}.extxyz", ["Si", "O"]))
    frames = outs[0]
    assert [a.info["sample"] for a in frames] == [3, 4]
    assert [a.info["target_value"] for a in frames] == pytest.approx([40.0, 50.0])
    assert {a.info["target_property"] for a in frames} == {"shear_modulus"}
    assert {a.info["model"] for a in frames} == {"shortcut-all"} and {a.info["n_steps"] for a in frames} == {2}
    for a in frames:
        np.testing.assert_allclose(a.cell.array, np.eye(3) * 8.0)
        assert 0 < len(a) <= int(0.1 * 8.0**3)  # ghosts removed from floor(rho_max · V) slots
    # the same seed gives the same structures
    for a, b in zip(outs[0], outs[1]):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-5)
    timing = json.loads((tmp_path / "shard0.json").read_text())
    assert timing["n_samples"] == 2 and timing["device"] == "cpu" and timing["seconds"] > 0


def test_unconditional_shard_uses_the_drawn_cells(tiny_models, tmp_path):
    cfg = SamplingConfig(n_steps=(1,), n_samples=3, samples_per_shard=3)
    write_cells(tiny_models["structures"], cfg, seed=3, out=tmp_path / "cells.npy")
    cells = np.load(tmp_path / "cells.npy")
    data_cells = {tuple(np.round(a.cell.array, 6).ravel()) for a in read_structures(tiny_models["structures"])}
    assert {tuple(np.round(c, 6).ravel()) for c in cells} <= data_cells
    sample_shard(
        tiny_models["ode-none"],
        "ode-none",
        1,
        0,
        cfg,
        tmp_path / "cells.npy",
        seed=0,
        device="cpu",
        out_structures=tmp_path / "s.extxyz",
        out_timing=tmp_path / "s.json",
        **SILICA,
    )
    frames = read_structures(tmp_path / "s.extxyz")
    assert len(frames) == 3 and all("target_property" not in a.info for a in frames)
    for a, c in zip(frames, cells):
        np.testing.assert_allclose(a.cell.array, c, atol=1e-5)


def test_a_model_refuses_a_target_it_was_not_trained_on(tiny_models, tmp_path):
    cfg = SamplingConfig(n_samples=2, samples_per_shard=2, cell=8.0, targets={"ring_size": (4.0, 6.0)})
    with pytest.raises(KeyError, match="unknown to this model"):
        sample_shard(
            tiny_models["ode-none"],
            "ode-none/ring_size",
            1,
            0,
            cfg,
            None,
            seed=0,
            device="cpu",
            out_structures=tmp_path / "x.extxyz",
            out_timing=tmp_path / "x.json",
            dataset="a-sio2",
            potential="tersoff",
            labels=["ring_size"],
        )
    assert not (tmp_path / "x.extxyz").exists()


@pytest.mark.parametrize(
    "run, expect, wrong",
    [
        ("ode-none", {"dataset": "a-si", "potential": "sw", "labels": []}, "dataset"),  # a-SiO2 model in a-Si
        ("ode-none", {"dataset": "a-sio2", "potential": "sw", "labels": []}, "elements"),
        (
            "shortcut-all/shear_modulus",
            {"dataset": "a-sio2", "potential": "tersoff", "labels": ["shear_modulus"]},
            "properties",
        ),
    ],
)
def test_a_model_of_another_dataset_is_refused_naming_the_file(tiny_models, tmp_path, run, expect, wrong):
    """A model file copied from the other dataset was sampled without a word (a-SiO2 atoms in a-Si
    samples), or failed with a KeyError naming neither file nor mismatch."""
    from mdshortcut.checkpoint import CheckpointError

    cfg = SamplingConfig(n_samples=2, samples_per_shard=2, cell=8.0, targets={"shear_modulus": (10.0, 50.0)})
    cells = tmp_path / "cells.npy"
    np.save(cells, np.broadcast_to(np.eye(3) * 8.0, (2, 3, 3)))
    model = tiny_models[split_run(run)[0]]
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(model))}: a model of {wrong} "):
        sample_shard(
            model,
            run,
            1,
            0,
            cfg,
            None if "/" in run else cells,
            seed=0,
            device="cpu",
            out_structures=tmp_path / "x.extxyz",
            out_timing=tmp_path / "x.json",
            **expect,
        )
    assert not (tmp_path / "x.extxyz").exists()


def test_sampling_config_names_unknown_keys():
    from mdshortcut.config import ConfigError

    with pytest.raises(ConfigError, match=r"sampling: unknown key\(s\) \['n_stepz'\]"):
        SamplingConfig.from_config({"n_stepz": [1]})
