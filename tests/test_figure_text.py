"""No two texts of a report figure overlap, and none is cut off at the figure's edge.

Every matplotlib Figure a report makes (scaling, optimizers, search space, metaparameters,
adequacy, refinement, probes) is collected where the report saves it, drawn at the report's
dpi, and the window extents of all texts that were actually drawn (titles, suptitle, axis
and tick labels, legend entries, colour-bar labels, annotations) are compared pairwise.
The reports are built on the real results of ``results/paper-w2-momentum`` (read only) and on
trial tables shaped like a stopped search (few complete trials, most stopped at the best's
step) over grids of 2 and 20 batch sizes, with refinement trials and probe rows (the real
results have 10).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

import sparsedp.report.figures as report_figures
import sparsedp.report.sections as report_sections
from sparsedp.plots import plot_metaparameters, plot_search_space
from sparsedp.report import write_report
from sparsedp.report.probes import probe_section, probed_trials
from sparsedp.report.refinement import refine_section

REPO = Path(__file__).resolve().parents[1]
REAL_TRIALS = REPO / "results" / "paper-w2-momentum" / "trials.csv.gz"
DPI = 120
SLACK_PX = 1.0
"""Extents may touch or share a pixel (antialiasing) without counting as an overlap."""


# ----------------------------------------------------------------------------- the checker


def drawn_texts(fig: Figure, dpi: int = DPI) -> list[tuple[Text, object]]:
    """Draw ``fig`` at ``dpi``; the visible, non-empty texts drawn, with their extents."""
    drawn: list[Text] = []
    original = Text.draw

    def recording(self: Text, renderer) -> None:
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    Text.draw = recording  # type: ignore[method-assign]
    try:
        fig.canvas.draw()
    finally:
        Text.draw = original  # type: ignore[method-assign]
    renderer = fig.canvas.get_renderer()
    return [(t, t.get_window_extent(renderer)) for t in dict.fromkeys(drawn)]


def text_problems(fig: Figure, dpi: int = DPI) -> list[str]:
    """Each pair of overlapping texts, and each text reaching past the figure's edge."""
    texts = drawn_texts(fig, dpi)
    width, height = fig.canvas.get_width_height()
    problems = []
    for text, box in texts:
        if (box.x0 < -SLACK_PX or box.y0 < -SLACK_PX or box.x1 > width + SLACK_PX
                or box.y1 > height + SLACK_PX):
            problems.append(f"{text.get_text()!r} is cut off at the edge "
                            f"({box.x0:.0f}, {box.y0:.0f}, {box.x1:.0f}, {box.y1:.0f} "
                            f"in {width}x{height})")
    boxes = np.array([[b.x0, b.y0, b.x1, b.y1] for _, b in texts]).reshape(-1, 4)
    dx = (np.minimum(boxes[:, None, 2], boxes[None, :, 2])
          - np.maximum(boxes[:, None, 0], boxes[None, :, 0]))
    dy = (np.minimum(boxes[:, None, 3], boxes[None, :, 3])
          - np.maximum(boxes[:, None, 1], boxes[None, :, 1]))
    for i, j in zip(*np.nonzero(np.triu((dx > SLACK_PX) & (dy > SLACK_PX), k=1)), strict=True):
        problems.append(f"{texts[i][0].get_text()!r} overlaps {texts[j][0].get_text()!r} by "
                        f"{dx[i, j]:.0f}x{dy[i, j]:.0f} px")
    return problems


@pytest.fixture
def collected(monkeypatch) -> list[tuple[str, Figure]]:
    """Every figure the report saves (its own and its sections'), with its stem."""
    figures: list[tuple[str, Figure]] = []
    original = report_figures.save_report_figure

    def keep(fig, fig_dir, stem, caption, formats, dpi):
        figures.append((stem, fig))
        return original(fig, fig_dir, stem, caption, formats, dpi)

    monkeypatch.setattr(report_figures, "save_report_figure", keep)
    monkeypatch.setattr(report_sections, "save_report_figure", keep)
    return figures


