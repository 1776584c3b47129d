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
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from mdshortcut.io import StructureError, atomic_path, read_structures, write_csv

# The measurements (LAMMPS; vesin, which loads torch) are imported where they are used, so
# that the summaries and merges (many small jobs) start quickly.

log = logging.getLogger(__name__)

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
    """Sampling sidecars (see ``mdshortcut.pipeline.sweep``) as rows keyed by property, model, n_s."""
    rows = []
    for path in paths:
        t = json.loads(Path(path).read_text())
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
    return pd.DataFrame(
        rows, columns=["property", "model", "n_s", "device", "seconds", "seconds_per_sample", "seconds_per_10k"]
    )


def inverse_summary(
    run_csvs: Iterable[str | os.PathLike], timings: Iterable[str | os.PathLike], out: str | os.PathLike
) -> pd.DataFrame:
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


def structure_summary(
    runs: Iterable[str | os.PathLike], timings: Iterable[str | os.PathLike], out: str | os.PathLike
) -> pd.DataFrame:
    """One row per unconditional run: rdf_rmsd, adf_rmsd, n_samples, n_empty, generation time.

    runs: the runs' structure JSONs (``structure_run``); timings: their sampling sidecars.
    """
    lines = []
    for path in runs:
        r = json.loads(Path(path).read_text())
        lines.append(
            {
                "property": "",
                "model": r["model"],
                "n_s": int(r["n_steps"]),
                "rdf_rmsd": r["rdf_rmsd"],
                "adf_rmsd": r["adf_rmsd"],
                "close_fraction": r["close_fraction"],
                "atoms_mean": r["atoms_mean"],
                "n_samples": r["n_samples"],
                "n_empty": r["n_empty"],
            }
        )
    return _with_timings(pd.DataFrame(lines), timings, out)


# ------------------------------------------------------------------ structural runs (a-Si)


def distributions(frames: Sequence[Atoms], cfg) -> dict:
    """Averaged RDF and ADF of the non-empty frames, with their bins and the empty count, the
    atoms per frame (mean, std; ghosts removed) and every atom's nearest-neighbour distance
    (Å, within cfg.rdf_rmax; ``nn_min`` is the smallest).

    cfg: ``mdshortcut.properties.structure.StructureConfig``.
    """
    from mdshortcut.properties.structure import adf_bins, average_rdf_adf, nearest_neighbour_distances, rdf_bins

    full = [a for a in frames if len(a)]
    rdf, adf = average_rdf_adf(full, cfg)
    nearest = np.concatenate([nearest_neighbour_distances(a, cfg.rdf_rmax) for a in full])
    counts = np.array([len(a) for a in frames], dtype=float)
    return {
        "n_samples": len(frames),
        "n_empty": len(frames) - len(full),
        "atoms_mean": float(counts.mean()),
        "atoms_std": float(counts.std()),
        "nn_min": float(nearest.min()),
        "nn": nearest,
        "r": rdf_bins(cfg.rdf_rmax, cfg.rdf_bins).tolist(),
        "rdf": rdf.tolist(),
        "theta": adf_bins(cfg.adf_bins).tolist(),
        "adf": adf.tolist(),
    }


def _write_json(path: str | os.PathLike, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data))


def write_reference(structures: str | os.PathLike, cfg, out: str | os.PathLike) -> dict:
    """RDF g(r) (bins r, Å) and ADF (per degree, bins theta, °) of a training set, averaged
    over structures (A.6), as JSON."""
    ref = distributions(read_structures(structures), cfg)
    del ref["nn"]
    _write_json(out, ref)
    log.info("reference: %d structures of %s", ref["n_samples"], structures)
    return ref


