"""``mdshortcut generate`` and ``mdshortcut info`` on real tiny models (see conftest.tiny_models):
the output against the sampling API, the default cell against the training data, the ranges
against the labels table, and every bad request ending in one line, no traceback, no file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ase.io import read

from mdshortcut.checkpoint import read_model
from mdshortcut.evaluate import evaluate_structure
from mdshortcut.properties.labels import PropertiesConfig
from mdshortcut.sample import generate, load_model

MDSHORTCUT = str(Path(sys.executable).parent / "mdshortcut")  # the installed console script


# small tensors: one thread is faster, and much faster on a busy machine (conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_generate_is_the_sampling_api_with_targets_in_info(tiny_models, tmp_path, run_cli):
    out = tmp_path / "designs.extxyz"
    g, r = (
        pd.read_csv(tiny_models["labels"])[["shear_modulus", "ring_size"]].median().round(2)
    )  # within the training range
    args = ["--target", f"shear_modulus={g}", "--target", f"ring_size={r}", "--cell", "7,7.5,8", "--n", 3, "--steps", 2]
    code, stdout, err = run_cli("generate", "--model", tiny_models["shortcut-all"], *args, "--seed", 4, "-o", out)
    assert code == 0, err
    assert "samples/s" in stdout and "warning" not in err
    frames = read(out, index=":")
    cells = torch.tensor(np.diag([7.0, 7.5, 8.0]), dtype=torch.float32).expand(3, 3, 3)
    targets = {"shear_modulus": torch.full((3,), g), "ring_size": torch.full((3,), r)}
    expected = generate(load_model(tiny_models["shortcut-all"]), cells, 2, targets, seed=4)
    assert len(frames) == 3
    for k, (atoms, ref) in enumerate(zip(frames, expected)):
        assert atoms.get_chemical_symbols() == ref.get_chemical_symbols() and "X" not in atoms.symbols
        assert np.allclose(atoms.positions, ref.positions, atol=1e-7) and np.allclose(
            atoms.cell.array, np.diag([7, 7.5, 8])
        )
        assert atoms.pbc.all() and 0 < len(atoms) <= int(0.1 * 7 * 7.5 * 8)
        info = atoms.info
        assert (info["model"], info["dataset"], info["n_steps"], info["seed"], info["sample"]) == (
            "shortcut-all",
            "a-sio2",
            2,
            4,
            k,
        )
        assert (info["target_shear_modulus"], info["target_ring_size"]) == (g, r)


def test_default_cell_is_the_median_volume_training_cell(tiny_models, tmp_path, run_cli):
    out = tmp_path / "d.extxyz"
    code, _, err = run_cli("generate", "--model", tiny_models["shortcut-all"], "--n", 2, "--steps", 1, "-o", out)
    assert code == 0, err
    training = read(tiny_models["structures"], index=":")
    volumes = [a.cell.volume for a in training]
    median = training[int(np.argsort(volumes, kind="stable")[(len(training) - 1) // 2])].cell.array
    for atoms in read(out, index=":"):
        assert np.allclose(atoms.cell.array, median, atol=1e-5)
        assert not any(k.startswith("target_") for k in atoms.info)  # no target: unconditional


def test_target_outside_the_training_range_is_generated_with_a_warning(tiny_models, tmp_path, run_cli):
    out = tmp_path / "far.extxyz"
    code, _, err = run_cli(
        "generate",
        "--model",
        tiny_models["shortcut-all"],
        "--target",
        "shear_modulus=500",
        "--n",
        1,
        "--steps",
        1,
        "-o",
        out,
    )
    assert code == 0
    hi = pd.read_csv(tiny_models["labels"])["shear_modulus"].max()
    assert "warning: target shear_modulus=500 is outside the training range" in err and f"{hi:.4g}]" in err
    assert read(out).info["target_shear_modulus"] == 500.0


def test_an_unconditional_model_samples_and_refuses_targets(tiny_models, tmp_path, run_cli):
    out = tmp_path / "u.extxyz"
    code, _, err = run_cli(*request(tiny_models["ode-none"], out, ["--cell", "7"]))
    assert code == 0 and len(read(out, index=":")) == 2, err
    out.unlink()
    code, _, err = run_cli(*request(tiny_models["ode-none"], out, ["--target", "ring_size=5"]))
    assert code == 1 and "unknown property 'ring_size': this model takes none: the model is unconditional" in err
    assert not out.exists()


def test_info_prints_dataset_process_ranges_and_n_s(tiny_models, run_cli):
    code, out, _ = run_cli("info", tiny_models["shortcut-all"])
    assert code == 0
    labels = pd.read_csv(tiny_models["labels"])
    assert "dataset      a-sio2" in out and "process      shortcut" in out
    for name in ("shear_modulus", "ring_size"):
        assert f"{name:<14} [{labels[name].min():.4g}, {labels[name].max():.4g}]" in out
    assert "n_s = 1, 2, 4, 8 (levels 0..3)" in out and "4 steps" in out  # shortcut_levels 3, 4 training steps
    code, out, _ = run_cli("info", tiny_models["ode-none"])
    assert code == 0 and "none (unconditional)" in out and "process      ode" in out and "any n_s" in out


def bad_models(tiny_models, tmp: Path) -> dict[str, Path]:
    good = read_model(tiny_models["shortcut-all"])
    (tmp / "garbage.pt").write_bytes(b"definitely not a zip file")
    (tmp / "truncated.pt").write_bytes(tiny_models["shortcut-all"].read_bytes()[:3000])
    torch.save({**good, "version": 2}, tmp / "version2.pt")
    torch.save({**good, "model_config": {**good["model_config"], "attention_heads": 4}}, tmp / "newer_model.pt")
    torch.save(read_model(tiny_models["ode-none"]) | {"state_dict": good["state_dict"]}, tmp / "other_weights.pt")
    return {p.stem: p for p in tmp.glob("*.pt")} | {"missing": tmp / "missing.pt"}


BAD_REQUESTS = [
    # (name, arguments after --model, exit status, words in the one-line error)
    (
        "unknown property",
        ["--target", "density=2.2"],
        1,
        "unknown property 'density': this model takes shear_modulus, ring_size",
    ),
    ("no value", ["--target", "shear_modulus"], 2, "malformed target 'shear_modulus': expected NAME=VALUE"),
    ("not a number", ["--target", "shear_modulus=high"], 2, "malformed target 'shear_modulus=high'"),
    ("no name", ["--target", "=30"], 2, "malformed target '=30'"),
    ("nan target", ["--target", "ring_size=nan"], 2, "malformed target 'ring_size=nan'"),
    ("twice", ["--target", "ring_size=5", "--target", "ring_size=6"], 1, "property 'ring_size' targeted twice"),
    (
        "negative modulus",
        ["--target", "shear_modulus=-5"],
        1,
        "target shear_modulus=-5 is impossible: it must be > 0 GPa",
    ),
    ("zero modulus", ["--target", "shear_modulus=0"], 1, "target shear_modulus=0 is impossible: it must be > 0 GPa"),
    (
        "ring of two",
        ["--target", "ring_size=2.5"],
        1,
        "target ring_size=2.5 is impossible: it must be >= 3 Si atoms per ring",
    ),
    ("zero n", ["--n", "0"], 2, "argument --n: expected a positive integer, got '0'"),
    ("negative steps", ["--steps", "-2"], 2, "argument --steps: expected a positive integer, got '-2'"),
    ("fractional steps", ["--steps", "1.5"], 2, "argument --steps: expected a positive integer, got '1.5'"),
    ("two edges", ["--cell", "8,9"], 2, "malformed cell '8,9'"),
    ("zero edge", ["--cell", "8,0,8"], 2, "malformed cell '8,0,8'"),
    ("thin cell", ["--cell", "20,20,1.5"], 1, "narrowest width 1.5 Å is below 0.25 × the 6.5 Å cutoff"),
    ("one atom", ["--cell", "2.5"], 1, "holds 1 atom(s) at rho_max = 0.1 atoms/Å^3"),
    ("no cuda", ["--device", "cuda"], 1, "--device cuda: no CUDA device is visible to torch"),
    ("negative seed", ["--seed", "-1"], 2, "argument --seed: expected an integer from 0 to 2^63 - 1, got '-1'"),
    ("huge seed", ["--seed", str(2**64)], 2, "argument --seed: expected an integer from 0 to 2^63 - 1"),
    ("unknown option", ["--temperature", "300"], 2, "unrecognized arguments: --temperature 300"),
]


def request(model: Path, out: Path, extra: list[str]) -> list:
    """generate's arguments: ``extra``, then --n 2 and --steps 1 unless ``extra`` sets them."""
    defaults = [x for flag, value in (("--n", "2"), ("--steps", "1")) if flag not in extra for x in (flag, value)]
    return ["generate", "--model", model, "-o", out, *extra, *defaults]


