"""Tables (long form + paper-like Markdown) and figures from small hand-made summaries."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text
from PIL import Image

from conftest import REPO
from mdshortcut.pipeline import figures, tables

N_S = [1, 5, 10]


def _structure_summary():
    rows = []
    for k, model in enumerate(["shortcut-none", "ode-none", "sde-none"]):  # not in table order
        for n_s in N_S:
            rows.append(
                {
                    "property": "",
                    "model": model,
                    "n_s": n_s,
                    "rdf_rmsd": 0.1 * (k + 1) / n_s,
                    "adf_rmsd": 1e-3 * (3 - k),
                    "close_fraction": 0.01 * k,
                    "atoms_mean": 64.0,
                    "n_samples": 8,
                    "n_empty": int(k == 1 and n_s == 1),
                    "seconds": 2.0 * n_s,
                    "seconds_per_10k": 2500.0 * n_s,
                }
            )
    return pd.DataFrame(rows)


def _inverse_summary():
    rows = []
    for prop in ["ring_size", "shear_modulus"]:
        for k, model in enumerate(["shortcut-all", "ode-all", f"ode-{prop}", "sde-all", f"sde-{prop}"]):
            for n_s in N_S:
                rows.append(
                    {
                        "property": prop,
                        "model": model,
                        "n_s": n_s,
                        "mae": 1.0 + k,
                        "rmse": 2.0 + k,
                        "mape_percent": 10.0 + k,
                        "n_samples": 4,
                        "n_failed": int(n_s == 1),
                        "charge_balanced_fraction": 0.25,
                        "seconds": 1.0 * n_s,
                        "seconds_per_sample": 0.25 * n_s,
                        "seconds_per_10k": 2500.0 * n_s,
                    }
                )
    return pd.DataFrame(rows)


def test_table1_long_form_order_and_names():
    t1 = tables.table1(_structure_summary())
    assert list(t1.columns) == [
        "model",
        "n_s",
        "rdf_rmsd",
        "adf_rmsd",
        "close_fraction",
        "atoms_mean",
        "seconds_per_10k",
    ]
    assert list(t1["model"]) == ["ode"] * 3 + ["sde"] * 3 + ["shortcut"] * 3
    assert list(t1["n_s"]) == N_S * 3


def test_table1_markdown_bolds_best_per_metric_and_row():
    summary = _structure_summary()
    md = tables.table1_markdown(tables.table1(summary), summary)
    row = next(line for line in md.splitlines() if line.startswith("| 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "1"
    # header order: ODE, SDE, MDShortcut; lowest RDF RMSD is MDShortcut's (0.1), lowest ADF SDE's
    # (1e-3, shown × 10³ as in the README)
    assert cells[3].startswith("**0.100** / 3.00") and "**" not in cells[1]
    assert cells[2] == "0.300 / **1.00** (41.67m)"
    assert "Cell: RDF RMSD / ADF RMSD × 10³ (generation time per 10,000 samples)" in md
    assert "(41.67m)" in cells[1]  # 2500 s per 10k samples
    assert "| n_s | Material ODE | Material SDE | MDShortcut |" in md
    assert "left out of the averages: Material ODE n_s = 1: 1/8." in md


def test_table2_maps_target_models_and_orders():
    t2 = tables.table2(_inverse_summary())
    assert list(t2.columns) == ["property", "model", "n_s", "mae", "rmse", "mape_percent", "n_samples", "n_failed"]
    assert list(dict.fromkeys(t2["property"])) == ["shear_modulus", "ring_size"]
    assert list(dict.fromkeys(t2["model"])) == ["ode-all", "ode-target", "sde-all", "sde-target", "shortcut-all"]
    assert len(t2) == 2 * 5 * len(N_S)


def test_table2_markdown_failures_bold_and_charge_balance():
    summary = _inverse_summary()
    md = tables.table2_markdown(tables.table2(summary), summary)
    assert "## Shear modulus [GPa]" in md and "## Charge balance" in md
    row = next(line for line in md.splitlines() if line.startswith("| 1 |"))
    assert "(1/4 failed)" in row
    # shortcut-all has the lowest errors (k = 0): the last column is bold in all three metrics
    assert row.rstrip(" |").endswith("**1.00** / **2.00** / **10.0%** (1/4 failed)")
    assert "25%" in md


def test_table2_model_rejects_a_model_not_conditioned_on_the_target():
    assert tables.table2_model("sde-ring_size", "ring_size") == "sde-target"
    with pytest.raises(ValueError, match="cannot target shear_modulus"):
        tables.table2_model("sde-ring_size", "shear_modulus")


@pytest.mark.parametrize("seconds, text", [(42.0, "42.0s"), (105.6, "1.76m"), (12168.0, "3.38h"), (np.nan, "n/a")])
def test_format_duration(seconds, text):
    assert tables.format_duration(seconds) == text


def _eval_rows(rng):
    frames = []
    for prop, (lo, hi) in {"shear_modulus": (10, 50), "ring_size": (4, 6)}.items():
        for model in ["ode-all", f"ode-{prop}", "shortcut-all"]:
            for n_s in N_S:
                t = np.linspace(lo, hi, 6)
                v = t + rng.normal(0, 1, 6)
                v[0] = np.nan
                frames.append(pd.DataFrame({"property": prop, "model": model, "n_s": n_s, "target": t, "value": v}))
    return pd.concat(frames)


def _is_png(path, min_size=(400, 250)):
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
        # not blank: many distinct colours
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20)) > 20


def _data(path) -> pd.DataFrame:
    """The data a figure drew, from the CSV written beside its PNG."""
    _is_png(path)
    return pd.read_csv(path.with_suffix(".csv"), keep_default_na=False)


def test_figures_draw_their_tables(tmp_path):
    """Each figure is a real PNG, and the data drawn in it (read back from the figure into the
    CSV beside it) is its input's: curves, points, bar heights and times."""
    rng = np.random.default_rng(0)
    r, th = np.linspace(0.025, 4.975, 100), np.arange(180) + 0.5
    ref = {
        "r": r,
        "rdf": 1 + np.exp(-((r - 2.35) ** 2) / 0.02),
        "theta": th,
        "adf": np.exp(-((th - 109) ** 2) / 200) / 25,
    }
    runs = [
        {**ref, "rdf": ref["rdf"] * (1 + 0.01 * n), "model": m, "n_steps": n}
        for m in ["ode-none", "shortcut-none"]
        for n in N_S
    ]
    figures.fig2_distributions(ref, runs, tmp_path / "fig2.png")
    data = _data(tmp_path / "fig2.png")
    for run in runs:
        title = f"{tables.PROCESS_NAMES[tables.process_of(run['model'])]}: RDF"
        curve = data[(data["title"] == title) & (data["series"] == f"n_s = {run['n_steps']}")]
        assert np.allclose(curve["x"], run["r"]) and np.allclose(curve["y"], run["rdf"])

    rows = _eval_rows(rng)
    training = pd.DataFrame({"shear_modulus": rng.normal(30, 5, 50), "ring_size": rng.normal(5.5, 0.3, 50)})
    one_run = rows[(rows["model"] == "shortcut-all") & (rows["n_s"] == 10)]
    figures.fig3_property_distributions(training, one_run, tmp_path / "fig3.png")
    data = _data(tmp_path / "fig3.png")
    for panel, prop in enumerate(["shear_modulus", "ring_size"]):
        gen = one_run.loc[one_run["property"] == prop, "value"].dropna().to_numpy()
        bars = data[(data["panel"] == panel) & (data["series"] == f"generated ({gen.size})")]
        edges = np.concatenate([[2 * bars["x"].iloc[0] - bars["x"].iloc[1]], bars["x"]]) + np.diff(bars["x"])[0] / 2
        heights, _ = np.histogram(gen, bins=np.linspace(edges[0], edges[-1], len(bars) + 1), density=True)
        assert np.allclose(bars["y"], heights)

    figures.fig4_target_scatter(rows, tmp_path / "fig4.png")
    points = _data(tmp_path / "fig4.png").query("series.str.startswith('n_s')")
    finite = rows.dropna(subset=["value"])
    assert len(points) == len(finite)
    drawn = np.array(sorted(zip(points["x"], points["y"])))
    assert np.allclose(drawn, np.array(sorted(zip(finite["target"], finite["value"]))))

    t1 = tables.table1(_structure_summary())
    figures.fig5_rmsd_vs_time(t1, tmp_path / "fig5.png")
    data = _data(tmp_path / "fig5.png")
    for panel, metric in enumerate(["rdf_rmsd", "adf_rmsd"]):
        for model in tables.PROCESSES:
            drawn = data[(data["panel"] == panel) & (data["series"] == tables.PROCESS_NAMES[model])]
            table = t1[t1["model"] == model].sort_values("n_s")
            assert list(drawn["x"]) == list(table["seconds_per_10k"]) and np.allclose(drawn["y"], table[metric])

    summary = _inverse_summary()
    figures.fig6_mape_vs_time(summary, tmp_path / "fig6.png")
    data = _data(tmp_path / "fig6.png")
    drawn = data[(data["title"] == tables.PROPERTIES["ring_size"].title) & (data["series"] == "MDShortcut (All)")]
    table = summary[(summary["property"] == "ring_size") & (summary["model"] == "shortcut-all")].sort_values("n_s")
    assert list(drawn["x"]) == list(table["seconds_per_10k"]) and list(drawn["y"]) == list(table["mape_percent"])


