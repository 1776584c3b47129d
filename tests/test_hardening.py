"""Hardening against bad input and faults: tampered checkpoints, non-atomic writes, bad user
structure files; and (slow) on the test config's pipeline: killed jobs redo only their own
work, every output written under a temporary name, same config and seed -> identical tables.

A training job killed with SIGKILL resumes from its checkpoint: tests/test_training.py
(test_resume_after_sigkill_gives_the_same_weights).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.io import write

from conftest import REPO, SNAKEMAKE, TEST_CONFIG, TEST_RESULTS, snakemake
from mdshortcut.checkpoint import CheckpointError, read_model, read_state
from mdshortcut.data.ghost import load_tensors
from mdshortcut.io import write_csv, write_structures
from mdshortcut.train import LOG_NAME

SOURCES = sorted((REPO / "src/mdshortcut").rglob("*.py")) + sorted((REPO / "workflow/scripts").glob("*.py"))


# --- checkpoints -----------------------------------------------------------------------------


class Payload:
    """Unpickling this runs ``touch MARKER``: what a tampered checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_tampered_pickle_is_refused_and_never_runs(tiny_models, tmp_path, run_cli):
    marker = tmp_path / "marker"
    good = read_model(tiny_models["shortcut-all"])
    torch.save({**good, "label_stats": Payload(marker)}, tmp_path / "tampered.pt")
    # the payload is live: an unsafe load runs it
    subprocess.run(
        [sys.executable, "-c", f"import torch; torch.load({str(tmp_path / 'tampered.pt')!r}, weights_only=False)"],
        check=True,
    )
    assert marker.exists()
    marker.unlink()

    for argv in (
        ["info", tmp_path / "tampered.pt"],
        ["generate", "--model", tmp_path / "tampered.pt", "--n", 1, "--steps", 1, "-o", tmp_path / "o.extxyz"],
    ):
        code, out, err = run_cli(*argv)
        assert code == 1 and err.count("\n") == 1, err
        assert "error: not a valid mdshortcut model: " in err and "tampered.pt: not a readable checkpoint" in err
        assert "(refused by the safe loader: Trying to load unsupported GLOBAL posix.system" in err
        assert "weights_only` set to `False`" not in err  # torch's advice to load it unsafely
    with pytest.raises(CheckpointError, match="unsupported GLOBAL posix.system"):
        read_state(tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="tampered.pt: not a readable tensors file .*unsupported GLOBAL posix"):
        load_tensors(tmp_path / "tampered.pt")
    assert not marker.exists() and not (tmp_path / "o.extxyz").exists()


def test_a_truncated_tensors_file_given_to_training_is_one_line_naming_it(tiny_models, tmp_path):
    """It ended in `OSError: [Errno 22] Invalid argument`, naming no file."""
    from conftest import TINY_TRAINING
    from mdshortcut.train import train_model

    data = (Path(tiny_models["structures"]).parent / "tensors.pt").read_bytes()
    cut = tmp_path / "tensors.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(cut))}: not a readable tensors file \("):
        train_model(cut, tmp_path / "m.pt", tmp_path / "ckpt", "ode", "none", TINY_TRAINING)
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_model_with_non_finite_weights_is_refused_naming_the_file(tiny_models, tmp_path, run_cli, value):
    """`generate` exited 0 and wrote 0-atom frames from a model with NaN weights."""
    meta = read_model(tiny_models["ode-none"])
    name = next(k for k, w in meta["state_dict"].items() if w.is_floating_point())
    meta["state_dict"][name].view(-1)[0] = value
    torch.save(meta, tmp_path / "nan.pt")
    for argv in (
        ["info", tmp_path / "nan.pt"],
        ["generate", "--model", tmp_path / "nan.pt", "--n", 1, "--steps", 1, "--cell", 8, "-o", tmp_path / "o.extxyz"],
    ):
        code, out, err = run_cli(*argv)
        assert code == 1 and err.count("\n") == 1, err
        assert f"{tmp_path / 'nan.pt'}: non-finite weights in 1 tensor(s), e.g. {name}" in err, err
    assert not (tmp_path / "o.extxyz").exists()


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            yield node


