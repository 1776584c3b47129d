"""Evaluation metrics: Eq. 19-21 against hand-computed values, charge balance, failure counts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from mdshortcut.evaluate import composition, inverse_errors, inverse_summary, summarize_inverse


def test_inverse_errors_hand_computed():
    # errors +2, -3, 0 on targets 10, 20, 40
    e = inverse_errors([10.0, 20.0, 40.0], [12.0, 17.0, 40.0])
    assert e["mae"] == pytest.approx(5.0 / 3.0)
    assert e["rmse"] == pytest.approx(math.sqrt(13.0 / 3.0))
    assert e["mape_percent"] == pytest.approx(100.0 * (0.2 + 0.15 + 0.0) / 3.0)


def test_inverse_errors_empty_and_invalid():
    assert all(np.isnan(v) for v in inverse_errors([], []).values())
    with pytest.raises(ValueError, match="shapes"):
        inverse_errors([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="target of 0"):
        inverse_errors([0.0, 1.0], [1.0, 1.0])


@pytest.mark.parametrize(
    "symbols, balanced",
    [("SiO2", True), ("Si2O4", True), ("SiO3", False), ("Si2O3", False), ("O2", False), ("", False)],
)
def test_charge_balance(symbols, balanced):
    atoms = Atoms(symbols, cell=[5, 5, 5], pbc=True)
    c = composition(atoms)
    assert c["charge_balanced"] is balanced
    assert c["n_si"] + c["n_o"] == c["n_atoms"] == len(atoms)


def _rows(values, targets=None, balanced=None):
    n = len(values)
    targets = targets if targets is not None else np.linspace(10, 50, n)
    return pd.DataFrame(
        {
            "property": "shear_modulus",
            "model": "shortcut-all",
            "n_s": 5,
            "target": targets,
            "value": values,
            "converged": np.isfinite(values),
            "reason": ["" if np.isfinite(v) else "not converged after 300 steps" for v in values],
            "charge_balanced": balanced if balanced is not None else [True] * n,
        }
    )


def test_failed_samples_are_counted_not_dropped():
    rows = _rows([11.0, np.nan, 31.0, np.nan], targets=[10.0, 20.0, 30.0, 40.0], balanced=[True, False, False, True])
    s = summarize_inverse(rows)
    assert s["n_samples"] == 4 and s["n_failed"] == 2
    assert s["mae"] == pytest.approx(1.0)  # over the two measured samples only
    assert s["charge_balanced_fraction"] == pytest.approx(0.5)
    assert "2× not converged after 300 steps" in s["failure_reasons"]


def test_all_failed_gives_nan_errors_and_full_count():
    s = summarize_inverse(_rows([np.nan, np.nan]))
    assert s["n_failed"] == 2 and np.isnan(s["mae"])


def test_inverse_summary_joins_timings_and_requires_them(tmp_path):
    run = tmp_path / "ns5.csv"
    _rows([12.0, 20.0, 30.0]).to_csv(run, index=False)
    sidecar = tmp_path / "ns5.json"
    sidecar.write_text(
        json.dumps(
            {"model": "shortcut-all", "property": "shear_modulus", "n_steps": 5, "device": "cpu",
             "seconds": 3.0, "seconds_per_sample": 1.0, "seconds_per_10k": 1e4}
        )
    )
    out = tmp_path / "summary.csv"
    s = inverse_summary([run], [sidecar], out)
    assert list(s["seconds"]) == [3.0]
    assert pd.read_csv(out)["n_samples"].tolist() == [3]
    with pytest.raises(ValueError, match="no sampling sidecar for run shortcut-all shear_modulus n_s=5"):
        inverse_summary([run], [], out)
