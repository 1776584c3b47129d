"""The model benchmark: its table, its files, its rule (timings themselves are not asserted)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from mdshortcut.bench import (
    DENSITY,
    BenchConfig,
    model_benchmark,
    random_batch,
    sampling_step,
    write_model_benchmark,
)
from mdshortcut.model import Denoiser, ModelConfig

REPO = Path(__file__).resolve().parents[1]
SMALL = ModelConfig(n_layers=1, hidden=8, vector_channels=2, property_dim=2)


def test_benchmark_table_and_files(tmp_path):
    out, log = tmp_path / "bench" / "model.csv", tmp_path / "model.log"
    table = write_model_benchmark(out, SMALL, BenchConfig(repeats=1, n_atoms=[256, 1024]), compile=False, log=log)
    on_disk = pd.read_csv(out, dtype={c: str for c in table.columns if c.endswith("_raw")})
    pd.testing.assert_frame_equal(on_disk, table, check_dtype=False)
    assert list(table["n_atoms"]) == [256, 1024]
    for col in ("speedup_vs_straightforward", "scaling_1024_over_256", "straightforward_s_per_step", "eager_s_per_step"):
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
        [snakemake, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-n", "bench",
         "--configfile", str(REPO / "config/test.yaml")],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "results/bench/model.csv" in res.stdout
    assert "rule bench" in res.stdout
