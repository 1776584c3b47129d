"""The model benchmark: its table, its files, its rule (timings themselves are not asserted)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import TEST_RESULTS
from mdshortcut.generative import ProcessConfig
from mdshortcut.io import write_structures
from mdshortcut.md.melt_quench import run_replica
from mdshortcut.md.protocol import MeltQuench
from mdshortcut.model import Denoiser, ModelConfig
from mdshortcut.pipeline.bench.common import DENSITY, BenchConfig, SamplerBench, random_batch
from mdshortcut.pipeline.bench.md import md_benchmark
from mdshortcut.pipeline.bench.model import model_benchmark, sampling_step, write_model_benchmark
from mdshortcut.pipeline.bench.properties import properties_benchmark
from mdshortcut.pipeline.bench.sampler import sampler_benchmark
from mdshortcut.pipeline.bench.train import train_benchmark
from mdshortcut.properties.labels import PropertiesConfig
from mdshortcut.train import TrainingConfig

REPO = Path(__file__).resolve().parents[1]
SMALL = ModelConfig(n_layers=1, hidden=8, vector_channels=2, property_dim=2)


def test_benchmark_table_and_files(tmp_path):
    out, log = tmp_path / "bench" / "model.csv", tmp_path / "model.log"
    table = write_model_benchmark(out, SMALL, BenchConfig(repeats=1, n_atoms=[256, 1024]), compile=False, log=log)
    on_disk = pd.read_csv(out, dtype={c: str for c in table.columns if c.endswith("_raw")})
    pd.testing.assert_frame_equal(on_disk, table, check_dtype=False)
    assert list(table["n_atoms"]) == [256, 1024]
    for col in (
        "speedup_vs_straightforward",
        "scaling_1024_over_256",
        "straightforward_s_per_step",
        "eager_s_per_step",
    ):
        assert (table[col] > 0).all(), col
    assert (table["eager_max_rel_diff"] <= 1e-4).all()
    # uniform random atoms at 0.05 / Å^3: on average rho * 4/3 pi r_c^3 neighbours within 6.5 Å
    expected = DENSITY * 4 / 3 * math.pi * 6.5**3
    assert table["edges_per_atom"].between(0.9 * expected, 1.1 * expected).all()
    assert "cost per structure 1024 vs 256 atoms" in log.read_text()


def test_scaling_needs_both_sizes():
    table = model_benchmark(SMALL, BenchConfig(repeats=1, n_atoms=[64]), n_steps=2, compile=False)
    assert math.isnan(table["scaling_1024_over_256"].iloc[0])


def test_straightforward_step_equals_optimised_step_on_a_batch():
    """The benchmarked step: structure by structure with fresh lists == one cached graph."""
    torch.manual_seed(0)
    model = Denoiser(SMALL, 2, []).double().eval()
    batch = random_batch(40, 3, DENSITY, torch.Generator().manual_seed(1)).to(dtype=torch.float64)
    e = torch.randn(len(batch.positions), 2, dtype=torch.float64)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    with torch.no_grad():
        slow = sampling_step(model, batch, e, t, True, model.new_neighbours())
        fast = sampling_step(model, batch, e, t, False, model.new_neighbours())
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_bench_rule_dry_run(tmp_path):
    snakemake = str(Path(sys.executable).parent / "snakemake")
    res = subprocess.run(
        [
            snakemake,
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "-n",
            "bench",
            "--configfile",
            str(REPO / "config/test.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("model", "train", "sampler", "md", "properties"):
        assert f"{TEST_RESULTS}/bench/{name}.csv" in res.stdout
    assert "rule bench_sampler" in res.stdout


def test_bench_config_from_the_schema_defaults():
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config.pop("bench", None)
    validate(config, str(REPO / "config/schema.yaml"))
    bench = BenchConfig.from_dict(config["bench"])
    assert (bench.model.n_layers, bench.model.hidden) == (4, 128)  # the paper's network (A.5)
    assert [(s.name, s.model) for s in bench.sampler.sizes] == [("default", "config"), ("paper", "bench")]
    assert bench.sampler.steps["sde"] == [1, 250] and bench.sampler.steps["shortcut"][0] == 1


def test_train_benchmark_table(one_thread):
    bench = BenchConfig.from_dict({"repeats": 2, "train": {"batch_size": 2, "steps": 1}})
    sizes = [("small", 12, SMALL), ("large", 30, SMALL)]
    table = train_benchmark(sizes, bench, ProcessConfig(shortcut_levels=3), TrainingConfig(lr_schedule="cosine"))
    first = ["size", "process", "samples_per_cpu_second", "reference_samples_per_cpu_second", "speedup"]
    assert list(table.columns[:5]) == first
    assert [tuple(r) for r in table[["size", "process"]].to_numpy()] == [
        ("small", "sde"),
        ("small", "shortcut"),
        ("large", "sde"),
        ("large", "shortcut"),
    ]
    assert (table["samples_per_cpu_second"] > 0).all() and (table["reference_samples_per_cpu_second"] > 0).all()
    ratio = table["samples_per_cpu_second"] / table["reference_samples_per_cpu_second"]
    assert (table["speedup"] - ratio).abs().max() < 1e-12
    assert (table["max_rel_grad_diff"] < 1e-4).all()  # float32: the paths agree to rounding
    assert (table["cpu_s_raw"].str.split().str.len() == 2).all()  # one fused/reference pair per repeat


def test_sampler_benchmark_table(one_thread):
    sampler = SamplerBench(n_structures=2, steps={"ode": [1, 3], "sde": [1, 4], "shortcut": [1, 2]})
    sizes = [("small", 12, SMALL), ("large", 30, SMALL)]
    table = sampler_benchmark(sizes, sampler, ProcessConfig(shortcut_levels=3))
    assert len(table) == 12
    assert list(table.drop_duplicates(["size", "process"])["process"]) == ["ode", "sde", "shortcut"] * 2
    assert (table["seconds"] > 0).all()
    expected = table["n_structures"] * table["n_steps"] / table["seconds"]
    assert (table["structure_steps_per_s"] - expected).abs().max() < 1e-9
    sde_max = table[(table["process"] == "sde") & (table["n_steps"] == 4)]
    assert (sde_max["time_vs_sde_max"] == 1.0).all()
    for _, part in table.groupby("size"):
        seconds = part.set_index(["process", "n_steps"])["seconds"]
        assert (part["time_vs_sde_max"] - part["seconds"] / seconds[("sde", 4)]).abs().max() < 1e-12


def test_md_and_properties_benchmarks(tmp_path):
    from conftest import TINY_SILICA

    mq = MeltQuench.from_config("tiny", TINY_SILICA)
    broken = MeltQuench.from_config("broken", {**TINY_SILICA, "timestep_fs": 30.0})  # loses atoms
    md = md_benchmark([mq, broken]).set_index("dataset")
    ok = md.loc["tiny"]
    assert ok["frames"] == 2 and 18 <= ok["n_atoms"] <= 24 and ok["reason"] == ""
    assert 0 < ok["lammps_s"] < ok["wall_s"]
    assert ok["python_overhead_pct"] == pytest.approx(100 * (ok["wall_s"] - ok["lammps_s"]) / ok["wall_s"])
    assert md.loc["broken", "reason"], "a failed replica keeps its row and reason"

    frames = run_replica(mq, 1, 0, seed=5).frames
    write_structures(tmp_path / "s.extxyz", frames)
    table = properties_benchmark({"tiny": (tmp_path / "s.extxyz", "tersoff")}, PropertiesConfig(max_steps=300), 5)
    row = table.iloc[0]
    assert row["n_structures"] == 2 and row["converged"] == 2
    assert row["relaxations_per_min"] == pytest.approx(60 / row["relax_s"])
    assert row["label_s"] > row["relax_s"] > 0  # a label is a relaxation plus the sheared ones


def test_gpu_check_runs_on_the_cpu_at_a_tiny_size_without_lammps(tmp_path):
    """`make gpu-check`'s script, shrunk (2 timed steps of batches of 2 and 3 structures of 8 Si,
    n_s = 250 projected from 2 steps), in a Python where `import lammps` fails, as on a GPU node
    without the MD stack; it times training's own step and the neighbour lists' share of it."""
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['lammps'] = None  # import lammps fails\n")
    out = tmp_path / "gpu.csv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO / "src")])}
    args = [
        "--device",
        "cpu",
        "--config",
        str(REPO / "config/config.yaml"),
        "--steps",
        "2",
        "--warmup",
        "1",
        "--batches",
        "2",
        "3",
        "--samples",
        "2",
        "--long-steps",
        "2",
        "--repeat",
        "1",
        "1",
        "1",
        "--layers",
        "1",
        "--hidden",
        "8",
        "--threads",
        "1",
        "--csv",
        str(out),
    ]
    res = subprocess.run([sys.executable, "-c", "import lammps"], env=env, capture_output=True, text=True)
    assert res.returncode != 0 and "lammps" in res.stderr  # the blocker works
    res = subprocess.run(
        [sys.executable, "-m", "mdshortcut.pipeline.gpu_check", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "200000 steps (paper)" in res.stdout and "at n_s = 250" in res.stdout
    table = pd.read_csv(out)
    train = table[table["what"] == "train"]
    assert [tuple(r) for r in train[["process", "batch"]].to_numpy()] == [
        ("sde", 2),
        ("sde", 3),
        ("shortcut", 2),
        ("shortcut", 3),
    ]
    assert list(train["nodes"]) == [18, 27, 18, 27]  # 8 Si + 1 ghost per cell at rho_max 0.06
    assert (train["seconds"] > 0).all() and train["neighbour_share"].between(0, 1, inclusive="neither").all()
    assert (train["neighbour_calls"] >= 1).all()  # the step builds its graph: the build was timed
    sample = table[table["what"] == "sample"].set_index(["process", "n_s"])["seconds"]
    assert sample[("sde", 250)] > sample[("sde", 1)]  # 125x the steps of a 2-step run
    assert set(table["device"]) == {"cpu"}
