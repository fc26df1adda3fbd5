"""Training-set size as part of a curve's identity, and B_crit against it.

A study trained on the first N examples of the training split (``train_examples = N``) draws
a curve of its own: the trial table's ``workload`` becomes ``"<workload> n=<N>"`` (the
*curve label*), so every analysis that groups by (workload, sparsity) keeps sizes apart,
and ``base_workload`` and ``train_examples`` keep the parts. A table without sizes is left
as it is. See docs/analysis.md, "Training-set size".
"""

from __future__ import annotations

import math

import pandas as pd


def _size(value: object) -> int | None:
    """A stored size as an int (None, NaN and pandas' NA: the whole split)."""
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else int(number)


def curve_workload(workload: str, train_examples: object) -> str:
    """The curve label: ``workload`` itself, or ``"<workload> n=<N>"`` with a size."""
    size = _size(train_examples)
    return workload if size is None else f"{workload} n={size}"


def with_curve_labels(frame: pd.DataFrame | None, trials: pd.DataFrame | None = None
                      ) -> pd.DataFrame | None:
    """``frame`` (trials, or seed repeats with ``trials`` giving each study key's size) with
    ``workload`` replaced by the curve label where a size is set; ``base_workload`` and
    ``train_examples`` added. Unchanged when no row has a size, or when already labelled."""
    if frame is None or len(frame) == 0 or "base_workload" in frame:
        return frame
    if "train_examples" in frame:
        sizes = frame["train_examples"]
    elif (trials is not None and "train_examples" in trials and "study_key" in trials
          and "study_key" in frame):
        by_key = dict(zip(trials["study_key"], trials["train_examples"], strict=True))
        sizes = frame["study_key"].map(by_key)
    else:
        return frame
    sizes = sizes.map(_size)
    if sizes.isna().all():
        return frame
    out = frame.copy()
    out["base_workload"] = out["workload"]
    out["train_examples"] = sizes.astype("Int64")
    out["workload"] = [curve_workload(str(w), n) for w, n in zip(out["base_workload"], sizes,
                                                                  strict=True)]
    return out


def curve_sizes(trials: pd.DataFrame | None) -> dict[str, tuple[str, int]]:
    """Curve label → (base workload, training examples), for labelled curves only."""
    if trials is None or "base_workload" not in trials or len(trials) == 0:
        return {}
    rows = trials.dropna(subset=["train_examples"]).drop_duplicates("workload")
    return {str(r.workload): (str(r.base_workload), int(r.train_examples))
            for r in rows.itertuples()}
