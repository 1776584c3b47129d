"""Merging shards (mdshortcut.pipeline.shards): melt-quench shards and failures tables, order, content, clear errors."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from mdshortcut.io import StructureError, write_structures
from mdshortcut.md.failures import FAILURE_FIELDS, Failure, read_failures, require_frames, write_failures
from mdshortcut.pipeline.shards import merge_shards


def frame(replica: int, n: int, rng: np.random.Generator) -> Atoms:
    atoms = Atoms(f"Si{n}", positions=rng.uniform(0, 5, (n, 3)), cell=[5.0, 5.5, 6.0], pbc=True)
    atoms.info.update(dataset="a-si", replica=replica, frame=0, seed=100 + replica, protocol="melt")
    return atoms


@pytest.fixture
def shards(tmp_path):
    """Three shards: 2 frames, none (all failed), 1 frame."""
    rng = np.random.default_rng(0)
    frames = [[frame(0, 3, rng), frame(1, 4, rng)], [], [frame(4, 5, rng)]]
    failures = [
        [],
        [
            Failure("a-si", 2, 0, 11, "retried", "ERROR: Lost atoms: original 64 current 6"),
            Failure("a-si", 2, 1, 12, "dropped", 'Fix halt condition, "quoted", with commas'),
            Failure("a-si", 3, 0, 13, "dropped", "non-finite potential energy (nan)"),
        ],
        [],
    ]
    paths = []
    for k, (fr, fa) in enumerate(zip(frames, failures)):
        s, f = tmp_path / f"{k}.extxyz", tmp_path / f"{k}.failures.csv"
        write_structures(s, fr)
        write_failures(f, fa)
        paths.append((s, f))
    return frames, failures, paths


def test_merge_keeps_order_and_content(shards, tmp_path):
    frames, failures, paths = shards
    out_s, out_f = tmp_path / "structures.extxyz", tmp_path / "failures.csv"
    assert len(merge_shards([p[0] for p in paths], out_s, check=require_frames)) == 3
    assert len(merge_shards([p[1] for p in paths], out_f, read=read_failures)) == 3
    merged = read(out_s, index=":")
    expected = [a for fr in frames for a in fr]
    assert [a.info["replica"] for a in merged] == [0, 1, 4]
    for got, want in zip(merged, expected):
        assert got.get_chemical_symbols() == want.get_chemical_symbols()
        assert np.allclose(got.positions, want.positions, atol=1e-7)
        assert np.allclose(got.cell.array, want.cell.array)
        assert got.info["seed"] == want.info["seed"] and got.info["protocol"] == "melt"
    assert list(read_failures(out_f).itertuples(index=False, name=None)) == [astuple(f) for fa in failures for f in fa]
    assert out_f.read_text().splitlines()[0] == ",".join(FAILURE_FIELDS)


def test_merge_of_only_failures_is_an_error(shards, tmp_path):
    _, _, paths = shards
    with pytest.raises(StructureError, match="no frame in any shard"):
        merge_shards([paths[1][0]], tmp_path / "s.extxyz", check=require_frames)
    assert not (tmp_path / "s.extxyz").exists()


def test_merge_names_a_broken_shard(shards, tmp_path):
    _, _, paths = shards
    broken = tmp_path / "broken.extxyz"
    broken.write_text("3\nnot an extxyz header\nSi 0 0\n")
    with pytest.raises(StructureError, match="broken.extxyz"):
        merge_shards([paths[0][0], broken], tmp_path / "s.extxyz")


def test_merge_names_a_bad_failures_table(shards, tmp_path):
    _, _, paths = shards
    bad = tmp_path / "bad.failures.csv"
    bad.write_text("replica,reason\n1,boom\n")
    with pytest.raises(StructureError, match="bad.failures.csv: not a failures table"):
        merge_shards([paths[0][1], bad], tmp_path / "f.csv", read=read_failures)
    bad.write_text(",".join(FAILURE_FIELDS) + "\na-si,one,0,1,dropped,boom\n")
    with pytest.raises(StructureError, match="bad.failures.csv line 2: malformed"):
        merge_shards([paths[0][1], bad], tmp_path / "f.csv", read=read_failures)