@pytest.mark.parametrize("name, extra, status, words", BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_bad_requests_give_one_line_and_no_file(tiny_models, tmp_path, run_cli, name, extra, status, words):
    if name == "no cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    code, _, err = run_cli(*request(tiny_models["shortcut-all"], tmp_path / "out.extxyz", extra))
    assert code == status, err
    prefix = "mdshortcut: error: " if name == "unknown option" else "mdshortcut generate: error: "  # the top parser's
    assert err.startswith(prefix) and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "out.extxyz").exists()


BAD_MODELS = [  # (file, regular expression of the error's end)
    ("missing", r"missing\.pt: no such checkpoint$"),
    ("garbage", r"garbage\.pt: not a readable checkpoint \(.+\)$"),
    ("truncated", r"truncated\.pt: not a readable checkpoint \(.+\)$"),
    ("version2", r"version2\.pt: format version 2, this mdshortcut reads version 1 \(retrain the model\)$"),
    ("newer_model", r"newer_model\.pt: the stored model cannot be rebuilt \(.*unknown key\(s\) \['attention_heads'\]"),
    (
        "other_weights",
        r"other_weights\.pt: the stored model cannot be rebuilt \(.*Error\(s\) in loading state_dict for Denoiser",
    ),
]


def test_unwritable_output_is_refused_before_generating(tiny_models, tmp_path, run_cli):
    """Checked by writing there: /proc passes os.access for root, and failed only after generating."""
    (tmp_path / "a_file").write_text("x")
    for out, words in (
        (tmp_path, "is a folder, not a file to write"),
        (tmp_path / "a_file/out.extxyz", "a_file is not a writable folder"),
        ("/proc/x.extxyz", "/proc/x.extxyz: cannot be written (/proc is not a writable folder"),
    ):
        code, stdout, err = run_cli(*request(tiny_models["shortcut-all"], out, []))
        assert code == 1 and err.startswith("mdshortcut generate: error: ") and words in err and err.count("\n") == 1, (
            err
        )
        assert "generated" not in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_unusable_model_files_give_one_line_and_no_file(tiny_models, tmp_path, run_cli):
    models = bad_models(tiny_models, tmp_path)
    for name, pattern in BAD_MODELS:
        out = tmp_path / f"{name}.extxyz"
        for argv in (request(models[name], out, ["--target", "ring_size=5"]), ["info", models[name]]):
            code, stdout, err = run_cli(*argv)
            assert code == 1, (name, err)
            assert err.startswith(f"mdshortcut {argv[0]}: error: not a valid mdshortcut model: ") and re.search(
                pattern, err.strip()
            ), err
            assert err.count("\n") == 1 and not stdout.strip() and not out.exists()


