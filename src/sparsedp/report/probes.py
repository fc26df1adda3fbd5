"""The probes' part of the report: predicted critical batch sizes and smoothness over training.

Built from the stored probe rows (``store/probes.py``; one dict per measurement with
``study_key``, ``trial_index``, ``kind``, ``step``, ``value``, ``low``, ``high``, ``detail``)
and the study each key names. The prediction shown next to a curve's fitted ``B_crit`` is the
gradient noise scale B_simple at the last checkpoint of the probed trial (the step where it
reached the goal), with its bootstrap interval (docs/probes.md says why that checkpoint).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from sparsedp.analysis.data_size import curve_workload
from sparsedp.report.findings import Finding, predicted_vs_measured
from sparsedp.report.format import number
from sparsedp.report.format import sparsity as sparsity_text
from sparsedp.report.sections import FindingSource, ReportInputs, Section
from sparsedp.report.tables import Table


@dataclass(frozen=True)
class ProbedTrial:
    """One probed trial: its curve (workload, sparsity), batch size and measurements."""

    workload: str
    sparsity: float
    batch_size: int
    trial_index: int
    noise: list[Mapping[str, Any]]
    lipschitz: list[Mapping[str, Any]]

    @property
    def prediction(self) -> Mapping[str, Any] | None:
        """The noise-scale row at the last checkpoint (None without a finite value)."""
        rows = [r for r in self.noise if r["value"] is not None]
        return max(rows, key=lambda r: r["step"]) if rows else None


def probed_trials(rows: Iterable[Mapping[str, Any]],
                  studies: Mapping[str, Any]) -> list[ProbedTrial]:
    """Group probe rows by trial; ``studies`` maps study keys to objects with ``workload``,
    ``sparsity`` and ``batch_size`` (rows of other keys are left out)."""
    grouped: dict[tuple[str, int], dict[str, list[Mapping[str, Any]]]] = {}
    for row in rows:
        if row["study_key"] in studies:
            kinds = grouped.setdefault((row["study_key"], int(row["trial_index"])), {})
            kinds.setdefault(row["kind"], []).append(row)
    out = []
    for (key, index), kinds in grouped.items():
        study = studies[key]
        workload = curve_workload(study.workload, getattr(study, "train_examples", None))
        out.append(ProbedTrial(workload, float(study.sparsity), int(study.batch_size),
                               index, sorted(kinds.get("noise_scale", []), key=_step),
                               sorted(kinds.get("lipschitz", []), key=_step)))
    return sorted(out, key=lambda t: (t.workload, t.sparsity, t.batch_size, t.trial_index))


def _step(row: Mapping[str, Any]) -> int:
    return int(row["step"])


def probe_findings(trials: Sequence[ProbedTrial]) -> FindingSource:
    """Predicted (B_simple) next to measured (fitted B_crit) per probed curve."""

    def source(inputs: ReportInputs) -> list[Finding]:
        out = []
        for trial in trials:
            row = trial.prediction
            if row is None:
                continue
            interval = None
            if row["low"] is not None:
                interval = (row["low"], row["high"] if row["high"] is not None else math.inf)
            out.append(predicted_vs_measured(
                inputs.analysis, trial.workload, trial.sparsity, float(row["value"]), interval,
                source=f"the gradient noise scale B_simple (trial {trial.trial_index} at "
                       f"B = {trial.batch_size}, step {row['step']})"))
        return out

    return source


def probe_section(trials: Sequence[ProbedTrial]) -> Section:
    """Figures of B_simple and L over training per sparsity, and their table."""

    def context(inputs: ReportInputs) -> dict[str, Any]:
        figures = []
        for workload in sorted({t.workload for t in trials}):
            mine = [t for t in trials if t.workload == workload]
            fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
            for trial in mine:
                label = f"S={sparsity_text(trial.sparsity)} (B={trial.batch_size})"
                noise = [r for r in trial.noise if r["value"] is not None]
                if noise:
                    steps = [r["step"] for r in noise]
                    values = [r["value"] for r in noise]
                    low = [r["low"] if r["low"] is not None else r["value"] for r in noise]
                    high = [r["high"] if r["high"] is not None else r["value"] for r in noise]
                    line = left.plot(steps, values, marker="o", label=label)[0]
                    left.fill_between(steps, low, high, alpha=0.2, color=line.get_color())
                lip = [r for r in trial.lipschitz if r["value"] is not None]
                if lip:
                    right.plot([r["step"] for r in lip], [r["value"] for r in lip],
                               marker=".", label=label)
            left.set(title="gradient noise scale B_simple", xlabel="training step",
                     ylabel="B_simple (examples)", yscale="log")
            right.set(title="Lipschitz smoothness L along the steps", xlabel="training step",
                      ylabel="L", yscale="log")
            for axis in (left, right):
                axis.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
                axis.grid(alpha=0.3)
                if axis.get_legend_handles_labels()[0]:
                    axis.legend(fontsize=8)
            fig.tight_layout()
            figures.append(inputs.figure(
                f"probes-{workload}", f"{workload}: gradient noise scale (95% interval shaded) "
                "and Lipschitz smoothness over the probed trials' training", fig))
            plt.close(fig)
        rows = []
        for trial in trials:
            by_step: dict[int, dict[str, Mapping[str, Any]]] = {}
            for row in trial.noise:
                by_step.setdefault(int(row["step"]), {})["noise"] = row
            for row in trial.lipschitz:
                by_step.setdefault(int(row["step"]), {})["lip"] = row
            for step in sorted(by_step):
                noise, lip = by_step[step].get("noise"), by_step[step].get("lip")
                rows.append([trial.workload, sparsity_text(trial.sparsity),
                             str(trial.batch_size), str(trial.trial_index), str(step),
                             number(noise["value"]) if noise else "",
                             _interval(noise) if noise else "",
                             number(lip["value"]) if lip else ""])
        table = Table(["workload", "sparsity", "B", "trial", "step", "B_simple",
                       "95% interval", "L"], rows, text_columns=1)
        return {"probe_figures": figures, "probe_table": table}

    return Section("probes", "Gradient noise scale and smoothness (probes)", "probes.html",
                   context, place="figures")


def _interval(row: Mapping[str, Any]) -> str:
    if row["low"] is None:
        return "—"
    high = "∞" if row["high"] is None else number(row["high"])
    return f"[{number(row['low'])}, {high}]"
