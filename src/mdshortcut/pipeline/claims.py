"""The paper's four claims, checked on a run's Table 1 and Table 2 (paper §3.3–3.4).

Each check is a fixed rule written down before any run, applied as stated; a claim whose
runs are missing from the tables is reported as not evaluable (``holds`` empty), never as
holding. The rules:

1. *MDShortcut at n_s = 1 has a far lower RDF RMSD than ODE and SDE at n_s = 1*: the
   MDShortcut RDF RMSD is at most half the lower of the two (the paper: 0.025 against 0.68).
2. *MDShortcut at n_s ≤ 5 reaches the RDF (ADF) RMSD of ODE/SDE at n_s = 250 at ≤ 3 % of
   their time*: at the smallest n_s ≤ 5 where MDShortcut's RMSD is no higher than both
   baselines' at n_s = 250, its generation time is at most 3 % of each baseline's there.
   One row per metric.
3. *On a-SiO2, MDShortcut (All) at n_s = 10 has a MAPE no worse than the best baseline at
   n_s = 250*: per property, against the lowest MAPE of ODE/SDE (All)/(Target) at n_s = 250.
4. *The (All) model conditioned on one property is no worse than the (Target) model trained
   for it*: per process (ODE, SDE) and property, the (All) model's MAPE averaged over the
   n_s grid is no higher than the (Target) model's (how many n_s it wins is reported too).

Table 2's errors are over the samples whose property could be measured; the evidence names
the failed samples of every run it cites.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from mdshortcut.generative import PROCESSES, ShortcutBase
from mdshortcut.io import atomic_path, write_csv

FAR_LOWER = 0.5  # claim 1: at most this fraction of the better baseline's RDF RMSD
TIME_SHARE = 0.03  # claim 2: at most this fraction of a baseline's time at n_s = 250
FEW_STEPS, MANY_STEPS, SHORTCUT_DESIGN_STEPS = 5, 250, 10
BASELINES = tuple(name for name, process in PROCESSES.items() if issubclass(process, ShortcutBase))
CLAIM_COLUMNS = ["claim", "part", "holds", "value", "reference", "ratio", "evidence"]


def _row(claim: int, part: str, holds, value=np.nan, reference=np.nan, evidence: str = "") -> dict:
    ratio = value / reference if np.isfinite(value) and np.isfinite(reference) and reference != 0 else np.nan
    return {
        "claim": claim,
        "part": part,
        "holds": holds,
        "value": value,
        "reference": reference,
        "ratio": ratio,
        "evidence": evidence,
    }


def _at(table: pd.DataFrame, **where) -> pd.Series | None:
    """The one row of ``table`` matching ``where`` (None when absent)."""
    mask = np.ones(len(table), dtype=bool)
    for key, value in where.items():
        mask &= (table[key] == value).to_numpy()
    rows = table[mask]
    return None if rows.empty else rows.iloc[0]


def structural_claims(table1: pd.DataFrame) -> list[dict]:
    """Claims 1 and 2 from Table 1 (model, n_s, rdf_rmsd, adf_rmsd, seconds_per_10k)."""
    rows = []
    sc1 = _at(table1, model="shortcut", n_s=1)
    base1 = [_at(table1, model=m, n_s=1) for m in BASELINES]
    if sc1 is None or any(b is None for b in base1):
        rows.append(_row(1, "rdf", None, evidence="n_s = 1 missing for a model"))
    else:
        best = min(float(b["rdf_rmsd"]) for b in base1)
        ratio = float(sc1["rdf_rmsd"]) / best
        rows.append(
            _row(
                1,
                "rdf",
                bool(ratio <= FAR_LOWER),
                float(sc1["rdf_rmsd"]),
                best,
                f"RDF RMSD at n_s = 1: MDShortcut {sc1['rdf_rmsd']:.4f}, ODE {base1[0]['rdf_rmsd']:.4f}, "
                f"SDE {base1[1]['rdf_rmsd']:.4f}; MDShortcut / better baseline = {ratio:.3f} "
                f"(rule: <= {FAR_LOWER:g})",
            )
        )
    base = {m: _at(table1, model=m, n_s=MANY_STEPS) for m in BASELINES}
    few = table1[(table1["model"] == "shortcut") & (table1["n_s"] <= FEW_STEPS)].sort_values("n_s")
    for metric in ("rdf", "adf"):
        col = f"{metric}_rmsd"
        if any(b is None for b in base.values()) or few.empty:
            rows.append(_row(2, metric, None, evidence=f"n_s = {MANY_STEPS} or n_s <= {FEW_STEPS} missing"))
            continue
        target = min(float(b[col]) for b in base.values())
        baselines = ", ".join(f"{m.upper()} {b[col]:.5f}" for m, b in base.items())
        reached = few[few[col] <= target]
        if reached.empty:
            best = few.loc[few[col].idxmin()]
            rows.append(
                _row(
                    2,
                    metric,
                    False,
                    float(best[col]),
                    target,
                    f"{metric.upper()} RMSD at n_s = {MANY_STEPS}: {baselines}; MDShortcut's best at n_s <= "
                    f"{FEW_STEPS} is {best[col]:.5f} (n_s = {best['n_s']}), not reached",
                )
            )
            continue
        hit = reached.iloc[0]
        shares = {m: float(hit["seconds_per_10k"]) / float(b["seconds_per_10k"]) for m, b in base.items()}
        holds = all(s <= TIME_SHARE for s in shares.values())
        time = ", ".join(f"{100 * s:.2f}% of {m.upper()}'s" for m, s in shares.items())
        rows.append(
            _row(
                2,
                metric,
                holds,
                float(hit[col]),
                target,
                f"{metric.upper()} RMSD at n_s = {MANY_STEPS}: {baselines}; MDShortcut reaches it at n_s = "
                f"{hit['n_s']} ({hit[col]:.5f}) in {time} time (rule: <= {100 * TIME_SHARE:g}%)",
            )
        )
    return rows


def _failed(row: pd.Series) -> str:
    return f" ({row['n_failed']}/{row['n_samples']} failed)" if row["n_failed"] else ""


def inverse_design_claims(table2: pd.DataFrame) -> list[dict]:
    """Claims 3 and 4 from Table 2 (property, model, n_s, mape_percent, n_samples, n_failed)."""
    rows = []
    for prop in dict.fromkeys(table2["property"]):
        t = table2[table2["property"] == prop]
        sc = _at(t, model="shortcut-all", n_s=SHORTCUT_DESIGN_STEPS)
        base = t[(t["n_s"] == MANY_STEPS) & (t["model"] != "shortcut-all")].dropna(subset=["mape_percent"])
        if sc is None or base.empty or not np.isfinite(sc["mape_percent"]):
            rows.append(_row(3, prop, None, evidence=f"n_s = {SHORTCUT_DESIGN_STEPS} or {MANY_STEPS} missing"))
        else:
            best = base.loc[base["mape_percent"].idxmin()]
            rows.append(
                _row(
                    3,
                    prop,
                    bool(sc["mape_percent"] <= best["mape_percent"]),
                    float(sc["mape_percent"]),
                    float(best["mape_percent"]),
                    f"MAPE: MDShortcut (All) n_s = {SHORTCUT_DESIGN_STEPS} "
                    f"{sc['mape_percent']:.1f}%{_failed(sc)}; "
                    f"best baseline at n_s = {MANY_STEPS} {best['model']} {best['mape_percent']:.1f}%"
                    f"{_failed(best)}",
                )
            )
        for process in BASELINES:
            pair = {c: t[t["model"] == f"{process}-{c}"].set_index("n_s")["mape_percent"] for c in ("all", "target")}
            grid = pair["all"].index.intersection(pair["target"].index)
            grid = [n for n in grid if np.isfinite(pair["all"][n]) and np.isfinite(pair["target"][n])]
            part = f"{process}/{prop}"
            if not grid:
                rows.append(_row(4, part, None, evidence=f"{process} (All) or (Target) missing"))
                continue
            mean_all, mean_target = (float(pair[c][grid].mean()) for c in ("all", "target"))
            wins = sum(pair["all"][n] <= pair["target"][n] for n in grid)
            rows.append(
                _row(
                    4,
                    part,
                    bool(mean_all <= mean_target),
                    mean_all,
                    mean_target,
                    f"mean MAPE over n_s {list(map(int, grid))}: {process.upper()} (All) {mean_all:.1f}%, "
                    f"(Target) {mean_target:.1f}%; (All) no worse at {wins} of {len(grid)} n_s",
                )
            )
    return rows


def check_claims(table1: pd.DataFrame | None, table2: pd.DataFrame | None) -> pd.DataFrame:
    """All claims the given tables allow (a missing table: its claims are left out), in
    claim order."""
    rows = (structural_claims(table1) if table1 is not None else []) + (
        inverse_design_claims(table2) if table2 is not None else []
    )
    return pd.DataFrame(sorted(rows, key=lambda r: r["claim"]), columns=CLAIM_COLUMNS)


STATEMENTS = {
    1: "MDShortcut at n_s = 1 has a far lower RDF RMSD than ODE and SDE at n_s = 1",
    2: f"MDShortcut at n_s <= {FEW_STEPS} reaches the RDF/ADF RMSD of ODE/SDE at n_s = {MANY_STEPS} "
    f"at <= {100 * TIME_SHARE:g}% of their time",
    3: f"MDShortcut (All) at n_s = {SHORTCUT_DESIGN_STEPS} has a MAPE no worse than the best baseline at "
    f"n_s = {MANY_STEPS}",
    4: "the (All) model conditioned on one property is no worse than the (Target) model trained for it",
}


def claims_markdown(claims: pd.DataFrame) -> str:
    """The checks as a Markdown table: claim, part, verdict, evidence."""
    verdict = {True: "holds", False: "fails"}
    lines = ["# The paper's claims on this run", "", "| claim | part | verdict | evidence |", "|---|---|---|---|"]
    for r in claims.itertuples():
        holds = verdict.get(r.holds if isinstance(r.holds, bool) else None, "not evaluable")
        lines.append(f"| {r.claim}. {STATEMENTS[r.claim]} | {r.part} | **{holds}** | {r.evidence} |")
    lines += [
        "",
        "The rules of each check are in `mdshortcut.pipeline.claims`; they were written before the default run's "
        "results were seen.",
        "",
    ]
    return "\n".join(lines)


def write_claims(
    table1: str | os.PathLike | None, table2: str | os.PathLike | None, csv: str | os.PathLike, md: str | os.PathLike
) -> pd.DataFrame:
    """Check the claims on Table 1 / Table 2 CSV files (None: absent) and write CSV + Markdown."""
    claims = check_claims(*(pd.read_csv(t) if t is not None else None for t in (table1, table2)))
    write_csv(csv, claims)
    with atomic_path(md) as tmp:
        tmp.write_text(claims_markdown(claims))
    return claims
