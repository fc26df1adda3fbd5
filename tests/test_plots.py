"""Plots: panel counts, gaps for missing studies, status markers, stopped trials as lower
bounds, compact search figures for long grids, saving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparsedp.plots import (
    axes_with_data,
    plot_metaparameters,
    plot_optimizer_comparison,
    plot_scaling,
    plot_search_space,
    save_figure,
    sparsity_label,
    study_title,
)
from sparsedp.plots.metaparameters import batch_colours

STATUS_CYCLE = ("complete", "incomplete", "complete", "infeasible", "stopped", "failed", "odd")


def make_trials(
    workloads=("toy-sgd", "toy-momentum"),
    sparsities=(0.0, 0.9),
    batch_sizes=(16, 64, 256, 1024),
    n_trials=7,
    drop=(),
    no_result=(),
    seed=0,
) -> pd.DataFrame:
    """Synthetic trials: steps follow S_min(1 + B_crit/B) with a per-trial penalty.

    ``drop`` removes studies entirely, ``no_result`` keeps them without complete trials; both
    take ``(workload, sparsity, batch_size)`` tuples.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for workload in workloads:
        optimizer = workload.split("-")[-1]
        for sparsity in sparsities:
            for batch_size in batch_sizes:
                key = (workload, sparsity, batch_size)
                if key in drop:
                    continue
                truth = 300 * (1 + 2 * sparsity) * (1 + 256 / batch_size)
                for i in range(n_trials):
                    status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
                    if key in no_result and status == "complete":
                        status = "incomplete"
                    steps = truth * (1 + rng.uniform(0, 1))
                    rows.append(
                        {
                            "experiment": "toy",
                            "study_key": f"{workload}/{sparsity}/{batch_size}",
                            "workload": workload,
                            "dataset": "toyset",
                            "dataset_label": "Toy",
                            "model": "toy-cnn",
                            "optimizer": optimizer,
                            "sparsity": sparsity,
                            "batch_size": batch_size,
                            "trial_index": i,
                            "seed": i,
                            "lr": 10 ** rng.uniform(-3, 0),
                            "momentum": 1 - 10 ** rng.uniform(-3, 0)
                            if optimizer != "sgd"
                            else np.nan,
                            "decay_steps": np.nan,
                            "end_lr_factor": np.nan,
                            "status": status,
                            "steps_to_result": steps if status == "complete" else np.nan,
                            "steps_taken": int(steps),
                            "final_val_error": 0.01,
                            "goal_error": 0.02,
                            "max_steps": 10_000,
                            "eval_every": 16,
                            "wall_time": 1.0,
                            "samples_per_second": 1.0,
                            "eval_share": 0.1,
                        }
                    )
    return pd.DataFrame(rows)


def test_scaling_figure_has_one_panel_per_sparsity_plus_two():
    trials = make_trials(sparsities=(0.0, 0.5, 0.7, 0.9))
    fig = plot_scaling(trials, "toy-momentum")
    assert len(fig.axes) == 6
    assert len(axes_with_data(fig)) == 6
    assert [ax.get_title() for ax in fig.axes[:4]] == ["S=0%", "S=50%", "S=70%", "S=90%"]
    first = fig.axes[0]
    assert first.get_xscale() == "log"
    # Measured line, perfect scaling (dashed), fit, B_crit (dotted vertical line).
    styles = [line.get_linestyle() for line in first.lines]
    assert "--" in styles and ":" in styles


def test_scaling_figure_with_gaps_draws_only_measured_points():
    trials = make_trials(
        sparsities=(0.0, 0.9),
        drop=[("toy-sgd", 0.9, 64)],
        no_result=[("toy-sgd", 0.9, 256)],
    )
    fig = plot_scaling(trials, "toy-sgd")
    sparse_panel = fig.axes[1]
    measured = sparse_panel.lines[0]
    x, y = measured.get_xdata(), measured.get_ydata()
    finite = np.isfinite(y)
    assert sorted(np.asarray(x)[finite].tolist()) == [16, 1024]
    # Two points are not enough for a fit: no B_crit line.
    assert ":" not in [line.get_linestyle() for line in sparse_panel.lines]
    texts = " ".join(t.get_text() for t in sparse_panel.texts)
    assert "256" in texts


