"""Short text for numbers, intervals and nested settings in the report."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sparsedp.plots.scaling import sparsity_label


def fmt(value: object, digits: int = 4) -> str:
    """Short text for a number (``—`` for missing)."""
    if value is None or value is pd.NA:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "—"
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{float(value):.{digits}g}"
    return str(value)


def number(value: object) -> str:
    """Four significant digits always (``—`` for missing or not finite): probe values."""
    if value is None:
        return "—"
    v = float(value)  # type: ignore[arg-type]
    return f"{v:.4g}" if math.isfinite(v) else "—"


def steps(value: object) -> str:
    """Steps (and other counts that may be fractional, like S_min) rounded to integers."""
    if value is None or value is pd.NA:
        return "—"
    v = float(value)  # type: ignore[arg-type]
    return f"{v:.0f}" if math.isfinite(v) else "—"


def sparsity(value: object) -> str:
    """``90%``-style label of a sparsity (``—`` for missing)."""
    return sparsity_label(float(value)) if value is not None else "—"  # type: ignore[arg-type]


def interval(ci: Sequence[float] | None, digits: int = 4) -> str:
    """``[lo, hi]`` (``—`` without an interval)."""
    return f"[{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]" if ci else "—"


def batch(value: float) -> str:
    """A batch size for a sentence: measured ones exactly (``1,024``), fitted ones (not
    integers) to three significant digits (``1,230``, ``99``, ``4.5``)."""
    v = float(value)
    if v.is_integer():
        return f"{int(v):,}"
    if v >= 100:
        return f"{float(f'{v:.3g}'):,.0f}"
    return f"{v:.0f}" if v >= 10 else f"{v:.2g}"


def times(value: float) -> str:
    """A ratio for a sentence: ``0.78×``, ``2.5×``, ``1.0×``, ``12×``."""
    if value >= 10:
        return f"{value:.0f}×"
    return f"{value:.1f}×" if value >= 1 else f"{value:.2f}×"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted.key, text)`` rows of a nested mapping; lists of mappings are counted."""
    items: list[tuple[str, str]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            items.extend(flatten(value, name + "."))
        elif isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
            items.append((name, f"{len(value)} entries"))
        elif isinstance(value, (list, tuple)):
            items.append((name, ", ".join(fmt(v) for v in value)))
        else:
            items.append((name, fmt(value)))
    return items


def safe_name(text: str) -> str:
    """A file-name-safe version of ``text``. A name that had to change ends in a short hash
    of the original, so two names never share a file (``a<b`` and ``a>b``, or an imported
    ``mnist/cnn/sgd`` and ``mnist_cnn_sgd``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "figure"
    return name if name == text else f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
