"""The 20%-overhead critical batch size of a measured curve (Zhang et al., ICLR 2025).

Linear (perfect) scaling from the smallest measured batch size ``B0`` predicts
``S_lin(B) = S(B0)·B0/B`` steps. The *overhead critical batch size* is the batch size at
which the measured steps first exceed that by 20%: ``S(B) = 1.2·S_lin(B)``, interpolated
linearly in log-log between the two measured points around the first crossing (in log-log
both ``S`` and ``S_lin`` are straight between points, so is their ratio). It needs no model
of the curve, unlike the fitted ``B_crit`` of ``S_min(1 + B_crit/B)``. A curve that never
exceeds it has its overhead batch size *beyond the largest measured*; one that exceeds it
already between its two smallest batch sizes is flagged (``first_pair``): linear scaling may
not hold even at ``B0``. Definitions and rules: docs/analysis.md, "Overhead critical batch
size".

Its bootstrap interval follows the censoring rules of :mod:`sparsedp.analysis.censoring`:
each resample draws every study's trials with replacement; a study whose resampled best is
censored contributes the ends of its range (its bound, its best known value or, with none, a
value beyond any budget or no result at all) and the resample keeps the range of the
overhead batch sizes so obtained; resamples beyond the largest measured batch size count as
``inf``. Too many censored resamples give "no interval: too few completed trials", never a
made-up number, and an interval with equal bounds is no interval.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sparsedp.analysis.censoring import (
    MAX_CENSORED,
    Outcomes,
    interval_or_reason,
    resample_curve_bests,
)
from sparsedp.analysis.fit import MAX_OPEN_STUDIES, stable_seed

OVERHEAD = 0.2
"""The overhead over linear scaling that defines the critical batch size (Zhang et al.)."""

MEASURED, BEYOND, TOO_FEW_POINTS = "measured", "beyond", "too-few-points"
BEYOND_NOTE = "no interval: beyond the largest measured batch size in some resamples"
_HUGE = 1e300  # a censored study without a known value: its steps may be arbitrarily many


def overhead_batch_size(batch_sizes: Sequence[float] | np.ndarray,
                        steps: Sequence[float] | np.ndarray,
                        overhead: float = OVERHEAD) -> tuple[float, bool]:
    """``(B_overhead, first_pair)`` of a curve: its points with a finite positive ``steps``
    (others are left out), sorted by batch size. ``B_overhead`` is ``inf`` when the curve
    never exceeds ``(1 + overhead)·S_lin`` (beyond the largest measured) and NaN with fewer
    than two points; ``first_pair`` is True when the crossing lies between the two smallest
    batch sizes."""
    b = np.asarray(batch_sizes, dtype=float)
    s = np.asarray(steps, dtype=float)
    ok = np.isfinite(b) & np.isfinite(s) & (b > 0) & (s > 0)
    order = np.argsort(b[ok], kind="stable")
    b, s = b[ok][order], s[ok][order]
    if len(b) < 2:
        return math.nan, False
    log_ratio = np.log(s) + np.log(b) - math.log(s[0] * b[0])  # log S/S_lin, 0 at B0
    limit = math.log1p(overhead)
    above = np.flatnonzero(log_ratio[1:] >= limit)
    if len(above) == 0:
        return math.inf, False
    i = int(above[0]) + 1
    lo, hi = log_ratio[i - 1], log_ratio[i]
    t = (limit - lo) / (hi - lo)
    value = math.exp(math.log(b[i - 1]) + t * (math.log(b[i]) - math.log(b[i - 1])))
    return value, i == 1


@dataclass(frozen=True)
class OverheadCrit:
    """One curve's 20%-overhead critical batch size and its bootstrap interval.

    ``state``: ``measured`` (``value`` is the interpolated batch size), ``beyond`` (the curve
    never exceeds the overhead up to ``largest``; ``value`` is None) or ``too-few-points``
    (fewer than two batch sizes with a result). ``ci`` is None with ``reason`` when there is
    no interval (too few completed trials, no spread, or beyond the largest measured batch
    size in too many resamples)."""

    state: str
    value: float | None
    first_pair: bool
    reference: int | None
    largest: int | None
    overhead: float = OVERHEAD
    ci: tuple[float, float] | None = None
    reason: str = ""
    n_resamples: int = 0
    censored_share: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``summary.json``: each curve's ``b_crit_overhead``)."""
        return {
            "value": self.value,
            "state": self.state,
            "overhead": self.overhead,
            "reference_batch_size": self.reference,
            "largest_batch_size": self.largest,
            "first_pair": self.first_pair,
            "ci": list(self.ci) if self.ci else None,
            "interval_note": self.reason or None,
            "bootstrap_resamples": self.n_resamples,
            "censored_share": self.censored_share,
        }


