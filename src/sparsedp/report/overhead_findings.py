"""The 20%-overhead critical batch size of each curve as a finding, beside the fitted one.

One sentence per curve from ``summary["curves"][i]["b_crit_overhead"]``
(:mod:`sparsedp.analysis.overhead`; docs/analysis.md, "Overhead critical batch size"). It
is of kind :data:`~sparsedp.report.findings.CRITICAL_BATCH`, so it sits under the same
heading, right after the fitted ``B_crit`` of the same sparsity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparsedp.report.findings import CRITICAL_BATCH, NOT_ENOUGH, OK, WARNING, Finding
from sparsedp.report.format import batch
from sparsedp.report.format import sparsity as sparsity_text


def _at(sparsity: float) -> str:
    return "For the dense network" if sparsity == 0 else f"At {sparsity_text(sparsity)} sparsity"


def overhead_finding(curve: Mapping[str, Any], options: Mapping[str, Any]) -> Finding | None:
    """The curve's overhead critical batch size as a sentence (None when not computed)."""
    found = curve.get("b_crit_overhead")
    if not found:
        return None
    w, s = curve["workload"], float(curve["sparsity"])
    sizes = [int(b) for b in curve["batch_sizes"]]
    pct = f"{100 * float(found['overhead']):.0f}%"
    if found["state"] == "too-few-points":
        return Finding(CRITICAL_BATCH,
                       f"{_at(s)}: not enough results for the {pct}-overhead critical batch "
                       "size (it needs two batch sizes with a result).",
                       w, s, NOT_ENOUGH, found)
    b0, largest = found["reference_batch_size"], found["largest_batch_size"]
    if found["state"] == "beyond":
        return Finding(CRITICAL_BATCH,
                       f"{_at(s)}, the steps stay within {pct} of linear scaling from "
                       f"B = {batch(b0)} up to the largest measured batch size "
                       f"(B = {batch(largest)}): the {pct}-overhead critical batch size lies "
                       "beyond the largest measured. Measure larger batch sizes.",
                       w, s, WARNING, found)
    ci = found.get("ci")
    conf = float(options.get("confidence", 0.95))
    interval = (f"{100 * conf:.0f}% interval {batch(ci[0])}–{batch(ci[1])}" if ci
                else found.get("interval_note") or "no bootstrap interval")
    fitted = curve.get("fit", {}).get("b_crit")
    beside = (f"the fitted B_crit is ≈ {batch(fitted)}" if fitted is not None
              else "no fitted B_crit")
    text = (f"{_at(s)}, the steps exceed linear scaling from B = {batch(b0)} by {pct} at "
            f"B ≈ {batch(found['value'])} ({interval}); this overhead critical batch size "
            f"needs no model of the curve ({beside}).")
    level = OK
    if found["first_pair"]:
        text += (f" It is exceeded already between the two smallest batch sizes "
                 f"(B = {batch(sizes[0])} and {batch(sizes[1])}): linear scaling may not hold "
                 f"even at B = {batch(b0)}. Measure smaller batch sizes.")
        level = WARNING
    return Finding(CRITICAL_BATCH, text, w, s, level, found)


def overhead_findings(summary: Mapping[str, Any]) -> list[Finding]:
    """One overhead finding per curve of ``summary`` (``analysis_to_dict``)."""
    found = (overhead_finding(curve, summary["options"]) for curve in summary["curves"])
    return [f for f in found if f is not None]