def test_every_torch_load_is_weights_only():
    loads = [
        (path.name, call.lineno, call)
        for path in SOURCES
        for call in _calls(path)
        if ast.unparse(call.func) == "torch.load"
    ]
    assert len(loads) >= 1
    for name, line, call in loads:
        flags = {k.arg: ast.unparse(k.value) for k in call.keywords}
        assert flags.get("weights_only") == "True", f"{name}:{line}: torch.load without weights_only=True"


def test_model_file_without_typical_cell_needs_a_cell(tiny_models, tmp_path, run_cli):
    """Files written before typical_cell existed still load (same format version)."""
    old = read_model(tiny_models["shortcut-all"])
    del old["typical_cell"]
    torch.save(old, tmp_path / "old.pt")
    out = tmp_path / "o.extxyz"
    code, _, err = run_cli("generate", "--model", tmp_path / "old.pt", "--n", 1, "--steps", 1, "-o", out)
    assert code == 1 and "stores no typical training cell (it predates them): give --cell" in err and not out.exists()
    code, _, err = run_cli("generate", "--model", tmp_path / "old.pt", "--cell", 7, "--n", 1, "--steps", 1, "-o", out)
    assert code == 0 and out.exists(), err
    code, out_text, _ = run_cli("info", tmp_path / "old.pt")
    assert code == 0 and "typical cell unknown" in out_text


# --- atomic writes ---------------------------------------------------------------------------

# (what is written, which argument of the call is the destination: index, or "self" for the receiver)
WRITERS = {
    "to_csv": 0,
    "savefig": 0,
    "write_text": "self",
    "write_bytes": "self",
    "np.save": 0,
    "numpy.save": 0,
    "torch.save": 1,
    "write": 0,
    "open": 0,
    "json.dump": 1,
}
WRITE_MODES = set("wax+")


def _destination(call: ast.Call) -> ast.AST | None:
    """The destination expression of a writing call, None if the call does not write a file."""
    func = ast.unparse(call.func)
    short = func.rsplit(".", 1)[-1]
    key = func if func in WRITERS else short if short in ("to_csv", "savefig", "write_text", "write_bytes") else None
    if key is None and func in ("open", "write"):
        key = func
    if key is None:
        return None
    if key == "open":
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        if not (isinstance(mode, ast.Constant) and WRITE_MODES & set(str(mode.value))):
            return None
    where = WRITERS[key]
    if where == "self":
        return call.func.value
    return call.args[where] if len(call.args) > where else None


def non_atomic_writes(source: str, name: str) -> tuple[list[str], int]:
    """Writing calls of a module whose destination is neither a temporary path of an
    enclosing ``with atomic_path(...) as tmp`` nor a log (a destination or an enclosing
    function or class whose name mentions 'log'); and the number of writing calls."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    bad, count = [], 0
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        dest = _destination(call)
        if dest is None:
            continue
        count += 1
        text = ast.unparse(dest)
        temporaries, scopes, node = set(), [], call
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.With):
                temporaries |= {
                    ast.unparse(item.optional_vars)
                    for item in node.items
                    if item.optional_vars is not None and ast.unparse(item.context_expr.func).endswith("atomic_path")
                }
                # a handle opened on the temporary path in the same `with`
                temporaries |= {
                    ast.unparse(item.optional_vars)
                    for item in node.items
                    if item.optional_vars is not None
                    and ast.unparse(item.context_expr.func) == "open"
                    and ast.unparse(item.context_expr.args[0]) in temporaries
                }
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                scopes.append(node.name)
        names = {n.id for n in ast.walk(dest) if isinstance(n, ast.Name)}
        is_log = "log" in text.lower() or any("log" in s.lower() for s in scopes)
        if not (text in temporaries or names & temporaries or is_log):
            bad.append(f"{name}:{call.lineno}: {ast.unparse(call)}")
    return bad, count


def test_the_audit_finds_a_direct_write():
    source = textwrap.dedent("""
        def save(table, out, tmp_dir):
            table.to_csv(out)
            with atomic_path(out) as tmp:
                table.to_csv(tmp)
                torch.save(table, out)
            with open(out, "w") as fh:
                fh.write("x")
            Path(out).write_text("x")
            Path(snakemake.log[0]).write_text("done")
    """)
    bad, count = non_atomic_writes(source, "example.py")
    assert count == 6
    assert sorted(int(b.split(":")[1]) for b in bad) == [3, 6, 7, 9]


def test_every_output_is_written_atomically():
    """Static audit of the package and the rule scripts (the slow pipeline test checks the
    files actually opened)."""
    found, total = [], 0
    for path in SOURCES:
        bad, count = non_atomic_writes(path.read_text(), str(path.relative_to(REPO)))
        found += bad
        total += count
    assert total >= 20  # the audit sees the writers
    assert not found, "non-atomic writes:\n" + "\n".join(found)


def test_atomic_outputs_keep_the_usual_permissions(tmp_path):
    """Outputs are created with the umask's permissions (a private temporary file renamed into
    place would leave results unreadable to the rest of a group on a shared cluster)."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_structures(tmp_path / "s.extxyz", [bulk("Si")])
    write_csv(tmp_path / "t.csv", pd.DataFrame({"index": [0]}))
    for path in (tmp_path / "s.extxyz", tmp_path / "t.csv"):
        assert path.stat().st_mode == plain.stat().st_mode, path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt", "s.extxyz", "t.csv"]  # no temporary left


