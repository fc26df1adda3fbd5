"""The report's findings: short sentences a reader can act on, computed from the analysis.

A :class:`Finding` is one sentence (or two) about the whole experiment or one curve
(workload, sparsity), with the numbers behind it in ``values`` (also written to
``summary.json``). :func:`measured_findings` derives them from the measured results; other
sections add their own (e.g. the gradient-noise-scale probe's predicted critical batch size,
via :func:`predicted_vs_measured`) and :func:`arrange_findings` orders everything for the
page. Definitions: ``docs/report.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparsedp.analysis.summary import Analysis
from sparsedp.report.finding import (  # noqa: F401  (the report's names, kept here)
    CRITICAL_BATCH,
    KIND_TITLES,
    LEVELS,
    NOT_ENOUGH,
    OK,
    OVERVIEW,
    PENDING,
    PREDICTED_VS_MEASURED,
    REGIMES,
    SEARCH_ADEQUACY,
    SEARCH_RANGE,
    SEED_REPEATS,
    SPARSE_VS_DENSE,
    WARNING,
    Finding,
    _at,
    _ci,
    _list,
    _range,
)
from sparsedp.report.format import batch, times
from sparsedp.report.format import sparsity as sparsity_text
from sparsedp.report.regimes_finding import regimes_finding


def critical_batch_finding(curve: Mapping[str, Any], options: Mapping[str, Any]) -> Finding:
    """Fitted ``B_crit`` of one curve (``summary["curves"]`` entry) as a sentence."""
    w, s, fit = curve["workload"], float(curve["sparsity"]), curve["fit"]
    sizes = [int(b) for b in curve["batch_sizes"]]
    values = {k: fit[k] for k in ("b_crit", "b_crit_ci", "s_min", "s_min_ci", "at_bound")}
    values["batch_sizes"] = sizes
    if fit["b_crit"] is None:
        have = f"{len(sizes)} batch size{'s' if len(sizes) != 1 else ''} with a result"
        missing = curve.get("missing_batch_sizes") or []
        tail = f"; no result yet at {_list(missing)}" if missing else ""
        return Finding(
            CRITICAL_BATCH,
            f"{_at(s)}: not enough results for a critical batch size ({have}"
            + (f": {_list(sizes)}" if sizes else "")
            + f"{tail}); the fit needs at least {options['min_points']}.",
            w, s, NOT_ENOUGH, values,
        )
    b, ci = float(fit["b_crit"]), fit["b_crit_ci"]
    if fit["at_bound"]:
        larger = b > sizes[-1]
        return Finding(
            CRITICAL_BATCH,
            f"{_at(s)}: the measured batch sizes ({_range(sizes)}) do not pin down the "
            "critical batch size: the fit ends at its bound, "
            + (
                "the curve still scales perfectly at the largest one. Measure larger batch sizes."
                if larger
                else "the curve is already flat at the smallest one. Measure smaller batch sizes."
            ),
            w, s, WARNING, values,
        )
    text = (
        f"{_at(s)}, adding workers stops paying off above B ≈ {batch(b)} "
        f"({_ci(ci, options['confidence'], note=fit.get('interval_note'))}): beyond it each "
        "doubling of the batch size saves "
        f"at most 25% of the steps, and no batch size trains in fewer than "
        f"S_min ≈ {fit['s_min']:.0f} steps."
    )
    level = OK
    frac = fit.get("bootstrap_fraction_fit")
    if ci and frac is not None and frac < 0.9:
        text += (
            f" The interval rests on {100 * frac:.0f}% of {fit['bootstrap_resamples']} "
            "resamples; the others had too few results to fit."
        )
        level = WARNING
    weak = curve.get("unconverged_batch_sizes") or []
    if weak:
        text += (f" It rests on studies whose search is not shown converged ({_list(weak)}; "
                 "docs/analysis.md, search adequacy).")
        level = WARNING
    if b > sizes[-1] or b < sizes[0]:
        side = "largest" if b > sizes[-1] else "smallest"
        text += (
            f" This extrapolates beyond the {side} batch size measured "
            f"({batch(sizes[-1] if b > sizes[-1] else sizes[0])})."
        )
        level = WARNING
    return Finding(CRITICAL_BATCH, text, w, s, level, values)


def sparse_dense_finding(
    comparison: Mapping[str, Any],
    ratios: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any],
    unfitted: Sequence[str] = (),
) -> Finding:
    """Step ratio and critical-batch ratio of one sparse curve against its dense curve;
    ``unfitted`` names the curves of the pair without a fit (e.g. ``["98%"]``)."""
    w, s = comparison["workload"], float(comparison["sparsity"])
    conf = options["confidence"]
    rows = [r for r in ratios if r["workload"] == w and math.isclose(r["sparsity"], s)]
    values = {
        k: comparison[k]
        for k in ("geomean_ratio", "geomean_ratio_ci", "b_crit_ratio", "b_crit_ratio_ci")
    }
    values["perfect_scaling_batch_sizes"] = comparison["perfect_scaling_batch_sizes"]
    if comparison["geomean_ratio"] is None:
        end = comparison["dense_perfect_scaling_end"]
        where = f" (B ≤ {batch(end)})" if end is not None else ""
        return Finding(
            SPARSE_VS_DENSE,
            f"{_at(s)}: no step ratio: no batch size in the dense network's perfect-scaling "
            f"region{where} has results for both networks.",
            w, s, NOT_ENOUGH, values,
        )
    sizes = comparison["perfect_scaling_batch_sizes"]
    step_ci = _ci(comparison["geomean_ratio_ci"], conf, times,
                  note=comparison.get("geomean_ratio_interval_note"))
    text = (
        f"{_at(s)}, training needs {times(comparison['geomean_ratio'])} the dense network's "
        f"steps ({step_ci}; geometric mean over "
        f"{_range(sizes)}, where the dense network scales perfectly"
        + ("; the interval covers trials and seed repeats)" if comparison.get("ci_includes_seeds")
           else ")")
    )
    lo, hi = (times(f(r["ratio"] for r in rows)) for f in (min, max)) if rows else ("", "")
    if lo != hi:
        text += f"; per batch size {lo} to {hi}"
    text += "."
    ratio, ci = comparison["b_crit_ratio"], comparison["b_crit_ratio_ci"]
    if ratio is None:
        which = " and ".join(unfitted) or "one of the two"
        text += f" No critical batch size ratio: the {which} curve has too few results to fit."
    else:
        text += (
            f" Its critical batch size is {times(ratio)} the dense one "
            f"({_ci(ci, conf, times, note=comparison.get('b_crit_ratio_interval_note'))})"
        )
        if ci and ci[0] > 1:
            text += ": it keeps profiting from more workers up to larger batch sizes."
        elif ci and ci[1] < 1:
            text += ": it stops profiting from more workers at smaller batch sizes."
        elif ci:
            text += ": the interval includes 1, so no difference is established."
        else:
            text += "."
    return Finding(SPARSE_VS_DENSE, text, w, s, OK, values)


def overview_finding(
    summary: Mapping[str, Any], expected: Sequence[Mapping[str, Any]] | None
) -> Finding:
    """How much of the experiment the findings rest on."""
    counts = summary["counts"]
    values = {k: counts[k] for k in ("n_trials", "n_studies", "n_studies_with_result")}
    text = (
        f"{counts['n_trials']} trials in {counts['n_studies']} studies; "
        f"{counts['n_studies_with_result']} studies have a result."
    )
    level = OK if counts["n_studies_without_result"] == 0 else WARNING
    if expected is None and counts["n_studies_without_result"]:
        text += (
            f" {counts['n_studies_without_result']} have trials but no result yet "
            "(see Missing studies)."
        )
    if expected is not None:
        done = sum(1 for e in expected if e["state"] == "result")
        values["n_expected"], values["n_expected_with_result"] = len(expected), done
        if done < len(expected):
            text += (
                f" These findings rest on {done} of {len(expected)} expected studies; "
                f"{len(expected) - done} have no result yet (see Missing studies)."
            )
            level = WARNING
        else:
            text += f" All {len(expected)} expected studies have a result."
    if counts["n_studies_with_result"] == 0:
        level = NOT_ENOUGH
    return Finding(OVERVIEW, text, None, None, level, values)


def _curves_without_trials(
    summary: Mapping[str, Any], expected: Sequence[Mapping[str, Any]]
) -> list[Finding]:
    """A ``not enough results`` finding for each expected (workload, sparsity) no trial
    has reached yet (they have no curve at all)."""
    have = {(c["workload"], float(c["sparsity"])) for c in summary["curves"]}
    pending: dict[tuple[str, float], list[int]] = {}
    for e in expected:
        key = (str(e["workload"]), float(e["sparsity"]))
        if not any(k[0] == key[0] and math.isclose(k[1], key[1]) for k in have):
            pending.setdefault(key, []).append(int(e["batch_size"]))
    return [
        Finding(
            CRITICAL_BATCH,
            f"{_at(s)}: no results yet (none of its {len(sizes)} studies, "
            f"{_list(sorted(sizes)) if len(sizes) <= 3 else _range(sorted(sizes))}, has a "
            "finished trial).",
            w, s, NOT_ENOUGH, {"batch_sizes": []},
        )
        for (w, s), sizes in pending.items()
    ]


def adequacy_finding(curve: Mapping[str, Any], studies: Sequence[Mapping[str, Any]]
                     ) -> Finding:
    """Which studies of a curve are converged (docs/analysis.md, search adequacy)."""
    w, s = curve["workload"], float(curve["sparsity"])
    mine = [st for st in studies if st["workload"] == w and math.isclose(st["sparsity"], s)
            and "converged" in st]
    done = sorted(int(st["batch_size"]) for st in mine if st["converged"])
    notes = {int(st["batch_size"]): (st.get("adequacy") or {}).get("reason", "")
             for st in mine if not st["converged"]}
    values = {"converged_batch_sizes": done, "unconverged": notes}
    if not notes:
        return Finding(SEARCH_ADEQUACY, f"{_at(s)}: every study's search is converged "
                       f"({_list(done)}): in at least 3 of 4 random halves of a study's trials "
                       "the best is within 5% of the study's best.", w, s, OK, values)
    cannot = [b for b, why in notes.items() if why.startswith("cannot tell")]
    text = (f"{_at(s)}: {len(notes)} of {len(mine)} studies are not shown converged "
            f"({_list(sorted(notes))})")
    if cannot:
        text += (f"; at {_list(cannot)} stopped trials hide the values needed (the trials ran "
                 "with too low a keep_complete)")
    worse = sorted(set(notes) - set(cannot))
    if worse:
        text += (f"; at {_list(worse)} a random half of the search finds a best over 5% worse "
                 "in more than 1 of 4 cases: more trials there could move the result")
    return Finding(SEARCH_ADEQUACY, text + ".", w, s, WARNING, values)


def measured_findings(
    summary: Mapping[str, Any], expected: Sequence[Mapping[str, Any]] | None = None
) -> list[Finding]:
    """Every finding the measured results support (``summary``: ``analysis_to_dict``)."""
    options = summary["options"]
    out = [overview_finding(summary, expected)]
    for curve in summary["curves"]:
        out.append(critical_batch_finding(curve, options))
        out.append(regimes_finding(curve))
        out.append(adequacy_finding(curve, summary["studies"]))
    out.extend(_curves_without_trials(summary, expected or []))
    ratios = summary["sparse_vs_dense"]["ratios"]
    compared = set()
    dense = float(options["dense_sparsity"])
    for comparison in summary["sparse_vs_dense"]["summary"]:
        w = comparison["workload"]
        unfitted = [
            "dense" if c["sparsity"] == dense else sparsity_text(c["sparsity"])
            for c in summary["curves"]
            if c["workload"] == w
            and c["sparsity"] in (dense, comparison["sparsity"])
            and c["fit"]["b_crit"] is None
        ]
        out.append(sparse_dense_finding(comparison, ratios, options, unfitted))
        compared.add(w)
    for w in dict.fromkeys(c["workload"] for c in summary["curves"]):
        sparse = [c for c in summary["curves"] if c["workload"] == w and c["sparsity"] != dense]
        if sparse and w not in compared:
            out.append(
                Finding(
                    SPARSE_VS_DENSE,
                    f"No sparse/dense comparison: {w} has no dense (sparsity "
                    f"{sparsity_text(dense)}) result.",
                    w, None, NOT_ENOUGH,
                )
            )
    return out


def predicted_vs_measured(
    analysis: Analysis,
    workload: str,
    sparsity: float,
    predicted: float,
    predicted_ci: Sequence[float] | None = None,
    *,
    source: str = "the gradient noise scale B_simple",
) -> Finding:
    """A predicted critical batch size next to the fitted ``B_crit`` of the same curve.

    For other sections (e.g. the gradient-noise-scale probe): pass the prediction and its
    interval; the measured value and interval come from ``analysis``.
    """
    key = next(
        (k for k in analysis.curves if k[0] == workload and math.isclose(k[1], sparsity)), None
    )
    fit = analysis.fits.get(key) if key else None
    boot = analysis.bootstraps.get(key) if key else None
    conf = analysis.options["confidence"]
    values: dict[str, Any] = {
        "predicted": predicted,
        "predicted_ci": list(predicted_ci) if predicted_ci else None,
        "source": source,
        "measured": fit.b_crit if fit else None,
        "measured_ci": list(boot.b_crit_ci) if boot and boot.b_crit_ci else None,
    }
    text = (
        f"{_at(sparsity)}, {source} predicts B ≈ {batch(predicted)} "
        f"({_ci(predicted_ci, conf)})"
    )
    if fit is None:
        text += "; no measured critical batch size to compare (not enough results)."
        return Finding(PREDICTED_VS_MEASURED, text, workload, sparsity, NOT_ENOUGH, values)
    m_ci = values["measured_ci"]
    text += (
        f"; measured B_crit ≈ {batch(fit.b_crit)} ({_ci(m_ci, conf)}): the prediction is "
        f"{times(predicted / fit.b_crit)} the measurement"
    )
    if predicted_ci and m_ci:
        overlap = predicted_ci[0] <= m_ci[1] and m_ci[0] <= predicted_ci[1]
        text += "; the intervals overlap." if overlap else "; the intervals do not overlap."
    else:
        text += "."
    return Finding(PREDICTED_VS_MEASURED, text, workload, sparsity, OK, values)


def pending_prediction(workload: str) -> Finding:
    """The slot for a predicted critical batch size while no section has filled it."""
    return Finding(
        PREDICTED_VS_MEASURED,
        "No prediction: this report has no gradient-noise-scale probe results, so no "
        "predicted critical batch size (B_simple) stands next to the measured one.",
        workload, None, PENDING,
    )


@dataclass(frozen=True)
class FindingGroup:
    """Findings of one kind for one workload (or the whole experiment), in page order."""

    kind: str
    title: str
    findings: list[Finding]


def arrange_findings(
    findings: Iterable[Finding], workloads: Sequence[str]
) -> tuple[list[FindingGroup], dict[str, list[FindingGroup]]]:
    """Experiment-wide groups, and per workload its groups in :data:`KIND_TITLES` order.

    Every workload gets a :data:`PREDICTED_VS_MEASURED` group, holding
    :func:`pending_prediction` when no finding fills it. Findings of a workload not in
    ``workloads`` are kept under their own workload.
    """
    items = list(findings)
    names = list(dict.fromkeys([*workloads, *(f.workload for f in items if f.workload)]))
    for w in names:
        if not any(f.kind == PREDICTED_VS_MEASURED and f.workload == w for f in items):
            items.append(pending_prediction(w))
    known = list(KIND_TITLES)

    def groups(selected: list[Finding]) -> list[FindingGroup]:
        kinds = sorted(
            dict.fromkeys(f.kind for f in selected),
            key=lambda k: (known.index(k) if k in known else len(known), k),
        )
        return [
            FindingGroup(
                kind,
                KIND_TITLES.get(kind, kind.replace("-", " ").capitalize()),
                sorted(
                    (f for f in selected if f.kind == kind),
                    key=lambda f: -1.0 if f.sparsity is None else f.sparsity,
                ),
            )
            for kind in kinds
        ]

    general = groups([f for f in items if f.workload is None])
    per_workload = {w: groups([f for f in items if f.workload == w]) for w in names}
    return general, per_workload
