"""The regimes finding: perfect scaling, diminishing returns and maximal data parallelism."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparsedp.report.finding import NOT_ENOUGH, OK, REGIMES, Finding, _at, _range
from sparsedp.report.format import batch


def regimes_finding(curve: Mapping[str, Any]) -> Finding:
    """Perfect scaling, diminishing returns and maximal data parallelism of one curve."""
    w, s, reg = curve["workload"], float(curve["sparsity"]), curve["regimes"]
    sizes = [int(b) for b in curve["batch_sizes"]]
    end, onset = reg["perfect_scaling_end"], reg["max_parallelism_onset"]
    values = {"perfect_scaling_end": end, "max_parallelism_onset": onset, "batch_sizes": sizes}
    if len(sizes) < 2:
        have = f"only B = {sizes[0]} has a result" if sizes else "no batch size has a result"
        return Finding(
            REGIMES, f"{_at(s)}: not enough results for regimes ({have}; they need two).",
            w, s, NOT_ENOUGH, values,
        )
    tol, fraction = 100 * reg["tol"], 100 * reg["fraction"]
    if end == sizes[0]:
        parts = [
            f"no perfect scaling beyond B = {batch(end)} (the first doubling measured already "
            f"falls more than {tol:g}% short of halving the steps)"
        ]
    else:
        parts = [f"perfect scaling up to B = {batch(end)}"]
    if onset is not None:
        if onset > end:
            parts.append(f"diminishing returns from {batch(end)} to {batch(onset)}")
        parts.append(_plateau(onset, reg, fraction))
    elif sizes[-1] > end:
        parts.append(f"diminishing returns above it, with no plateau up to B = {batch(sizes[-1])}")
    text = f"{_at(s)} (measured {_range(sizes)}): " + ", ".join(parts) + "."
    if end == sizes[-1]:
        text += (
            f" Every doubling measured halved the steps (within {tol:g}%): "
            "larger batch sizes may still pay off."
        )
    elif end > sizes[0]:
        text += f" Up to B = {batch(end)} each added worker pays off fully"
        text += f"; above B = {batch(onset)} {_beyond(reg)}." if onset else "."
    elif onset is not None:
        text += f" Above B = {batch(onset)} {_beyond(reg)}."
    return Finding(REGIMES, text, w, s, OK, values)


def _falls_again(reg: Mapping[str, Any]) -> bool:
    later = reg.get("later_saving")
    return later is not None and later >= reg["fraction"]


def _plateau(onset: int, reg: Mapping[str, Any], fraction: float) -> str:
    """The onset as the rule defines it: the first doubling that saves less than the
    fraction; and, when a later doubling saves more again, by how much."""
    text = (f"maximal data parallelism from B = {batch(onset)} on by the {fraction:g}% rule "
            f"(the first doubling, from {batch(onset)}, that saves less than {fraction:g}% "
            "of the steps)")
    if _falls_again(reg):
        lo, hi = reg["later_saving_between"]
        text += (f", but the curve falls again: {100 * reg['later_saving']:.0f}% per doubling "
                 f"from {batch(lo)} to {batch(hi)}, so no clean plateau")
    return text


def _beyond(reg: Mapping[str, Any]) -> str:
    if _falls_again(reg):
        return "extra workers pay off little and unevenly"
    return "extra workers are wasted"
