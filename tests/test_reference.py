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
    [(REF / "README.md", "### Table 1: a-Si structural accuracy", True),
     (ROOT / "README.md", "### Results at a glance", False)],
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