def test_relax_measures_as_the_dag_evaluates(tiny_models, tmp_path, run_cli):
    """--relax adds to each frame what the DAG's evaluation measures on the same generated
    structure (evaluate_structure with the default properties settings)."""
    out = tmp_path / "relaxed.extxyz"
    code, stdout, err = run_cli(
        *request(tiny_models["shortcut-all"], out, ["--target", "ring_size=5", "--steps", "4", "--relax"])
    )
    assert code == 0, err
    assert "relax" in err  # the progress bar
    frames = read(out, index=":")
    summary = stdout.splitlines()
    assert f"relaxed: {sum(a.info['converged'] for a in frames)} of 2 converged" in summary, stdout
    for p in ("shear_modulus", "ring_size", "density"):  # counted per property, failures named
        failed = [k for k, a in enumerate(frames) if not np.isfinite(a.info[p])]
        line = next(line for line in summary if line.startswith(f"{p}: measured {2 - len(failed)} of 2"))
        assert all(f"sample(s) {k}" in line or f", {k}" in line for k in failed), line
        assert all(frames[k].info["reason"] in line for k in failed), line
    model = load_model(tiny_models["shortcut-all"])
    expected = generate(
        model, model.typical_cell.float().expand(2, 3, 3), 4, {"ring_size": torch.full((2,), 5.0)}, seed=0
    )
    for atoms, generated in zip(frames, expected):
        row = evaluate_structure(generated, "tersoff", PropertiesConfig())
        assert atoms.info["converged"] == row["converged"] and atoms.info.get("reason", "") == row["reason"]
        for p in ("shear_modulus", "ring_size", "density"):
            assert atoms.info[p] == pytest.approx(row[p], rel=1e-12, nan_ok=True), p


