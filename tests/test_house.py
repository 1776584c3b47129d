"""The package's house rules: few top-level modules, no work at import, every rule script logging
to its rule's log, code inputs that follow imports, and documents that link only to files that exist."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mdshortcut.pipeline.sources import sources

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src/mdshortcut"


def test_at_most_eight_top_level_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(modules) <= 8, modules


def test_importing_every_module_loads_neither_mpi_nor_pyplot():
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import mdshortcut
        for m in pkgutil.walk_packages(mdshortcut.__path__, "mdshortcut."):
            importlib.import_module(m.name)
        maps = open("/proc/self/maps").read()
        print("libmpi" in maps, "matplotlib.pyplot" in sys.modules)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split() == ["False", "False"]


def test_every_rule_script_starts_by_logging_to_its_rule_log():
    for script in sorted((REPO / "workflow/scripts").glob("*.py")):
        statements = [s for s in script.read_text().split("\n\n") if not s.startswith(('"""', "from ", "import "))]
        assert re.match(r"(log = )?to_rule_log\(snakemake\.log\[0\]\)", statements[0].strip()), script.name


def test_rule_log_takes_stderr_warnings_and_the_traceback(tmp_path):
    log = tmp_path / "logs/job.log"
    log.parent.mkdir()
    log.write_text("an earlier run's log\n")
    code = textwrap.dedent(f"""
        import os, warnings
        from mdshortcut.pipeline.rulelog import to_rule_log
        to_rule_log({str(log)!r}).info("started")
        warnings.warn("a warning")
        os.write(2, b"from C through fd 2\\n")
        raise ValueError("bad input: x")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr == f"ValueError: bad input: x (traceback in {log})\n"
    text = log.read_text()
    assert "earlier" not in text
    for part in ("started", "UserWarning: a warning", "from C through fd 2", "Traceback", "ValueError: bad input: x"):
        assert part in text, part


def test_code_inputs_follow_imports_and_only_them():
    labels = {Path(p).relative_to(PACKAGE).as_posix() for p in sources("mdshortcut.properties.labels")}
    assert {"properties/labels.py", "properties/elastic.py", "md/potentials.py", "io.py", "__init__.py"} <= labels
    assert "properties/structure.py" not in labels  # an RDF edit must not relabel the datasets
    evaluate = {Path(p).relative_to(PACKAGE).as_posix() for p in sources("mdshortcut.evaluate")}
    assert {"properties/structure.py", "properties/labels.py"} <= evaluate  # imports inside functions too
    shards = {Path(p).relative_to(PACKAGE).as_posix() for p in sources("mdshortcut.pipeline.shards")}
    assert shards == {"__init__.py", "io.py", "pipeline/__init__.py", "pipeline/shards.py"}
    with pytest.raises(ModuleNotFoundError, match="mdshortcut.nothing is not a module"):
        sources("mdshortcut.nothing")


DOCUMENTS = [
    "README.md",
    "results/reference/README.md",
    "docs/design.md",
    "docs/history/reference-8588b91/README.md",
    "docs/history/reference-0f565fc/README.md",
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_documents_link_only_to_files_in_the_repository(document):
    path = REPO / document
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local, document
    missing = [link for link in local if not (path.parent / link).exists()]
    assert not missing, missing


def test_lammpslib_starts_in_a_fresh_process():
    """MPI loads where LAMMPS starts: a fresh process relaxes with ASE's LAMMPSlib (labels)
    without anything imported before (start_lammps, the other entry, is run by the melt-quench tests)."""
    code = textwrap.dedent("""
        from ase.build import bulk
        from mdshortcut.properties.elastic import relax
        print(relax(bulk("Si", "diamond", a=5.45, cubic=True), "sw", fmax=0.05, max_steps=100).converged)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.split()[-1] == "True", res.stderr[-3000:]


def test_training_is_not_tied_to_the_pipeline_modules():
    """The train rules' code inputs hold the library alone: editing the ablation's or a table's
    module (pipeline/) reruns those rules, never a training. The one pipeline module a training
    reads is the import follower its checkpoint fingerprint is computed with (``sources``)."""
    tracked = [Path(p).as_posix() for p in sources("mdshortcut.train")]
    assert any(p.endswith("mdshortcut/model/egnn.py") for p in tracked)
    pipeline = {p.split("/mdshortcut/")[1] for p in tracked if "/mdshortcut/pipeline/" in p}
    assert pipeline == {"pipeline/__init__.py", "pipeline/sources.py"}


def test_the_checkpoint_fingerprint_covers_the_code_the_train_rule_tracks():
    """A training resumes only with the code that its rule's code input tracks: one list."""
    from mdshortcut.train import training_sources

    assert [str(p) for p in training_sources()] == sources("mdshortcut.train")