def test_scaling_figure_with_no_results_keeps_panels_empty():
    trials = make_trials(
        workloads=("toy-sgd",),
        sparsities=(0.0,),
        batch_sizes=(16, 32),
        no_result=[("toy-sgd", 0.0, 16), ("toy-sgd", 0.0, 32)],
    )
    fig = plot_scaling(trials, "toy-sgd")
    assert len(fig.axes) == 3
    assert axes_with_data(fig) == []


def test_optimizer_comparison_one_panel_per_sparsity():
    trials = make_trials(sparsities=(0.0, 0.5, 0.9))
    fig = plot_optimizer_comparison(trials)
    assert len(axes_with_data(fig)) == 3
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert sorted(labels) == ["momentum", "sgd"]
    normalised = plot_optimizer_comparison(trials, workloads=["toy-sgd"], normalize=True)
    assert normalised.axes[0].lines[0].get_ydata()[0] == pytest.approx(1.0)


def test_search_space_panel_per_study_with_titles_and_best_star():
    trials = make_trials(workloads=("toy-momentum",), batch_sizes=(16, 128))
    fig = plot_search_space(trials, "toy-momentum")
    panels = axes_with_data(fig)
    assert len(panels) == 4
    titles = sorted(ax.get_title() for ax in panels)
    assert titles == ["S=0% B=128", "S=0% B=16", "S=90% B=128", "S=90% B=16"]
    assert panels[0].get_yscale() == "log"
    legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
    for status in ("complete", "incomplete", "infeasible", "stopped", "failed", "odd", "best"):
        assert status in legend_labels


def test_search_space_selection_and_workload_without_momentum():
    trials = make_trials(workloads=("toy-sgd",), batch_sizes=(16, 128, 1024))
    fig = plot_search_space(trials, "toy-sgd", studies=[(0.0, 16), (0.9, 1024), (0.5, 16)])
    panels = axes_with_data(fig)
    assert sorted(ax.get_title() for ax in panels) == ["S=0% B=16", "S=90% B=1024"]
    assert "no result" in [t.get_text() for t in panels[0].get_yticklabels()]
    # Learning rate against steps: stopped trials at their stop step, as in Figure 5.
    study = trials[(trials["sparsity"] == 0.0) & (trials["batch_size"] == 16)]
    stopped = study[study["status"] == "stopped"]
    assert len(stopped) > 0
    points = {(round(x, 9), round(y, 6)) for x, y in data_offsets(panels[0])}
    for lr, taken in zip(stopped["lr"], stopped["steps_taken"], strict=True):
        assert (round(lr, 9), round(float(taken), 6)) in points


def data_offsets(ax) -> list[tuple[float, float]]:
    """Marker positions drawn in data coordinates (not those in the no-result band)."""
    return [tuple(p) for c in ax.collections if c.get_offset_transform() == ax.transData
            for p in np.asarray(c.get_offsets())]


def band_offsets(ax) -> list[tuple[float, float]]:
    """Marker positions in the no-result band (x in data, y as a fraction of the axes)."""
    return [tuple(p) for c in ax.collections if c.get_offset_transform() != ax.transData
            for p in np.asarray(c.get_offsets())]


