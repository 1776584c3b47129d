"""Evaluation of generated structures (paper §3.2, appendix A.6–A.8).

Two kinds of run, one per dataset kind:

- structural (a-Si): the RDF and ADF of a run's samples, averaged over structures, against the
  training set's (RMSD, Eq. 18);
- inverse design (a-SiO2): every generated structure goes through the same properties function
  as the training labels (relax, shear modulus, rings, density); MAE, RMSE and MAPE against the
  targets (Eq. 19–21) over the samples whose property could be measured. Samples whose
  relaxation failed keep their row with the reason and are counted in ``n_failed``.

Units: shear modulus GPa, ring size Si atoms per ring, density g/cm³, times s.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from ase import Atoms

from mdshortcut.io import atomic_path

RUN_KEYS = ["property", "model", "n_s"]


def inverse_errors(target: Sequence[float], generated: Sequence[float]) -> dict[str, float]:
    """MAE and RMSE (units of the property) and MAPE (%) of paired values, Eq. 19–21.

    target, generated: (n,). NaN for all three when n = 0.
    """
    target = np.asarray(target, dtype=float)
    generated = np.asarray(generated, dtype=float)
    if target.shape != generated.shape or target.ndim != 1:
        raise ValueError(f"target {target.shape} and generated {generated.shape} must be equal 1-D shapes")
    if target.size == 0:
        return {"mae": np.nan, "rmse": np.nan, "mape_percent": np.nan}
    if np.any(target == 0):
        raise ValueError("MAPE is undefined for a target of 0")
    err = generated - target
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape_percent": float(100.0 * np.mean(np.abs(err / target))),
    }


def composition(atoms: Atoms) -> dict[str, int | bool]:
    """Atom counts of a generated SiO2 structure and whether it is charge balanced.

    Charge balanced: Si:O exactly 1:2 with at least one Si (formal charges Si⁴⁺, O²⁻).
    """
    symbols = atoms.get_chemical_symbols()
    n_si, n_o = symbols.count("Si"), symbols.count("O")
    return {
        "n_atoms": len(symbols),
        "n_si": n_si,
        "n_o": n_o,
        "charge_balanced": n_si > 0 and n_o == 2 * n_si and n_si + n_o == len(symbols),
    }


def summarize_inverse(rows: pd.DataFrame) -> dict:
    """One inverse-design run (rows of one property, model and n_s) in one line.

    ``rows`` holds per sample: ``target`` (the property's target), ``value`` (its measured
    value, NaN when it could not be measured), ``converged``, ``reason``, ``charge_balanced``.
    A sample counts as failed when its value is not finite (relaxation did not converge or
    raised); the errors are taken over the others.
    """
    ok = np.isfinite(rows["value"].to_numpy(dtype=float))
    errors = inverse_errors(rows["target"].to_numpy(dtype=float)[ok], rows["value"].to_numpy(dtype=float)[ok])
    reasons = rows.loc[~ok, "reason"].fillna("").astype(str).map(lambda s: s or "no value")
    n = len(rows)
    return {
        **errors,
        "n_samples": n,
        "n_failed": int((~ok).sum()),
        "n_charge_balanced": int(rows["charge_balanced"].astype(bool).sum()),
        "charge_balanced_fraction": float(rows["charge_balanced"].astype(bool).mean()) if n else np.nan,
        "failure_reasons": "; ".join(f"{count}× {reason}" for reason, count in reasons.value_counts().items()),
    }


def read_timings(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Sampling sidecars (see ``mdshortcut.sweep``) as rows keyed by property, model, n_s."""
    rows = []
    for path in paths:
        t = json.loads(open(path).read())
        rows.append(
            {
                "property": t.get("property") or "",
                "model": t["model"],
                "n_s": int(t["n_steps"]),
                "device": t["device"],
                "seconds": float(t["seconds"]),
                "seconds_per_sample": float(t["seconds_per_sample"]),
                "seconds_per_10k": float(t["seconds_per_10k"]),
            }
        )
    return pd.DataFrame(rows, columns=["property", "model", "n_s", "device", "seconds", "seconds_per_sample", "seconds_per_10k"])


def write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV atomically, without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def inverse_summary(run_csvs: Iterable[str | os.PathLike], timings: Iterable[str | os.PathLike], out: str | os.PathLike) -> pd.DataFrame:
    """One row per inverse-design run: errors, failures, charge balance and generation time.

    run_csvs: per-sample evaluation CSVs (``evaluate_samples``); timings: the runs' sampling
    sidecars. Writes ``out`` (CSV) and returns the table.
    """
    lines = []
    for path in run_csvs:
        rows = pd.read_csv(path, keep_default_na=False, na_values=[""])
        if rows.empty:
            raise ValueError(f"{path}: no evaluated samples")
        key = {k: rows[k].iloc[0] for k in RUN_KEYS}
        lines.append({**key, **summarize_inverse(rows)})
    return _with_timings(pd.DataFrame(lines), timings, out)


def _with_timings(runs: pd.DataFrame, timings: Iterable[str | os.PathLike], out: str | os.PathLike) -> pd.DataFrame:
    """Join each run with its sampling sidecar (every run must have one), sort, write CSV."""
    joined = runs.merge(read_timings(timings), on=RUN_KEYS, how="left", validate="one_to_one")
    missing = joined[joined["seconds"].isna()]
    if len(missing):
        first = missing.iloc[0]
        raise ValueError(f"no sampling sidecar for run {first['model']} {first['property']} n_s={first['n_s']}")
    joined = joined.sort_values(RUN_KEYS, kind="stable").reset_index(drop=True)
    write_csv(out, joined)
    return joined


def structure_summary(runs: Iterable[str | os.PathLike], timings: Iterable[str | os.PathLike], out: str | os.PathLike) -> pd.DataFrame:
    """One row per unconditional run: rdf_rmsd, adf_rmsd, n_samples and generation time.

    runs: the runs' structure JSONs (``structure_run``); timings: their sampling sidecars.
    """
    lines = []
    for path in runs:
        r = json.loads(open(path).read())
        lines.append(
            {"property": "", "model": r["model"], "n_s": int(r["n_steps"]), "rdf_rmsd": r["rdf_rmsd"],
             "adf_rmsd": r["adf_rmsd"], "n_samples": r["n_samples"]}
        )
    return _with_timings(pd.DataFrame(lines), timings, out)


def merge_evaluations(shards: Sequence[str | os.PathLike], out: str | os.PathLike) -> int:
    """Concatenate the evaluated shards of a run in order into ``out``; returns the row count."""
    merged = pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in shards], ignore_index=True)
    write_csv(out, merged)
    return len(merged)