def _drawn(monkeypatch, make) -> list:
    """The figures ``make()`` saves, drawn on the Agg canvas instead of saved."""
    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, out: saved.append(fig))
    make()
    for fig in saved:
        FigureCanvasAgg(fig).draw()
    return saved


def _labels(fig) -> list:
    """The texts drawn in a figure's axes: annotations and the tick labels in view (top axes too)."""
    texts = []
    for ax in fig.axes + [c for a in fig.axes for c in a.child_axes]:
        texts += [t for t in ax.texts if t.get_visible()]
        for axis, (lo, hi) in ((ax.xaxis, sorted(ax.get_xlim())), (ax.yaxis, sorted(ax.get_ylim()))):
            for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels()):
                if lo <= loc <= hi and label.get_text():
                    texts.append(label)
    return texts


def test_figures_5_and_6_share_a_time_unit_and_their_labels_do_not_overlap(monkeypatch):
    """On the reference run: fig 6 was per 4 samples (fig 5 per 10,000) with 3e-02-style ticks, and
    its n_s labels overlapped."""
    t1 = pd.read_csv(REPO / "results/reference/tables/table1.csv")
    inverse = pd.read_csv(REPO / "results/reference/evaluation/a-sio2/inverse.csv")
    fig5, fig6 = _drawn(
        monkeypatch, lambda: (figures.fig5_rmsd_vs_time(t1, "fig5.png"), figures.fig6_mape_vs_time(inverse, "fig6.png"))
    )
    for fig in (fig5, fig6):
        panels = [ax for ax in fig.axes if ax.get_ylabel()]
        assert {ax.get_xlabel() for ax in panels} == {"generation time per 10,000 samples (s)"}
        labels = _labels(fig)
        assert not [t.get_text() for t in labels if "e" in t.get_text().lower()]  # plain numbers
        boxes = [t.get_window_extent() for t in labels]
        overlaps = [
            (labels[i].get_text(), labels[j].get_text())
            for i in range(len(boxes))
            for j in range(i)
            if boxes[i].overlaps(boxes[j])
        ]
        assert not overlaps