def run_metrics(frames: Sequence[Atoms], ref: Mapping, cfg) -> dict:
    """Averaged RDF and ADF of generated frames and their RMSD (Eq. 18) against the reference
    ``ref`` (``write_reference``'s dict), with ``close_fraction``: the share of generated atoms
    whose nearest neighbour is closer than the closest pair of the training set (``nn_min``), a
    physical-validity check that RDF averages blur; and the atoms per sample (mean, std).

    Generated structures without any atom (all ghosts) have no RDF: they are left out of the
    averages and counted in ``n_empty``. cfg: as for ``write_reference``.
    """
    from mdshortcut.properties.structure import rmsd

    run = distributions(frames, cfg)
    if len(run["rdf"]) != len(ref["rdf"]) or len(run["adf"]) != len(ref["adf"]):
        raise ValueError("reference: bins differ from the structure config (recompute the reference)")
    nearest = run.pop("nn")
    run.update(
        rdf_rmsd=rmsd(run["rdf"], ref["rdf"]),
        adf_rmsd=rmsd(run["adf"], ref["adf"]),
        close_fraction=float(np.mean(nearest < ref["nn_min"])) if len(nearest) else math.nan,
    )
    return run


def structure_run(
    samples: str | os.PathLike, reference: str | os.PathLike, model: str, n_steps: int, cfg, out: str | os.PathLike
) -> dict:
    """``run_metrics`` of one run's samples file against the reference JSON, as JSON."""
    ref = json.loads(Path(reference).read_text())
    run = {**run_metrics(read_structures(samples), ref, cfg), "model": model, "n_steps": n_steps}
    _write_json(out, run)
    log.info(
        "%s n_s=%d: %d samples (%d empty), RDF RMSD %.5f, ADF RMSD %.6f, close %.3f",
        model,
        n_steps,
        run["n_samples"],
        run["n_empty"],
        run["rdf_rmsd"],
        run["adf_rmsd"],
        run["close_fraction"],
    )
    return run


# ---------------------------------------------------------------- inverse design (a-SiO2)


def evaluate_structure(atoms: Atoms, potential: str, cfg) -> dict:
    """Properties of one generated structure, measured like the training labels
    (``mdshortcut.properties.labels.label_structure``, cfg its ``PropertiesConfig``).

    Generated atoms may start closer than any bond: the relaxation decides, as for the
    paper's samples; a failed relaxation is a recorded failure, and so is an empty structure.
    """
    from mdshortcut.properties.catalogue import PROPERTIES
    from mdshortcut.properties.labels import label_structure

    if len(atoms) == 0:
        return {**{p: math.nan for p in PROPERTIES}, "converged": False, "reason": "no atoms (every atom a ghost)"}
    return label_structure(atoms, potential, cfg)


def evaluate_shard(samples: str | os.PathLike, shard: int, potential: str, cfg, out: str | os.PathLike) -> pd.DataFrame:
    """Evaluate samples [shard·S, (shard+1)·S) of a run (S = cfg.structures_per_shard).

    Each frame's info gives model, n_steps, sample, target_property and target_value
    (``mdshortcut.pipeline.sweep``); cfg: ``PropertiesConfig``. Writes one row per sample to ``out``
    (CSV): sample, property, model, n_s, target, value (the targeted property as measured, NaN
    when it failed), the composition, every property of the labels, converged, reason.
    """
    from mdshortcut.md.potentials import get_potential
    from mdshortcut.properties.catalogue import PROPERTIES

    frames = read_structures(samples, get_potential(potential).elements)
    start = shard * cfg.structures_per_shard
    rows = []
    for atoms in frames[start : start + cfg.structures_per_shard]:
        info = atoms.info
        try:
            prop, target = info["target_property"], float(info["target_value"])
            key = {"sample": int(info["sample"]), "property": prop, "model": info["model"], "n_s": int(info["n_steps"])}
        except KeyError as exc:
            raise StructureError(f"{samples} frame {start + len(rows)}: no {exc.args[0]} in the frame's info") from None
        measured = evaluate_structure(atoms, potential, cfg)
        rows.append({**key, "target": target, "value": measured[prop], **composition(atoms), **measured})
        log.info(
            "sample %d: target %s %.4g, measured %.4g, %s",
            key["sample"],
            prop,
            target,
            measured[prop],
            measured["reason"] or "converged",
        )
    columns = [
        "sample",
        "property",
        "model",
        "n_s",
        "target",
        "value",
        "n_atoms",
        "n_si",
        "n_o",
        "charge_balanced",
        *PROPERTIES,
        "converged",
        "reason",
    ]
    table = pd.DataFrame(rows, columns=columns)
    write_csv(out, table)
    return table