def test_relax_summary_counts_each_property_and_names_the_failures():
    """The probe's case: 4 relaxations converged, 3 strained re-relaxations failed, so 1 shear
    modulus was measured (the summary said "relaxed: 4 of 4 converged" and nothing else)."""
    from ase import Atoms

    from mdshortcut.design import measured_summary

    strained = "strained re-relaxation xy strain +0.02: not converged after 1500 steps (max force 0.004 eV/Å)"
    frames = []
    for k in range(4):
        info = {"shear_modulus": 30.0 if k == 0 else np.nan, "ring_size": 5.0, "density": 2.2, "converged": True}
        frames.append(Atoms("Si", cell=[5, 5, 5], pbc=True, info=info | ({"reason": strained} if k else {})))
    frames.append(
        Atoms(
            "Si",
            cell=[5, 5, 5],
            pbc=True,
            info={p: np.nan for p in ("shear_modulus", "ring_size", "density")}
            | {"converged": False, "reason": "relaxation not converged"},
        )
    )
    assert measured_summary(frames) == [
        "relaxed: 4 of 5 converged",
        f"shear_modulus: measured 1 of 5 (not sample(s) 1, 2, 3: {strained}; sample(s) 4: relaxation not converged)",
        "ring_size: measured 4 of 5 (not sample(s) 4: relaxation not converged)",
        "density: measured 4 of 5 (not sample(s) 4: relaxation not converged)",
    ]


