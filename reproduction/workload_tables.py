"""Markdown tables for one CPU reproduction's section in docs/reproduction-cpu.md (issue 23).

Reads what a reader can recompute from the repository:

- ``summary.json`` of ``sparsedp report reproduction/NAME.toml`` (run after
  ``bash reproduction/run.sh NAME`` has seeded ``reproduction/results/NAME/`` from the committed
  snapshot, or after the run itself): bests, adequacy verdicts, fits with their censoring-aware
  intervals, regimes and sparse/dense ratios;
- ``reproduction/NAME-trials.csv`` (the committed export): each study's trial time, summed;
- ``reproduction/NAME.plan.txt`` (the committed plan, made before the run; a later
  "# Re-planned" section is not read; where the design changed before the run, the rows
  after a "# Plan of record" line): each study's expected time.

and prints four tables: best steps per study with the adequacy verdict, the fit per sparsity,
the sparse/dense comparison, and plan against actual. Nothing is typed in by hand.

    python reproduction/workload_tables.py w1-sgd-cpu [--summary PATH]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_UNITS = {"s": 1 / 60, "min": 1.0, "h": 60.0, "d": 1440.0}
_PLAN_ROW = re.compile(r"^\S+ s=(?P<s>[\d.]+) B=(?P<b>\d+)\s.*?"
                       r"(?P<exp>[\d.]+) (?P<eu>s|min|h|d)\s+[\d.]+ (?:s|min|h|d)\s+"
                       r"[\d.]+ (?:s|min|h|d)\s*$")


def _interval(ci: list | None, note: str | None, digits: int = 0) -> str:
    if note or not ci or ci[0] is None:
        return f"none: {note}" if note else "none"
    return f"[{ci[0]:,.{digits}f}, {ci[1]:,.{digits}f}]"


def _minutes(m: float) -> str:
    return f"{m / 60:.1f} h" if m >= 90 else f"{m:.1f} min"


def bests_table(summary: dict) -> str:
    studies = summary["studies"]
    batches = sorted({s["batch_size"] for s in summary["expected_studies"]})
    sparsities = sorted({s["sparsity"] for s in summary["expected_studies"]})
    by = {(s["sparsity"], s["batch_size"]): s for s in studies}
    lines = ["| sparsity | " + " | ".join(f"B = {b}" for b in batches) + " |",
             "| --- |" + " --- |" * len(batches)]
    for sp in sparsities:
        cells = []
        for b in batches:
            s = by.get((sp, b))
            if s is None or s.get("steps") is None:
                cells.append("—" if s is None else f"none reached ({s['n_trials']} trials)")
                continue
            mark = "✓" if s["converged"] else "✗"
            cells.append(f"{s['steps']:,.0f} (#{s['best_trial_index']}) "
                         f"{s['n_complete']}/{s['n_trials']} {mark}")
        lines.append(f"| {sp:g} | " + " | ".join(cells) + " |")
    if len(sparsities) == 2:
        dense, sparse = sparsities
        cells = []
        for b in batches:
            d, s = by.get((dense, b)), by.get((sparse, b))
            if d and s and d.get("steps") and s.get("steps"):
                cells.append(f"{s['steps'] / d['steps']:.1f}×")
            else:
                cells.append("—")
        lines.append("| ratio | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fits_table(summary: dict) -> str:
    lines = ["| sparsity | S_min | B_crit | 20%-overhead B | perfect scaling to | "
             "maximal parallelism from (10% rule) | later saving |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for curve in summary["curves"]:
        fit = curve.get("fit") or {}
        over = curve.get("b_crit_overhead") or {}
        reg = curve.get("regimes") or {}
        if not fit or fit.get("s_min") is None:  # e.g. fewer than 3 batch sizes measured
            lines.append(f"| {curve['sparsity']:g} | no fit | | | | | |")
            continue
        note = fit.get("interval_note")
        s_min = f"{fit['s_min']:,.0f} {_interval(fit.get('s_min_ci'), note)}"
        b_crit = (f"{fit['b_crit']:,.0f} (2^{fit['log2_b_crit']:.1f}) "
                  f"{_interval(fit.get('b_crit_ci'), note)}")
        overhead = (f"{over['value']:,.0f} {_interval(over.get('ci'), over.get('interval_note'))}"
                    if over.get("value") else over.get("state", "—"))
        later = ""
        if reg.get("later_saving"):
            a, b = reg["later_saving_between"]
            later = f"{reg['later_saving']:.0%} ({a} → {b})"
        lines.append(f"| {curve['sparsity']:g} | {s_min} | {b_crit} | {overhead} | "
                     f"{reg.get('perfect_scaling_end', '—')} | "
                     f"{reg.get('max_parallelism_onset', '—')} | {later} |")
    return "\n".join(lines)


def comparison_table(summary: dict) -> str:
    lines = ["| sparsity | perfect-scaling batch sizes | steps ratio (geometric mean) | "
             "B_crit ratio |", "| --- | --- | --- | --- |"]
    for row in summary["sparse_vs_dense"]["summary"]:
        ratio, b_ratio = row.get("geomean_ratio"), row.get("b_crit_ratio")
        steps_ci = _interval(row.get("geomean_ratio_ci"),
                             row.get("geomean_ratio_interval_note"), 2)
        b_ci = _interval(row.get("b_crit_ratio_ci"), row.get("b_crit_ratio_interval_note"), 2)
        steps = "—" if ratio is None else f"{ratio:.2f} (2^{row['log2_ratio']:.2f}) {steps_ci}"
        b_text = "—" if b_ratio is None else f"{b_ratio:.2f} {b_ci}"
        batches = ", ".join(str(b) for b in row.get("perfect_scaling_batch_sizes") or [])
        lines.append(f"| {row['sparsity']:g} | {batches or '—'} | {steps} | {b_text} |")
    return "\n".join(lines)


def plan_vs_actual(name: str) -> str:
    plan_path, csv_path = HERE / f"{name}.plan.txt", HERE / f"{name}-trials.csv"
    expected: dict[tuple[float, int], float] = {}
    lines = plan_path.read_text().splitlines()
    marks = [i for i, line in enumerate(lines) if line.startswith("# Plan of record")]
    for line in lines[marks[-1] + 1:] if marks else lines:  # else the first plan
        if line.startswith("# Re-planned"):  # the plan made before the run, not a later one
            break
        m = _PLAN_ROW.match(line.strip())
        if m:
            expected[(float(m["s"]), int(m["b"]))] = float(m["exp"]) * _UNITS[m["eu"]]
    trials = pd.read_csv(csv_path)
    actual = trials.groupby(["sparsity", "batch_size"]).agg(
        minutes=("wall_time", lambda t: t.sum() / 60), stored=("trial_index", "size"))
    lines = ["| study | trials stored | plan (expected) | actual (trials' own time) | "
             "actual / plan |", "| --- | ---: | ---: | ---: | ---: |"]
    for (sp, b), plan in sorted(expected.items()):
        row = actual.loc[(sp, b)] if (sp, b) in actual.index else None
        if row is None:
            lines.append(f"| s = {sp:g}, B = {b} | 0 | {_minutes(plan)} | — | — |")
            continue
        ratio = f"{row['minutes'] / plan:.2f}" if plan else "—"
        lines.append(f"| s = {sp:g}, B = {b} | {int(row['stored'])} | {_minutes(plan)} | "
                     f"{_minutes(row['minutes'])} | {ratio} |")
    planned = sum(expected.values())
    done = actual.loc[[k for k in expected if k in actual.index]]
    if planned and len(done):
        lines.append(f"| total (the plan's studies; SNIP left out) | {int(done['stored'].sum())} | "
                     f"{_minutes(planned)} | {_minutes(done['minutes'].sum())} | "
                     f"{done['minutes'].sum() / planned:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", help="e.g. w1-sgd-cpu")
    parser.add_argument("--summary", type=Path, help="summary.json (default: the report's)")
    args = parser.parse_args()
    path = args.summary or HERE / "results" / args.name / "report" / "summary.json"
    summary = json.loads(path.read_text())
    print(f"### {args.name}: best steps per study (trial; complete/stored; ✓ converged)\n")
    print(bests_table(summary))
    print("\n### Fits S(B) = S_min (1 + B_crit / B), censoring-aware 95% intervals\n")
    print(fits_table(summary))
    print("\n### Sparse against dense\n")
    print(comparison_table(summary))
    print("\n### Plan against actual\n")
    print(plan_vs_actual(args.name))


if __name__ == "__main__":
    main()