def test_figure_text_is_readable(monkeypatch):
    """No text below 9 pt (figure 4's axis labels were 8 pt)."""
    rng = np.random.default_rng(0)
    rows = _eval_rows(rng)
    drawn = _drawn(
        monkeypatch,
        lambda: (
            figures.fig4_target_scatter(rows, "fig4.png"),
            figures.fig5_rmsd_vs_time(tables.table1(_structure_summary()), "fig5.png"),
            figures.fig6_mape_vs_time(_inverse_summary(), "fig6.png"),
        ),
    )
    for fig in drawn:
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
        assert not {t.get_text(): t.get_fontsize() for t in texts if t.get_fontsize() < 9}


def test_every_point_of_figures_5_and_6_shows_its_n_s(monkeypatch):
    """The captions promised n_s labels the figures lacked; the n_s ticks of a top axis sat at
    geometric-mean times, under no point. Now each point is filled with its n_s's colour, the
    legend names the colours, and no axis carries n_s ticks."""
    t1 = pd.read_csv(REPO / "results/reference/tables/table1.csv")
    inverse = pd.read_csv(REPO / "results/reference/evaluation/a-sio2/inverse.csv")
    fig5, fig6 = _drawn(
        monkeypatch, lambda: (figures.fig5_rmsd_vs_time(t1, "fig5.png"), figures.fig6_mape_vs_time(inverse, "fig6.png"))
    )
    for fig, table, per_row in ((fig5, t1, 2), (fig6, inverse, 1)):  # figure 5: RDF and ADF panels
        assert not [c for ax in fig.axes for c in ax.child_axes]  # no secondary (n_s) axis
        legend = {t.get_text(): h for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)}
        assert set(legend) == {f"n_s = {n}" for n in table["n_s"]}
        data = figures.plotted(fig)
        lines = data[~data["series"].str.startswith("n_s = ")]
        fills = data[data["series"].str.startswith("n_s = ")]
        assert len(lines) == len(fills) == per_row * len(table)  # one filled marker per drawn point
        for _, p in lines.iterrows():
            at = fills[(fills["panel"] == p["panel"]) & (fills["x"] == p["x"]) & (fills["y"] == p["y"])]
            assert len(at) == 1, p
        for ax in fig.axes:
            for c in ax.collections:
                colour = matplotlib.colors.to_rgba(legend[c.get_label()].get_color())
                assert np.allclose(c.get_facecolor()[0], colour)
    captions = (REPO / "workflow/report/figure.rst").read_text()
    for fig in ("fig5", "fig6"):
        text = re.search(rf'fig == "{fig}" %}}\n(.*?)\{{%', captions, re.S)[1]
        assert "per 10,000 samples" in text and "filled with the colour of its number of sampling steps" in text
        assert "label" not in text