def test_the_installed_command(tiny_models, tmp_path):
    """As a user runs it: structures and a rate, then an error without a traceback."""
    out = tmp_path / "designs.extxyz"
    run = subprocess.run(
        [
            MDSHORTCUT,
            *request(tiny_models["shortcut-all"], out, ["--target", "ring_size=5", "--n", "3", "--steps", "4"]),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "generated 3 structures in" in run.stdout and "samples/s" in run.stdout
    assert "generate n_s=4" in run.stderr  # the progress bar
    assert [a.info["target_ring_size"] for a in read(out, index=":")] == [5.0] * 3
    bad = subprocess.run(
        [MDSHORTCUT, *request(tiny_models["shortcut-all"], tmp_path / "x.extxyz", ["--target", "density=2"])],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.extxyz").exists()


def test_an_existing_output_is_kept_unless_forced(tiny_models, tmp_path, run_cli):
    """`-o` overwrote an existing file silently."""
    out = tmp_path / "out.extxyz"
    out.write_text("mine\n")
    code, stdout, err = run_cli(*request(tiny_models["shortcut-all"], out, []))
    assert code == 1 and err == f"mdshortcut generate: error: {out}: exists (give --force to overwrite it)\n"
    assert out.read_text() == "mine\n" and "generated" not in stdout
    code, _, err = run_cli(*request(tiny_models["shortcut-all"], out, ["--force"]))
    assert code == 0, err
    assert len(read(out, index=":")) == 2


@pytest.mark.parametrize("suffix, fmt, n", [(".xyz", "extxyz", 2), (".cif", "cif", 2), (".data", "lammps-data", 1)])
def test_the_output_is_in_the_format_its_extension_names(tiny_models, tmp_path, run_cli, suffix, fmt, n):
    """`-o out.csv` wrote extxyz; each known extension is now written in its format (read back with
    ASE in that format, the same atoms as the extxyz output)."""
    model = tiny_models["shortcut-all"]
    args = ["--cell", "8", "--n", str(n), "--seed", "3"]
    assert run_cli(*request(model, tmp_path / "ref.extxyz", args))[0] == 0
    code, _, err = run_cli(*request(model, tmp_path / f"out{suffix}", args))
    assert code == 0, err
    kwargs = {"style": "atomic", "Z_of_type": {1: 14, 2: 8}} if fmt == "lammps-data" else {}
    got = read(tmp_path / f"out{suffix}", index=":", format=fmt, **kwargs)
    ref = read(tmp_path / "ref.extxyz", index=":")
    assert len(got) == len(ref) == n
    for a, b in zip(got, ref):
        assert sorted(a.get_chemical_symbols()) == sorted(b.get_chemical_symbols())
        assert np.allclose(a.cell.array, b.cell.array, atol=1e-4)


@pytest.mark.parametrize(
    "out, extra, words",
    [
        ("out.csv", [], "out.csv: unknown structure format '.csv' (extensions: .extxyz, .xyz, .cif, .data, .lmp)"),
        ("out", [], "out: unknown structure format '(no extension)'"),
        ("out.data", ["--n", "2"], "out.data: a LAMMPS data file holds one structure (--n 1, or write .extxyz)"),
        ("out.extxyz", ["--n", str(10**9)], f"--n {10**9}: up to "),  # a NumPy MemoryError traceback before
    ],
)
def test_an_output_it_cannot_write_is_refused_at_once(tiny_models, tmp_path, run_cli, out, extra, words):
    start = time.perf_counter()
    code, stdout, err = run_cli(*request(tiny_models["shortcut-all"], tmp_path / out, ["--cell", "8", *extra]))
    assert code == 1 and err.startswith("mdshortcut generate: error: ") and err.count("\n") == 1, err
    assert words in err and "generated" not in stdout
    assert not (tmp_path / out).exists() and time.perf_counter() - start < 30


def _frames_in_temporary(folder: Path, out: Path) -> int:
    """Frames in the temporary file of ``out`` (published as ``out`` at the end, atomically)."""
    return sum(p.read_text().count("Lattice=") for p in folder.glob(f".{out.name}.*.tmp.extxyz"))


def _interrupt(argv: list, sig: signal.Signals, folder: Path, out: Path) -> tuple[int, str]:
    """Run ``mdshortcut generate argv``, send ``sig`` once it has written 2 frames to ``out``'s
    temporary file; its return code and stderr. stderr goes to a file (a pipe read only at the end
    could fill with the progress bar), with faulthandler on: a run still going 60 s after the signal
    is aborted and its stacks fail the test. The run is killed if the test fails before its end."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    with open(folder / "stderr.txt", "w+") as log:
        # SIGINT at its default, as a terminal's foreground job has it: a test run in a background
        # job inherits SIGINT ignored, and the run then went on (seen in a full suite run with `&`)
        restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
        proc = subprocess.Popen(
            [MDSHORTCUT, *map(str, argv)], stdout=subprocess.DEVNULL, stderr=log, env=env, preexec_fn=restore
        )
        try:
            deadline = time.monotonic() + 300  # a loaded machine starts slowly (the test: ~30 s alone)
            while time.monotonic() < deadline and proc.poll() is None and _frames_in_temporary(folder, out) < 2:
                time.sleep(0.2)
            assert proc.poll() is None and _frames_in_temporary(folder, out) >= 2 and not out.exists(), _tail(log)
            proc.send_signal(sig)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)
                proc.wait(timeout=30)
                pytest.fail(f"still running 60 s after {sig.name}; its stacks:\n{_tail(log, 8000)}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return proc.returncode, _tail(log, None)


def _tail(log, chars: int | None = 2000) -> str:
    """The last ``chars`` characters (all: None) of an open log file a child process writes."""
    log.seek(0)
    text = log.read()
    return text if chars is None else text[-chars:]


def test_the_interrupt_message_is_the_last_line_wherever_the_ctrl_c_lands(tiny_models, tmp_path, run_cli, monkeypatch):
    """A Ctrl-C while a batch is being written (not while one is sampled) left the sampler's
    progress bar open; it was closed, and printed its last line, after the message (CI: the bar's
    line came last). Here the KeyboardInterrupt a Ctrl-C raises comes from inside the second write."""
    import mdshortcut.io

    real, batches = mdshortcut.io.write, []
    out = tmp_path / "out.extxyz"

    def write_then_ctrl_c(file, *args, **kwargs):
        if out.name in file.name:  # the output's temporary file (generate also sizes a frame elsewhere)
            batches.append(1)
            if len(batches) == 2:
                raise KeyboardInterrupt
        return real(file, *args, **kwargs)

    monkeypatch.setattr(mdshortcut.io, "write", write_then_ctrl_c)
    code, _, err = run_cli(*request(tiny_models["ode-none"], out, ["--cell", "8", "--n", "5", "--batch-size", "1"]))
    assert code == 130, err
    assert err.strip().splitlines()[-1] == f"mdshortcut generate: interrupted: {out} holds the first 1 of 5 structures"
    assert len(read(out, index=":")) == 1


def test_an_interrupted_run_keeps_what_it_wrote_and_says_how_much(tiny_models, tmp_path):
    """Frames were held in memory to the end: a Ctrl-C lost them all. Now each batch is written as
    made (to the output's temporary file); SIGINT (Ctrl-C) and SIGTERM publish the whole batches
    written and end the run with their count."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        out = tmp_path / f"out{sig}.extxyz"
        argv = request(tiny_models["ode-none"], out, ["--cell", "8", "--n", "100000", "--batch-size", "1"])
        returncode, err = _interrupt(argv, sig, tmp_path, out)
        assert returncode == 130, err[-2000:]
        last = err.strip().splitlines()[-1]
        match = re.fullmatch(
            rf"mdshortcut generate: interrupted: {re.escape(str(out))} holds the first (\d+) of "
            r"100000 structures",
            last,
        )
        assert match, last
        frames = read(out, index=":")
        assert len(frames) == int(match[1]) >= 2
        assert [a.info["sample"] for a in frames] == list(range(len(frames)))
        assert not list(tmp_path.glob(".*.tmp.*"))  # the temporary file became the output