# --- user structure files ----------------------------------------------------------------------


def bad_structure_files(tmp: Path) -> list[tuple[str, Path, str]]:
    """(name, file, words of the one-line error): each bad frame comes after a good one."""
    good = bulk("Si", "diamond", a=5.43, cubic=True)

    def second_frame(name: str, change) -> Path:
        atoms = good.copy()
        change(atoms)
        write(tmp / f"{name}.extxyz", [good, atoms], format="extxyz")
        return tmp / f"{name}.extxyz"

    nan = second_frame("nan", lambda a: a.positions.__setitem__((1, 0), np.nan))
    (tmp / "inf.extxyz").write_text(nan.read_text().replace("nan", "inf"))
    second_frame("flat", lambda a: a.set_cell([[5.43, 0, 0], [0, 5.43, 0], [5.43, 5.43, 0]]))
    second_frame("thin", lambda a: a.set_cell([5.43, 5.43, 1e-8]))
    second_frame("slab", lambda a: a.set_pbc([True, True, False]))
    gold = Atoms("Au2", positions=[(0, 0, 0), (1.5, 1.5, 1.5)], cell=[6, 6, 6], pbc=True)
    write(tmp / "gold.extxyz", [good, gold], format="extxyz")
    (tmp / "cut.extxyz").write_text("".join(nan.read_text().splitlines(keepends=True)[:14]))  # frame 1: 2 of 8 atoms
    (tmp / "garbage.extxyz").write_bytes(b"\x89PNG\r\n\x1a\n not a structure")
    write(tmp / "no_atoms.extxyz", [good, Atoms(cell=[5.43] * 3, pbc=True)], format="extxyz")
    write(
        tmp / "ghosts.extxyz",
        [good, Atoms("X2", positions=[(0, 0, 0), (2, 2, 2)], cell=[5.43] * 3, pbc=True)],
        format="extxyz",
    )
    (tmp / "empty.extxyz").write_text("")
    cases = [
        ("nan", "nan.extxyz frame 1: non-finite positions"),
        ("inf", "inf.extxyz frame 1: non-finite positions"),
        ("flat", "flat.extxyz frame 1: degenerate cell (volume 0 Å^3)"),
        ("thin", "thin.extxyz frame 1: degenerate cell (volume"),
        ("slab", "slab.extxyz frame 1: no periodic 3D cell"),
        ("gold", "gold.extxyz frame 1: element(s) Au not in"),
        ("cut", "cut.extxyz frame 1: not readable as extxyz (ase.io.extxyz: Frame has 2 atoms, expected 8)"),
        ("garbage", "garbage.extxyz frame 0: not readable as extxyz"),
        ("no_atoms", "no_atoms.extxyz frame 1: no atoms"),
        ("ghosts", "ghosts.extxyz frame 1: no atoms (only ghosts X)"),
        ("empty", "empty.extxyz: no structures (empty file)"),
        ("missing", "missing.extxyz: no such file"),
    ]
    return [(name, tmp / f"{name}.extxyz", words) for name, words in cases]