def overhead_crit(batch_sizes: Sequence[float] | np.ndarray, steps: Sequence[float] | np.ndarray,
                  outcomes: Mapping[int, Outcomes | np.ndarray] | None = None, *,
                  n_resamples: int = 200, seed: int = 0, confidence: float = 0.95,
                  key: str = "", overhead: float = OVERHEAD) -> OverheadCrit:
    """The overhead critical batch size of a curve (its measured best ``steps`` at
    ``batch_sizes``), with a bootstrap interval over ``outcomes`` (per batch size, the
    study's trials) when given and ``n_resamples > 0``."""
    b = np.asarray(batch_sizes, dtype=float)
    s = np.asarray(steps, dtype=float)
    sizes = sorted(int(x) for x, y in zip(b, s, strict=True) if np.isfinite(y) and y > 0)
    value, first = overhead_batch_size(b, s, overhead)
    reference, largest = (sizes[0], sizes[-1]) if sizes else (None, None)
    if math.isnan(value):
        return OverheadCrit(TOO_FEW_POINTS, None, False, reference, largest, overhead,
                            reason="no interval: fewer than two batch sizes with a result")
    state = BEYOND if math.isinf(value) else MEASURED
    base = OverheadCrit(state, None if state == BEYOND else value, first, reference, largest,
                        overhead)
    if not outcomes or n_resamples <= 0:
        return base
    lo, hi, share = _bootstrap(outcomes, n_resamples, seed, key, overhead)
    defined = ~np.isnan(lo)  # resamples with fewer than two points have no value
    lo, hi = lo[defined], hi[defined]
    ci, reason = interval_or_reason(lo, hi, share, confidence)
    beyond = float(np.mean(np.isinf(hi) & (lo > 0))) if len(hi) else 0.0
    if ci is None and share <= MAX_CENSORED and beyond > (1.0 - confidence) / 2:
        reason = BEYOND_NOTE
    return OverheadCrit(state, base.value, first, reference, largest, overhead, ci, reason,
                        n_resamples, share)


def _bootstrap(outcomes: Mapping[int, Outcomes | np.ndarray], n_resamples: int, seed: int,
               key: str, overhead: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Per resample the range ``[lo, hi]`` of overhead batch sizes (NaN: fewer than two
    points), and the largest share of resamples in which a study's best is censored."""
    rng = np.random.default_rng(stable_seed(seed, f"overhead:{key}"))
    sizes, lo, hi = resample_curve_bests(outcomes, rng, n_resamples)
    share = max((float(np.mean(lo[:, j] < hi[:, j])) for j in range(len(sizes))), default=0.0)
    grid = np.asarray(sizes, dtype=float)
    out_lo = np.full(n_resamples, np.nan)
    out_hi = np.full(n_resamples, np.nan)
    for r in range(n_resamples):
        open_cols = np.flatnonzero(lo[r] < hi[r])
        if len(open_cols) > MAX_OPEN_STUDIES:
            out_lo[r], out_hi[r] = -np.inf, np.inf
            continue
        ends = [(lo[r, c], hi[r, c]) if np.isfinite(hi[r, c]) else (lo[r, c], _HUGE, np.inf)
                for c in open_cols]
        values = []
        for choice in itertools.product(*ends):
            row = hi[r].copy()
            row[open_cols] = choice
            value, _ = overhead_batch_size(grid, row, overhead)
            if not math.isnan(value):
                values.append(value)
        if values:
            out_lo[r], out_hi[r] = min(values), max(values)
    return out_lo, out_hi, share
