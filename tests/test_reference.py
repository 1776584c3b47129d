"""The published run (results/reference/, tracked) and what its README and the main README say
of it agree: the claims table is what ``check_claims`` gives on the published tables, and every
number of the Table 1 and Table 2 comparisons (the full ones in results/reference/README.md, the
summary in README.md) is the published table's value, rounded."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from mdshortcut.pipeline.claims import check_claims
from mdshortcut.pipeline.tables import PROCESSES

ROOT = Path(__file__).parents[1]
REF = ROOT / "results/reference"
README_TABLE2_MODELS = ("ode-all", "ode-target", "sde-all", "sde-target", "shortcut-all")  # its columns


def readme_rows(heading: str, document: Path = REF / "README.md") -> list[list[str]]:
    """Cells of the data rows of the first Markdown table after ``heading`` in ``document``."""
    text = document.read_text()
    section = text[text.index(heading) :]
    rows, started = [], False
    for line in section.splitlines():
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not set(cells[0]) <= set("-: "):
                rows.append(cells)
        elif started:
            break
    return rows[1:]  # without the header


def test_published_claims_follow_from_the_published_tables():
    t1, t2 = pd.read_csv(REF / "tables/table1.csv"), pd.read_csv(REF / "tables/table2.csv")
    published = pd.read_csv(REF / "tables/claims.csv")
    recomputed = check_claims(t1, t2)
    assert list(zip(published["claim"], published["part"], published["holds"])) == list(
        zip(recomputed["claim"], recomputed["part"], recomputed["holds"])
    )


@pytest.mark.parametrize(
    "document, heading, every_n_s",
    [
        (REF / "README.md", "### Table 1: a-Si structural accuracy", True),
        (ROOT / "README.md", "### Results at a glance", False),
    ],
    ids=["reference", "summary"],
)
def test_readme_table1_quotes_the_published_table(document, heading, every_n_s):
    t1 = pd.read_csv(REF / "tables/table1.csv").set_index(["model", "n_s"])
    rows = readme_rows(heading, document)
    assert rows, heading
    n_s = sorted(t1.index.get_level_values("n_s").unique())
    assert [int(r[0]) for r in rows] == n_s if every_n_s else {int(r[0]) for r in rows} < set(n_s)
    for cells in rows:
        n_s = int(cells[0])
        for process, cell in zip(PROCESSES, cells[1::2]):  # the "here" columns
            rdf, adf = re.match(r"([\d.]+) / ([\d.]+)", cell).groups()
            row = t1.loc[(process, n_s)]
            assert float(rdf) == pytest.approx(row["rdf_rmsd"], abs=5e-4), (process, n_s)
            assert float(adf) == pytest.approx(1e3 * row["adf_rmsd"], abs=5e-3), (process, n_s)


def test_readme_table2_quotes_the_published_table():
    t2 = pd.read_csv(REF / "tables/table2.csv").set_index(["property", "model", "n_s"])
    rows = readme_rows("### Table 2: a-SiO₂ inverse design")
    assert len(rows) == len(t2) // len(README_TABLE2_MODELS)
    for cells in rows:
        prop, n_s = cells[0].replace(" ", "_"), int(cells[1])
        for model, cell in zip(README_TABLE2_MODELS, cells[2:]):
            mape, failed = re.match(r"([\d.]+)(?: \((\d+)✗\))? ·", cell).groups()
            row = t2.loc[(prop, model, n_s)]
            assert float(mape) == pytest.approx(row["mape_percent"], abs=0.05), (prop, model, n_s)
            assert int(failed or 0) == row["n_failed"], (prop, model, n_s)


def test_the_readme_first_screen_states_make_runs_cost_and_the_fast_way():
    """`make run`, the README's first command, starts hours of work on every core: its cost was only in
    the Scales table. The first screen (before ## Scales) says it, from the published run's CPU time,
    and names the minutes-long test config."""
    cpu_h = float(re.search(r"\*\*CPU time\.\*\* ([\d.]+) h", (REF / "README.md").read_text())[1])
    readme = (ROOT / "README.md").read_text()
    first = readme[: readme.index("## Scales")]
    assert f"{cpu_h:g} CPU h" in first and f"at least {cpu_h / 2:.1f} h on 2 cores" in first
    assert "make run CONFIG=config/test.yaml" in first and "--cores all" in first


def test_readme_commands_put_no_target_right_after_a_configfile():
    """`snakemake --configfile FILE all` reads `all` as a second config file (FileNotFoundError); the
    README's commands write targets before --configfile or after another option, and say why."""
    readme = (ROOT / "README.md").read_text()
    commands = [
        line.split("#")[0].split()
        for block in re.findall(r"```bash\n(.*?)```", readme, re.S)
        for line in block.splitlines()
        if line.startswith("snakemake")
    ]
    assert [c for c in commands if "--configfile" in c]
    for words in commands:
        if "--configfile" in words:
            after = words[words.index("--configfile") + 2 :]
            assert not after or after[0].startswith("-"), " ".join(words)
    assert "takes every word after it up to the next option as a config file" in readme
