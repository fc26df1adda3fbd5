"""The mask-health finding: curves whose trials started from unhealthy masks.

Every trial stores its mask's health (:mod:`sparsedp.pruning.health`) in its mask report.
A mask is unhealthy when an output class or a whole layer is cut off, or the pruned
network's initial loss is not finite or above ``2·ln(classes)``
(:func:`~sparsedp.pruning.health.unhealthy_reasons`, applied again to the stored numbers).
Per curve (workload, sparsity) with any unhealthy trial, one warning names the studies
(batch sizes) concerned, how many trials, and the worst initial loss and classes cut off:
their steps to result measure a network that starts broken, not the method at its best.
Curves whose masks are all healthy, and trials stored before health was measured, add
nothing. See docs/pruners.md ("Mask health").
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sparsedp.pruning.health import LOSS_FACTOR, unhealthy_reasons
from sparsedp.report.findings import WARNING, Finding
from sparsedp.report.format import sparsity as sparsity_text
from sparsedp.report.sections import FindingSource, ReportInputs

MASK_HEALTH = "mask-health"  # titled "Mask health" (after the known kinds)


def _health(row: Mapping[str, Any]) -> Mapping[str, Any] | None:
    report = row.get("mask_json")
    if isinstance(report, str):
        try:
            report = json.loads(report)
        except ValueError:
            return None
    health = report.get("health") if isinstance(report, Mapping) else None
    return health if isinstance(health, Mapping) else None


def mask_health_findings(rows: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """A warning per curve with unhealthy masks; ``rows``: stored trials with ``workload``,
    ``sparsity``, ``batch_size`` and ``mask_json`` (text or dict)."""
    curves: dict[tuple[str, float], list[tuple[int, Mapping[str, Any], list[str]]]] = {}
    for row in rows:
        health = _health(row)
        if health is None:
            continue
        key = (str(row["workload"]), float(row["sparsity"]))
        curves.setdefault(key, []).append(
            (int(row["batch_size"]), health, unhealthy_reasons(health)))
    out = []
    for (workload, s), trials in sorted(curves.items()):
        bad = [(b, h, why) for b, h, why in trials if why]
        if bad:
            out.append(_finding(workload, s, len(trials), bad))
    return out


def _finding(workload: str, s: float, n: int,
             bad: list[tuple[int, Mapping[str, Any], list[str]]]) -> Finding:
    sizes = sorted({b for b, _, _ in bad})
    losses = [h.get("initial_loss") for _, h, _ in bad if "initial_loss" in h]
    finite = [v for v in losses if v is not None]
    classes = next((h.get("num_classes") for _, h, _ in bad if h.get("num_classes")), None)
    cut = max(int(h.get("classes_cut_off") or 0) for _, h, _ in bad)
    where = "dense network" if s == 0 else f"{sparsity_text(s)} sparsity"
    parts = []
    if finite and classes:
        parts.append(f"initial loss up to {max(finite):.3g} (healthy: at most "
                     f"{LOSS_FACTOR:g}·ln {classes} = {LOSS_FACTOR * math.log(classes):.3g})")
    if len(finite) < len(losses):
        parts.append(f"{len(losses) - len(finite)} with a non-finite initial loss")
    if cut:
        parts.append(f"up to {cut} output class{'es' if cut != 1 else ''} cut off")
    layers = sum(1 for _, _, why in bad if any(r.startswith("every unit") for r in why))
    if layers:
        parts.append(f"{layers} with a whole layer cut off")
    text = (f"At {where}: {len(bad)} of {n} trials started from an unhealthy mask "
            f"(studies B = {', '.join(map(str, sizes))}): {'; '.join(parts)}. Their steps to "
            "result measure a network that starts broken.")
    values = {"trials": n, "unhealthy_trials": len(bad), "batch_sizes": sizes,
              "max_initial_loss": max(finite) if finite else None,
              "max_classes_cut_off": cut, "num_classes": classes,
              "reasons": sorted({r for _, _, why in bad for r in why})[:10]}
    return Finding(MASK_HEALTH, text, workload, s, WARNING, values)


def mask_health_source(rows: Iterable[Mapping[str, Any]],
                       study_keys: Collection[str] | None = None) -> FindingSource:
    """A finding source over stored trial rows (``ResultStore.trial_rows``), those of
    ``study_keys`` only when given."""
    chosen = [r for r in rows if study_keys is None or r["study_key"] in study_keys]

    def source(inputs: ReportInputs) -> list[Finding]:
        return mask_health_findings(chosen)

    return source


__all__ = ["MASK_HEALTH", "mask_health_findings", "mask_health_source"]