@pytest.mark.parametrize("command", ["properties", "structure", "structure --reference"])
def test_bad_structure_files_name_the_frame(tmp_path, run_cli, command):
    good = tmp_path / "good.extxyz"
    write(good, [bulk("Si", "diamond", a=5.43, cubic=True)], format="extxyz")
    for name, path, words in bad_structure_files(tmp_path):
        if command.startswith("structure") and name == "gold":
            continue  # RDF/ADF take any element
        out = tmp_path / "out.csv"
        argv = {
            "properties": ["properties", path, "--potential", "sw"],
            "structure": ["structure", path],
            "structure --reference": ["structure", good, "--reference", path],
        }[command]
        code, _, err = run_cli(*argv, "-o", out)
        assert code == 1, (name, err)
        assert err.startswith(f"mdshortcut {argv[0]}: error: ") and err.count("\n") == 1 and words in err, (name, err)
        assert not out.exists(), name


# --- faults and reproducibility on the test config's pipeline (slow) ------------------------------

AUDIT_HOOK = """
import os, sys
_root = os.environ["MDSHORTCUT_AUDIT_ROOT"]
_log = open(os.path.join(os.environ["MDSHORTCUT_AUDIT_DIR"], f"{os.getpid()}.txt"), "a", buffering=1)


def _hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & (os.O_WRONLY | os.O_RDWR))
        path = os.path.abspath(os.fsdecode(path))
        if writing and path.startswith(_root):
            _log.write(path + "\\n")


sys.addaudithook(_hook)
"""
# two models and everything made from them (results/...): lost, then made again
MODELS = ["models/a-si/shortcut-none.pt", "models/a-sio2/shortcut-all.pt"]
LOST = [
    *MODELS,
    "checkpoints/a-si/shortcut-none",
    "checkpoints/a-sio2/shortcut-all",
    "samples/a-si/shortcut-none",
    "samples/a-sio2/shortcut-all",
    "evaluation/a-si/shortcut-none",
    "evaluation/a-sio2/shortcut-all",
    "evaluation/a-si/structure.csv",
    "evaluation/a-sio2/inverse.csv",
    "tables",
    "figures",
]
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp(\.\w+)?$")


def job_blocks(text: str) -> dict[int, tuple[str, list[str]]]:
    """jobid -> (rule, outputs) of the jobs a Snakemake log announces."""
    jobs, rule, outputs = {}, None, []
    for line in text.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            rule, outputs = m.group(1), []
        elif line.startswith("    output: "):
            outputs = line.removeprefix("    output: ").split(", ")
        elif (m := re.match(r"^    jobid: (\d+)$", line)) and rule:
            jobs[int(m.group(1))] = (rule, outputs)
    return jobs


def finished(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"^Finished jobid: (\d+)", text, flags=re.M)}