def panels_of(fig) -> list:
    """The figure's panels: no colour bar, no blank cell."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.axison]


def test_search_space_panels_share_their_ranges_and_wrap_long_rows():
    sizes = tuple(8 * 2**k for k in range(20))
    trials = make_trials(workloads=("toy-momentum",), batch_sizes=sizes, n_trials=4)
    fig = plot_search_space(trials, "toy-momentum")
    panels = panels_of(fig)
    assert len(panels) == 40  # every study, nothing else
    assert {ax.get_xlim() for ax in panels} == {panels[0].get_xlim()}
    assert {ax.get_ylim() for ax in panels} == {panels[0].get_ylim()}
    # 20 batch sizes wrap into 3 rows of at most 7 per sparsity; each sparsity starts a row.
    grid = {ax.get_title(): ax.get_subplotspec().get_geometry() for ax in panels}
    assert grid["S=0% B=8"][:3] == (6, 7, 0)
    assert grid["S=0% B=64"][2] == 3 and grid["S=0% B=1024"][2] == 7
    assert grid["S=90% B=8"][2] == 3 * 7  # row 3, column 0
    width, height = fig.get_size_inches()
    assert width < 14 and height < 16


def test_metaparameter_figure_one_panel_per_sparsity_and_parameter():
    trials = make_trials(
        workloads=("toy-momentum",), batch_sizes=(16, 128), no_result=[("toy-momentum", 0.9, 128)]
    )
    fig = plot_metaparameters(trials, "toy-momentum")
    panels = panels_of(fig)
    assert [ax.get_title() for ax in panels] == ["S=0%", "S=0%", "S=90%", "S=90%"]
    assert [ax.get_xlabel() for ax in panels[2:]] == ["learning rate", "1 − momentum"]
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    assert bar.get_ylabel() == "batch size"
    assert [t.get_text() for t in bar.get_yticklabels()] == ["16", "128"]
    lr_panel = panels[0]
    rows = trials[trials["sparsity"] == 0.0]
    points = {(round(x, 9), round(y, 6)) for x, y in data_offsets(lr_panel)}
    complete = rows[rows["status"] == "complete"]
    stopped = rows[rows["status"] == "stopped"]
    assert len(complete) > 0 and len(stopped) > 0
    for lr, steps in zip(complete["lr"], complete["steps_to_result"], strict=True):
        assert (round(lr, 9), round(steps, 6)) in points
    for lr, taken in zip(stopped["lr"], stopped["steps_taken"], strict=True):
        assert (round(lr, 9), round(float(taken), 6)) in points  # a lower bound at its stop
    unreached = rows[~rows["status"].isin(["complete", "stopped"])]
    band = band_offsets(lr_panel)
    assert sorted(round(x, 9) for x, _ in band) == sorted(round(x, 9) for x in unreached["lr"])
    assert all(0.84 < y <= 1.0 for _, y in band)
    # Each study's best is a star at its steps, in its batch size's colour.
    stars = [c for c in lr_panel.collections if c.get_zorder() == 6]
    assert len(stars) == 1 and len(stars[0].get_offsets()) == 2
    best = complete.sort_values("steps_to_result").groupby("batch_size").first()
    assert sorted(round(y, 6) for _, y in stars[0].get_offsets()) == sorted(
        round(v, 6) for v in best["steps_to_result"])
    small = int(np.argmax(np.asarray(stars[0].get_offsets())[:, 1]))  # B=16 needs more steps
    assert np.allclose(stars[0].get_facecolors()[small][:3], batch_colours([16, 128])[0][:3])


@pytest.mark.parametrize("sparsities, labelled", [((0.0, 0.9), 20), ((0.9,), 10)])
def test_metaparameter_figure_stays_compact_for_20_batch_sizes(sparsities, labelled):
    sizes = tuple(8 * 2**k for k in range(20))
    trials = make_trials(workloads=("toy-momentum",), sparsities=sparsities, batch_sizes=sizes,
                         n_trials=4)
    fig = plot_metaparameters(trials, "toy-momentum")
    assert len(panels_of(fig)) == 2 * len(sparsities)
    width, height = fig.get_size_inches()
    assert width < 9 and height < 3.2 * len(sparsities) + 1.5
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert len(labels) == 20 and sum(1 for t in labels if t) == labelled  # thinned to fit
    assert labels[0] == "8"


def test_save_figure_writes_png_and_svg(tmp_path):
    fig = plot_scaling(make_trials(workloads=("toy-sgd",), sparsities=(0.0,)), "toy-sgd")
    paths = save_figure(fig, tmp_path / "sub" / "fig.v1")
    assert [p.name for p in paths] == ["fig.v1.png", "fig.v1.svg"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_labels():
    assert sparsity_label(0.9) == "90%"
    assert sparsity_label(0.0) == "0%"
    assert sparsity_label(0.995) == "99.5%"
    assert study_title(0.9, 128) == "S=90% B=128"
