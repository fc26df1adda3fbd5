"""Scaling regimes read off a measured steps-to-result curve.

* **Perfect scaling** ends at the largest measured ``B_k`` such that every measured
  ``B_j <= B_k`` has ``S(B_j) <= (1 + tol)·S(B_0)·B_0/B_j`` (``B_0``: the smallest batch
  size with a result; default ``tol = 0.25``).
* **Maximal data parallelism** starts at the smallest measured ``B_i`` whose step to the
  next measured batch size, normalised per doubling, removes less than a fraction ``f`` of
  the steps: ``1 − (S(B_{i+1})/S(B_i))^(1/log2(B_{i+1}/B_i)) < f`` (default ``f = 0.1``).
  None if that never happens on the measured range. It is the *first* such doubling: later
  doublings may save more again (a noisy or still-falling curve), so ``later_saving`` records
  the largest per-doubling saving measured beyond the onset, and the report says when it
  reaches ``f``.
* **Diminishing returns** lie between the two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERFECT_SCALING_TOL = 0.25
MAX_PARALLELISM_FRACTION = 0.1


@dataclass(frozen=True)
class Regimes:
    """Regime boundaries of one curve (batch sizes; None when undefined)."""

    perfect_scaling_end: int | None
    max_parallelism_onset: int | None
    tol: float
    fraction: float
    # the largest per-doubling saving between measured points beyond the onset, and the pair
    # (B_i, B_i+1) it was measured between; None without an onset or a later pair
    later_saving: float | None = None
    later_saving_between: tuple[int, int] | None = None


def _sorted_points(
    batch_sizes: Sequence[float] | np.ndarray, steps: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(batch_sizes, dtype=float)
    s = np.asarray(steps, dtype=float)
    ok = np.isfinite(b) & np.isfinite(s) & (b > 0) & (s > 0)
    order = np.argsort(b[ok], kind="mergesort")
    return b[ok][order], s[ok][order]


def perfect_scaling_end(
    batch_sizes: Sequence[float] | np.ndarray,
    steps: Sequence[float] | np.ndarray,
    tol: float = PERFECT_SCALING_TOL,
) -> int | None:
    """Largest batch size up to which every point is within ``1 + tol`` of perfect scaling.

    Perfect scaling is the line ``S(B_0)·B_0/B`` through the first measured point. Returns
    None for an empty curve (a single point is its own end).
    """
    b, s = _sorted_points(batch_sizes, steps)
    if len(b) == 0:
        return None
    reference = s[0] * b[0] / b
    end = b[0]
    for bj, sj, rj in zip(b, s, reference, strict=True):
        if sj > (1.0 + tol) * rj:
            break
        end = bj
    return int(end)


def max_parallelism_onset(
    batch_sizes: Sequence[float] | np.ndarray,
    steps: Sequence[float] | np.ndarray,
    fraction: float = MAX_PARALLELISM_FRACTION,
) -> int | None:
    """Smallest batch size past which a doubling cuts steps by less than ``fraction``.

    The reduction from ``B_i`` to the next measured ``B_{i+1}`` is normalised per doubling:
    ``1 − (S_{i+1}/S_i)^(1/log2(B_{i+1}/B_i))``. None when no such batch size is measured.
    """
    b, s = _sorted_points(batch_sizes, steps)
    for i in range(len(b) - 1):
        doublings = math.log2(b[i + 1] / b[i])
        if doublings <= 0:
            continue
        reduction = 1.0 - (s[i + 1] / s[i]) ** (1.0 / doublings)
        if reduction < fraction:
            return int(b[i])
    return None


def largest_saving_after(
    batch_sizes: Sequence[float] | np.ndarray,
    steps: Sequence[float] | np.ndarray,
    start: float,
) -> tuple[float, tuple[int, int]] | None:
    """The largest per-doubling saving between consecutive measured points from the one
    after ``start`` on, and its pair of batch sizes; None if fewer than two such points."""
    b, s = _sorted_points(batch_sizes, steps)
    best: tuple[float, tuple[int, int]] | None = None
    for i in range(len(b) - 1):
        if b[i] <= start:
            continue
        doublings = math.log2(b[i + 1] / b[i])
        if doublings <= 0:
            continue
        saving = 1.0 - (s[i + 1] / s[i]) ** (1.0 / doublings)
        if best is None or saving > best[0]:
            best = (float(saving), (int(b[i]), int(b[i + 1])))
    return best


def regimes(
    batch_sizes: Sequence[float] | np.ndarray,
    steps: Sequence[float] | np.ndarray,
    *,
    tol: float = PERFECT_SCALING_TOL,
    fraction: float = MAX_PARALLELISM_FRACTION,
) -> Regimes:
    """Both regime boundaries of a measured curve, and what beyond the onset saves."""
    onset = max_parallelism_onset(batch_sizes, steps, fraction)
    later = None if onset is None else largest_saving_after(batch_sizes, steps, onset)
    return Regimes(
        perfect_scaling_end=perfect_scaling_end(batch_sizes, steps, tol),
        max_parallelism_onset=onset,
        tol=tol,
        fraction=fraction,
        later_saving=None if later is None else later[0],
        later_saving_between=None if later is None else later[1],
    )