def planned_jobs(work: Path) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job a dry run of `all` schedules."""
    res = snakemake(work, "-n", "all", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return list(job_blocks(res.stdout + res.stderr).values())


def jobs_of(jobs, rule: str) -> set[str]:
    return {outputs[0] for r, outputs in jobs if r == rule}


def outputs_opened(audit: Path, work: Path) -> set[Path]:
    """Files under the results folder opened for writing, logs and benchmarks excepted (relative
    paths); the training log in a checkpoint folder (``LOG_NAME``) is appended to by design."""
    paths = {Path(line).relative_to(work) for f in audit.glob("*.txt") for line in f.read_text().split()}
    return {p for p in paths if p.parts[1] not in ("logs", "benchmarks") and p.name != LOG_NAME}


def running_and_finished(text: str, rule: str) -> tuple[set[str], set[str]]:
    """First outputs of the jobs of ``rule`` a Snakemake log shows running, and finished."""
    started, done = job_blocks(text), finished(text)
    jobs = {n: outputs[0] for n, (r, outputs) in started.items() if r == rule}
    return {out for n, out in jobs.items() if n not in done}, {out for n, out in jobs.items() if n in done}


@pytest.mark.slow
def test_a_killed_run_redoes_only_unfinished_shards_and_reproduces_the_tables(pipeline, tmp_path):
    """On a copy of the test config's finished pipeline, two models and everything made from
    them are deleted and made again (training from scratch), under an audit hook that records
    the files opened for writing. Snakemake and its jobs are SIGKILLed as a sampling shard
    starts after another has finished: the killed shard leaves no file, and a dry run
    schedules the unfinished shards but none of the finished jobs. Resumed to the end, every
    output was opened only under a temporary name (Python's opens; torch.save writes from C++,
    see the static audit), and tables, samples, evaluations and models equal the first run's
    (table 1's generation times excepted)."""
    work = tmp_path / "work"
    shutil.copytree(pipeline, work, symlinks=True)
    results = work / TEST_RESULTS
    audit = tmp_path / "audit"
    (audit / "hook").mkdir(parents=True)
    (audit / "hook" / "sitecustomize.py").write_text(AUDIT_HOOK)
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(audit / "hook"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "MDSHORTCUT_AUDIT_DIR": str(audit),
        "MDSHORTCUT_AUDIT_ROOT": str(results) + os.sep,
    }
    for lost in LOST:
        path = results / lost
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    command = [
        SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(TEST_CONFIG),
    ]
    log = tmp_path / "killed.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*command, "--cores", "2", "all"],
            cwd=work,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # kill as soon as a sampling shard starts after another has finished
        deadline, seen, started = time.time() + 1200, set(), set()
        while proc.poll() is None and time.time() < deadline and not started:
            running, done = running_and_finished(log.read_text(), "sample")
            started = running - seen if done else set()
            seen |= running
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    text = log.read_text()
    running, done = running_and_finished(text, "sample")
    assert started and done, f"no sampling shard started after another had finished: {text[-3000:]}"
    assert not any((work / p).exists() for p in started)  # the killed shard left no file
    jobs = planned_jobs(work)
    scheduled = {out for _, outputs in jobs for out in outputs}
    kept = {out for n, (_, outputs) in job_blocks(text).items() if n in finished(text) for out in outputs}
    assert running <= jobs_of(jobs, "sample") and not kept & scheduled
    forced_runs = (f"{TEST_RESULTS}/samples/a-si/shortcut-none/", f"{TEST_RESULTS}/samples/a-sio2/shortcut-all/")
    assert all(out.startswith(forced_runs) for out in jobs_of(jobs, "sample"))  # no other model's shards

    # resume (a SIGKILLed snakemake leaves its lock: --unlock first), then compare with the first run
    assert snakemake(work, "--unlock", timeout=600).returncode == 0
    res = subprocess.run(
        [*command, "--cores", "2", "all"], cwd=work, env=env, capture_output=True, text=True, timeout=1800
    )
    assert res.returncode == 0, res.stderr[-4000:]
    opened = outputs_opened(audit, work)
    direct = sorted(str(p) for p in opened if not TEMPORARY.match(p.name))
    assert not direct, f"outputs opened under their final name: {direct}"
    final = {p.parent / re.sub(r"^\.(.+)\.[0-9a-f]{32}\.tmp(\.\w+)?$", r"\1", p.name) for p in opened}
    assert {p.suffix for p in final} >= {".extxyz", ".json", ".csv", ".md", ".png"}
    assert Path(f"{TEST_RESULTS}/tables/table2.csv") in final and {Path(p) for p in started} <= final

    first = pipeline / TEST_RESULTS
    assert (results / "tables/table2.csv").read_bytes() == (first / "tables/table2.csv").read_bytes()
    t1, t1_first = (pd.read_csv(r / "tables/table1.csv", dtype=str) for r in (results, first))
    assert t1.drop(columns="seconds_per_10k").equals(t1_first.drop(columns="seconds_per_10k"))
    for pattern in ("samples/**/*.extxyz", "evaluation/**/ns*.csv", "evaluation/**/ns*.json"):  # no timings
        files = sorted(p.relative_to(first) for p in first.glob(pattern))
        assert files and all((results / f).read_bytes() == (first / f).read_bytes() for f in files), pattern
    for model in MODELS:
        a, b = (read_model(root / TEST_RESULTS / model)["state_dict"] for root in (pipeline, work))
        assert all(torch.equal(a[k], b[k]) for k in a), model