def assert_no_text_problems(figures: list[tuple[str, Figure]]) -> None:
    found = {stem: problems for stem, fig in figures if (problems := text_problems(fig))}
    assert not found, "\n".join(f"{stem}: {len(p)} problems, e.g. " + "; ".join(p[:4])
                                for stem, p in found.items())


def test_the_checker_finds_overlapping_and_cut_off_texts():
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    fig.suptitle("a long title over the panel", y=0.95)
    ax.set_title("panel title")
    ax.text(1.02, 0.5, "sticks out of the figure on the right", transform=ax.transAxes)
    problems = text_problems(fig)
    assert any("overlaps" in p and "'a long title over the panel'" in p and "'panel title'" in p
               for p in problems)
    assert any("'sticks out of the figure on the right' is cut off" in p for p in problems)
    ax.set_title("")  # an empty or hidden text is never compared
    fig.suptitle("title", y=0.99)
    ax.texts[0].set_visible(False)
    assert text_problems(fig) == []


# ----------------------------------------------------------------------------- the reports


def stopped_search(batch_sizes: list[int], sparsities: list[float], n_trials: int = 14,
                   seed: int = 3) -> pd.DataFrame:
    """Two workloads on one data set and model, searched with hopeless trials stopped.

    A trial's steps grow with its distance from the best learning rate; above a learning
    rate it diverges (infeasible), past the budget it is incomplete, and once its study has
    a best it is stopped at that best's step if it cannot beat it (keep_complete = 1), as
    the engine does. Each study's first trial fails in one study; one status is unknown.
    Refinement trials (``stage = "refine"``) follow in a few studies.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for workload, optimizer in (("toy-sgd", "sgd"), ("toy-momentum", "momentum")):
        for sparsity in sparsities:
            for batch_size in batch_sizes:
                truth = 120 * (1 + 3 * sparsity) * (1 + 512 / batch_size)
                best = math.inf
                for i in range(n_trials + (4 if batch_size == batch_sizes[0] else 0)):
                    stage = "search" if i < n_trials else "refine"
                    lr = 10 ** rng.uniform(-4, 0)
                    momentum = 1 - 10 ** rng.uniform(-3, 0) if optimizer != "sgd" else np.nan
                    steps = truth * (1 + 4 * abs(math.log10(lr) + 1.5) ** 2)
                    steps = 16 * math.ceil(steps / 16)
                    if lr > 0.5:
                        status, taken = "infeasible", int(rng.integers(16, 200))
                    elif steps > 20_000:
                        status, taken = "incomplete", 20_000
                    elif steps >= best:
                        status, taken = "stopped", int(best)
                    else:
                        status, taken, best = "complete", int(steps), steps
                    if i == 1 and sparsity == sparsities[-1] and batch_size == batch_sizes[-1]:
                        status, taken = "failed", 0
                    if i == 2 and sparsity == sparsities[0] and batch_size == batch_sizes[0]:
                        status = "odd"
                    rows.append({
                        "experiment": "toy", "study_key": f"{workload}|{sparsity}|{batch_size}",
                        "workload": workload, "dataset": "toyset", "dataset_label": "Toy",
                        "model": "toy-cnn", "optimizer": optimizer, "sparsity": sparsity,
                        "batch_size": batch_size, "trial_index": i if stage == "search"
                        else 1000 + i, "seed": i, "lr": lr, "momentum": momentum,
                        "decay_steps": np.nan, "end_lr_factor": np.nan, "status": status,
                        "steps_to_result": steps if status == "complete" else np.nan,
                        "steps_taken": taken, "final_val_error": 0.01, "goal_error": 0.02,
                        "max_steps": 20_000, "eval_every": 16, "wall_time": 1.0,
                        "samples_per_second": 1.0, "eval_share": 0.1, "stage": stage,
                    })
    return pd.DataFrame(rows)


def probe_rows(trials: pd.DataFrame) -> tuple[list[dict], dict[str, SimpleNamespace]]:
    """Noise-scale and smoothness rows along each curve's best trial at its first batch size."""
    rows, studies = [], {}
    complete = trials[(trials["status"] == "complete") & (trials["stage"] == "search")]
    for (workload, sparsity), group in complete.groupby(["workload", "sparsity"]):
        best = group.sort_values(["batch_size", "steps_to_result"]).iloc[0]
        key = str(best["study_key"])
        studies[key] = SimpleNamespace(workload=workload, sparsity=sparsity,
                                       batch_size=int(best["batch_size"]))
        for j, step in enumerate(np.linspace(0, best["steps_to_result"], 4).astype(int)):
            value = 40.0 * (1 + j) * (1 + sparsity)
            rows.append({"study_key": key, "trial_index": int(best["trial_index"]),
                         "kind": "noise_scale", "step": int(step), "value": value,
                         "low": 0.7 * value, "high": 1.5 * value, "detail": None})
            rows.append({"study_key": key, "trial_index": int(best["trial_index"]),
                         "kind": "lipschitz", "step": int(step), "value": 3.0 / (1 + j),
                         "low": None, "high": None, "detail": None})
    return rows, studies


