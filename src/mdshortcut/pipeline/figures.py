"""The paper's figures 2–6 (PNG), after the paper's (§3.3, §3.4, appendix A.1), and the recipe ablation's;
every axis names its unit. Beside each PNG, a CSV of the data drawn in it, read back from the figure
(``plotted``). Figures 5 and 6 share one time axis (``TIME_AXIS``), each point filled with its n_s's
colour; no text is below matplotlib's default size (10 pt).

Figures are ``matplotlib.figure.Figure`` objects drawn on the Agg canvas that ``savefig`` picks for
PNG: no pyplot, so importing this module selects no backend and keeps no global figure state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from mdshortcut.generative import PROCESSES
from mdshortcut.io import atomic_path, write_csv
from mdshortcut.pipeline.tables import (
    MODEL_NAMES,
    PROCESS_NAMES,
    TABLE2_MODELS,
    process_of,
    table2_model,
)
from mdshortcut.properties.catalogue import PROPERTIES

TIME_AXIS = "generation time per 10,000 samples (s)"  # figures 5 and 6


def _subplots(nrows: int, ncols: int, figsize: tuple[float, float], **kwargs):
    """A constrained-layout figure (size in inches) and its grid of axes."""
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def plotted(fig: Figure) -> pd.DataFrame:
    """The data drawn in ``fig``, one row per point: panel (axes index), title, series (the
    artist's label), x, y. Lines give their vertices, scatters their points, histograms each
    bar's centre and height; points that are not drawn (NaN) are left out."""
    rows = []
    for panel, ax in enumerate(fig.axes):
        series = [(line.get_label(), line.get_xydata()) for line in ax.lines]
        series += [(c.get_label(), c.get_offsets()) for c in ax.collections if len(c.get_offsets())]
        for bars in ax.containers:  # ax.hist labels its first bar, ax.bar the container
            label = bars.get_label() if not bars.get_label().startswith("_") else bars[0].get_label()
            series.append((label, [(b.get_x() + b.get_width() / 2, b.get_height()) for b in bars]))
        for label, points in series:
            xy = np.ma.filled(np.ma.asarray(points, dtype=float), np.nan).reshape(-1, 2)
            rows += [(panel, ax.get_title(), label, x, y) for x, y in xy[np.isfinite(xy).all(axis=1)].tolist()]
    return pd.DataFrame(rows, columns=["panel", "title", "series", "x", "y"])


def _save(fig: Figure, out: str | os.PathLike) -> None:
    """The PNG ``out`` and the CSV of its data beside it (``plotted``), both atomically."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    write_csv(Path(out).with_suffix(".csv"), plotted(fig))


def _n_s_colors(values: Iterable[int]) -> dict[int, tuple]:
    """A colour per n_s, light (few steps) to dark (many steps)."""
    values = sorted(set(int(v) for v in values))
    cmap = matplotlib.colormaps["plasma_r"]
    return {v: cmap(0.15 + 0.8 * i / max(len(values) - 1, 1)) for i, v in enumerate(values)}


def fig2_distributions(reference: Mapping, runs: Sequence[Mapping], out: str | os.PathLike) -> None:
    """RDF (top) and ADF (bottom) of every run, one column per model, against the training set.

    reference, runs: dicts with r (Å), rdf, theta (degrees), adf (per degree); runs also
    model and n_steps.
    """
    models = [m for p in PROCESSES for m in sorted({r["model"] for r in runs}) if process_of(m) == p]
    colors = _n_s_colors(r["n_steps"] for r in runs)
    fig, axes = _subplots(2, len(models), (4.6 * len(models), 7.2), squeeze=False, sharey="row")
    for col, model in enumerate(models):
        for row, (x, y, xlabel, ylabel) in enumerate(
            [("r", "rdf", "distance r (Å)", "RDF g(r)"), ("theta", "adf", "bond angle θ (°)", "ADF P(θ) (1/°)")]
        ):
            ax = axes[row, col]
            for run in sorted((r for r in runs if r["model"] == model), key=lambda r: r["n_steps"]):
                ax.plot(run[x], run[y], color=colors[run["n_steps"]], lw=1.2, label=f"n_s = {run['n_steps']}")
            ax.plot(reference[x], reference[y], color="k", ls="--", lw=1.6, label="training set")
            ax.set_xlabel(xlabel)
            if col == 0:
                ax.set_ylabel(ylabel)
            ax.set_title(f"{PROCESS_NAMES[process_of(model)]}: {y.upper()}")
            ax.grid(alpha=0.3)
    axes[0, -1].legend(loc="upper right")
    fig.suptitle("a-Si: radial and angular distribution functions of generated vs training structures")
    _save(fig, out)


def fig3_property_distributions(training: pd.DataFrame, generated: pd.DataFrame, out: str | os.PathLike) -> None:
    """Histograms of each targeted property: training labels vs generated samples.

    training: one column per property (labels of the training set); generated: evaluation rows
    of one model and n_s (columns property, target, value, model, n_s).
    """
    props = [p for p in PROPERTIES if p in set(generated["property"])]
    fig, axes = _subplots(1, len(props), (5.5 * len(props), 4.4), squeeze=False)
    for ax, prop in zip(axes[0], props):
        rows = generated[generated["property"] == prop]
        gen = rows["value"].to_numpy(dtype=float)
        train = training[prop].to_numpy(dtype=float)
        finite_gen, finite_train = gen[np.isfinite(gen)], train[np.isfinite(train)]
        both = np.concatenate([finite_gen, finite_train, rows["target"].to_numpy(dtype=float)])
        bins = np.linspace(both.min(), both.max(), 30) if both.size and np.ptp(both) > 0 else 10
        ax.hist(
            finite_train, bins=bins, density=True, alpha=0.55, color="tab:gray", label=f"training ({finite_train.size})"
        )
        ax.hist(
            finite_gen, bins=bins, density=True, alpha=0.55, color="tab:red", label=f"generated ({finite_gen.size})"
        )
        ax.axvspan(rows["target"].min(), rows["target"].max(), color="tab:blue", alpha=0.12, label="target range")
        failed = int((~np.isfinite(gen)).sum())
        model, n_s = MODEL_NAMES[table2_model(rows["model"].iloc[0], prop)], rows["n_s"].iloc[0]
        ax.set_title(
            f"{PROPERTIES[prop].title.split(' [')[0]}\n{model}, n_s = {n_s}" + (f", {failed} failed" if failed else "")
        )
        ax.set_xlabel(PROPERTIES[prop].axis)
        ax.set_ylabel("probability density")
        ax.legend()
    fig.suptitle("a-SiO2: property distributions of training vs generated structures")
    _save(fig, out)


def fig4_target_scatter(rows: pd.DataFrame, out: str | os.PathLike) -> None:
    """Target vs measured property per model (columns) and property (rows), coloured by n_s.

    rows: evaluation rows of every run (columns property, model, n_s, target, value).
    """
    rows = rows.assign(column=[table2_model(m, p) for m, p in zip(rows["model"], rows["property"])])
    props = [p for p in PROPERTIES if p in set(rows["property"])]
    models = [m for m in TABLE2_MODELS if m in set(rows["column"])]
    colors = _n_s_colors(rows["n_s"])
    fig, axes = _subplots(len(props), len(models), (3.6 * len(models), 3.7 * len(props)), squeeze=False)
    for i, prop in enumerate(props):
        sub = rows[rows["property"] == prop]
        lo, hi = (
            np.nanmin(sub[["target", "value"]].to_numpy(dtype=float)),
            np.nanmax(sub[["target", "value"]].to_numpy(dtype=float)),
        )
        for j, model in enumerate(models):
            ax = axes[i, j]
            run = sub[sub["column"] == model]
            for n_s, g in run.groupby("n_s"):
                ax.scatter(g["target"], g["value"], s=10, color=colors[n_s], label=f"n_s = {n_s}")
            ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--")
            ax.set_title(MODEL_NAMES[model])
            ax.set_xlabel("target " + PROPERTIES[prop].axis)
            ax.set_ylabel("generated " + PROPERTIES[prop].axis)
            ax.grid(alpha=0.3)
    fig.suptitle("a-SiO2 inverse design: target vs measured property of generated structures (dashed: ideal)")
    _n_s_legend(fig, colors)
    _save(fig, out)


def _time_panel(ax, frame: pd.DataFrame, series: Sequence[str], metric: str, colors: Mapping[int, tuple]) -> None:
    """``metric`` of each series against ``TIME_AXIS`` (log, plain numbers at 1-3-10 steps): a
    line and hollow marker per series, each point filled with its n_s's colour (``colors``; text
    labels overlapped where noisy timings put two n_s at one time, and an n_s axis cannot sit
    under points whose times differ between series)."""
    markers = dict(zip(TABLE2_MODELS + list(PROCESSES), "osD^v<>ph"))
    for name in series:
        run = frame[frame["model"] == name].sort_values("n_s")
        marker = markers.get(name, "o")
        line = ax.plot(
            run["seconds_per_10k"], run[metric], marker=marker, ms=10, mfc="none", mew=1.5, label=MODEL_NAMES[name]
        )[0]
        for n_s, point in run.groupby("n_s"):
            ax.scatter(
                point["seconds_per_10k"],
                point[metric],
                s=55,
                marker=marker,
                color=colors[int(n_s)],
                edgecolors="none",
                zorder=line.get_zorder() + 0.1,
                label=f"n_s = {n_s}",
            )
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}" if x >= 1 else f"{x:.2g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(TIME_AXIS)
    ax.grid(alpha=0.3, which="both")
    ax.legend(handles=ax.lines)


def _n_s_legend(fig: Figure, colors: Mapping[int, tuple], title: str | None = None) -> None:
    """One legend entry per n_s (``_n_s_colors``), below the panels."""
    handles = [Line2D([], [], marker="o", ls="", color=c, label=f"n_s = {n}") for n, c in colors.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), title=title)


def fig5_rmsd_vs_time(t1: pd.DataFrame, out: str | os.PathLike) -> None:
    """RMSD of the RDF and ADF against generation time per 10,000 samples (point fill: n_s)."""
    models = [p for p in PROCESSES if p in set(t1["model"])]
    colors = _n_s_colors(t1["n_s"])
    fig, axes = _subplots(1, 2, (11, 5.2))
    for ax, metric, label in zip(axes, ["rdf_rmsd", "adf_rmsd"], ["RDF RMSD (dimensionless)", "ADF RMSD (1/°)"]):
        _time_panel(ax, t1, models, metric, colors)
        ax.set_ylabel(label)
    fig.suptitle("a-Si: structural error vs generation time")
    _n_s_legend(fig, colors, "sampling steps (point fill)")
    _save(fig, out)


def fig6_mape_vs_time(summary: pd.DataFrame, out: str | os.PathLike) -> None:
    """MAPE per property against the generation time per 10,000 samples (as figure 5)."""
    s = summary.assign(model=[table2_model(m, p) for m, p in zip(summary["model"], summary["property"])])
    props = [p for p in PROPERTIES if p in set(s["property"])]
    colors = _n_s_colors(s["n_s"])
    fig, axes = _subplots(1, len(props), (6.5 * len(props), 5.6), squeeze=False)
    for ax, prop in zip(axes[0], props):
        sub = s[s["property"] == prop]
        _time_panel(ax, sub, [m for m in TABLE2_MODELS if m in set(sub["model"])], "mape_percent", colors)
        ax.set_ylabel("MAPE (%)")
        ax.set_title(PROPERTIES[prop].title)
    fig.suptitle("a-SiO2: inverse-design error vs generation time")
    _n_s_legend(fig, colors, "sampling steps (point fill)")
    _save(fig, out)


# ------------------------------------------------------------------------- file-level entry points


def _read_json(path: str | os.PathLike) -> dict:
    with open(path) as f:
        return json.load(f)


def _read_csvs(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in paths])


# figure -> how it is drawn from its input files by role (the figure rule's named inputs)
FIGURES = {
    "fig2": lambda i, out: fig2_distributions(_read_json(i["reference"]), [_read_json(p) for p in i["runs"]], out),
    "fig3": lambda i, out: fig3_property_distributions(pd.read_csv(i["labels"]), _read_csvs(i["runs"]), out),
    "fig4": lambda i, out: fig4_target_scatter(_read_csvs(i["runs"]), out),
    "fig5": lambda i, out: fig5_rmsd_vs_time(pd.read_csv(i["table"]), out),
    "fig6": lambda i, out: fig6_mape_vs_time(pd.read_csv(i["summary"]), out),
}


def write_figure(name: str, inputs: Mapping, out: str | os.PathLike) -> None:
    """Figure ``name`` (a key of ``FIGURES``) from its input files by role (``reference``,
    ``runs``, ``labels``, ``table``, ``summary``) to the PNG ``out`` (and its data CSV beside it)."""
    FIGURES[name](inputs, out)


def ablation_figure(table: pd.DataFrame, out: str | os.PathLike) -> None:
    """RDF RMSD against n_s through the shortcut levels, one line per recipe variant
    (``mdshortcut.pipeline.ablation``), and each variant's flow (its instantaneous level in
    ``flow_steps`` Euler steps) as a dashed level of the same colour."""
    fig, ax = _subplots(1, 1, (7.5, 4.8))
    for k, (variant, rows) in enumerate(table.groupby("variant", sort=False)):
        short = rows[rows["sampler"] == "shortcut"].sort_values("n_s")
        ax.plot(short["n_s"], short["rdf_rmsd"], "o-", color=f"C{k}", label=variant)
        for _, flow in rows[rows["sampler"] == "flow"].iterrows():
            ax.axhline(flow["rdf_rmsd"], color=f"C{k}", ls="--", lw=1, label=f"{variant} flow, {flow['n_s']} steps")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sampling steps n_s through the shortcut levels")
    ax.set_ylabel("RDF RMSD (dimensionless)")
    ax.set_title("MDShortcut recipe ablation, equal training CPU time (dashed: each network's flow)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncol=2)
    _save(fig, out)


def architecture_figure(table: pd.DataFrame, out: str | os.PathLike) -> None:
    """RDF RMSD against n_s, one panel per process, one line per denoiser variant
    (``mdshortcut.pipeline.architecture``), at equal training CPU time."""
    processes = list(dict.fromkeys(table["process"]))
    fig, axes = _subplots(1, len(processes), (5.5 * len(processes), 4.5))
    for ax, process in zip(np.atleast_1d(axes), processes):
        for k, (variant, rows) in enumerate(table[table["process"] == process].groupby("variant", sort=False)):
            rows = rows.sort_values("n_s")
            ax.plot(rows["n_s"], rows["rdf_rmsd"], "o-", color=f"C{k}", label=variant)
        ax.set_xscale("log")
        ax.set_xlabel("sampling steps n_s")
        ax.set_ylabel("RDF RMSD (dimensionless)")
        ax.set_title(f"{process}: denoiser variants, equal training CPU time")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    _save(fig, out)