def report(trials: pd.DataFrame, out: Path, sections=()) -> Path:
    return write_report(trials, out, experiment_config={"name": "figure-text"}, provenance={},
                        engine_notes={"stop_hopeless_trials": True},
                        analysis_options={"n_resamples": 10}, formats=("png",), dpi=DPI,
                        sections=list(sections))


GRIDS = {
    "2-batch-sizes": ([64, 1024], [0.0, 0.9, 0.995]),
    "20-batch-sizes": ([8 * 2**k for k in range(20)], [0.0, 0.995]),
}


@pytest.mark.parametrize("grid", list(GRIDS))
def test_no_text_overlaps_in_any_figure_of_a_stopped_search(grid, tmp_path, collected):
    everything = stopped_search(*GRIDS[grid])
    rows, studies = probe_rows(everything)
    search = everything[everything["stage"] == "search"]
    report(search, tmp_path, [refine_section(everything, 10),
                              probe_section(probed_trials(rows, studies))])
    kinds = {stem.split("-")[0] for stem, _ in collected}
    assert kinds == {"scaling", "optimizers", "search", "metaparameters", "adequacy",
                     "refinement", "probes"}
    assert_no_text_problems(collected)


def test_no_text_overlaps_with_four_metaparameters():
    trials = stopped_search([32, 256, 2048], [0.0, 0.9], n_trials=10)
    trials = trials[(trials["workload"] == "toy-momentum") & (trials["stage"] == "search")].copy()
    rng = np.random.default_rng(5)
    trials["decay_steps"] = rng.integers(100, 20_000, len(trials))
    trials["end_lr_factor"] = 10 ** rng.uniform(-3, 0, len(trials))
    meta = plot_metaparameters(trials, "toy-momentum")
    assert [ax.get_xlabel() for ax in meta.axes[4:8]] == [
        "learning rate", "1 − momentum", "decay steps", "decay factor"]
    assert meta.get_figwidth() < 12.5
    figures = [("metaparameters", meta), ("search", plot_search_space(trials, "toy-momentum"))]
    assert_no_text_problems(figures)


def test_no_text_overlaps_in_the_figures_of_the_real_results(tmp_path, collected):
    trials = pd.read_csv(REAL_TRIALS)
    assert (trials["status"] == "stopped").mean() > 0.9  # the case the figures must carry
    report(trials, tmp_path)
    assert {stem.split("-")[0] for stem, _ in collected} == {
        "scaling", "search", "metaparameters", "adequacy"}
    assert_no_text_problems(collected)
