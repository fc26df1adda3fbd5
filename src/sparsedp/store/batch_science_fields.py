"""Checks of the values in a batch_science layout's files before anything is stored.

Each reader returns the value as sparsedp stores it, or raises :class:`BatchScienceError`
with one line that names the file, the field, the value and what would be accepted.
Decisions: docs/batch-science.md ("Validation").
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from sparsedp.store.batch_science import BOUND_COLUMN, BatchScienceError

INT64_MAX = 2**63 - 1
"""The largest whole number SQLite stores (larger ones are refused, not truncated)."""


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()
"""What :func:`value_of` gives for a field a JSON object lacks."""


def value_of(document: dict[str, Any], name: str) -> Any:
    """``document[name]``, or :data:`MISSING`."""
    return document.get(name, MISSING)


def show(value: object) -> str:
    """A short ``repr`` of a value for a message (one line, at most about 40 characters)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def bad(path: Path, field: str, value: object, expected: str) -> BatchScienceError:
    """The one-line error for a field of ``path`` that holds no acceptable value."""
    return BatchScienceError(f"{path}: {field} is {show(value)}, expected {expected}; fix "
                             "that value or remove the file's folder from the import")


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (a regular file)."""
    if not path.is_file():
        raise BatchScienceError(f"{path}: missing or not a file; every trial folder needs "
                                "metadata.json and measurements.csv")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BatchScienceError(f"{path}: cannot read it as JSON ({reason}); fix or remove "
                                "that file") from None
    if not isinstance(data, dict):
        raise BatchScienceError(f"{path}: expected a JSON object, found {type(data).__name__};"
                                " fix or remove that file")
    return data


def whole(value: object, path: Path, field: str, *, minimum: int | None = 0) -> int:
    """A whole number (an integral float such as ``16.0`` too; not a bool or text) of at
    least ``minimum`` (none: any) that SQLite can store."""
    low = "" if minimum is None else f" >= {minimum}"
    expected = f"a whole number{low}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(path, field, value, expected)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise bad(path, field, value, expected)
    number = int(value)
    if minimum is not None and number < minimum:
        raise bad(path, field, value, expected)
    if abs(number) > INT64_MAX:
        raise bad(path, field, value, f"a whole number up to {INT64_MAX}")
    return number


def finite(value: object, path: Path, field: str) -> float:
    """A finite number (not a bool, text, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(path, field, value, "a finite number")
    number = float(value)
    if not math.isfinite(number):
        raise bad(path, field, value, "a finite number")
    return number


def optional(reader, value: object, path: Path, field: str, **options: Any) -> Any:
    """``reader``'s value, or None for a missing or null one."""
    return None if value is None or value is MISSING else reader(value, path, field, **options)


def fraction(value: object, path: Path, field: str, *, closed_low: bool) -> float:
    """A number in [0, 1) (``closed_low``) or (0, 1)."""
    expected = "a number in [0, 1)" if closed_low else "a number in (0, 1)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(path, field, value, expected)
    number = float(value)  # NaN fails both comparisons below
    if not (0 <= number < 1 if closed_low else 0 < number < 1):
        raise bad(path, field, value, expected)
    return number


def text(value: object, path: Path, field: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise bad(path, field, value, "a non-empty text")
    return value


def flag(value: object, path: Path, field: str) -> bool:
    """``true``/``false`` (0 and 1 too, as sparsedp's own exports store some flags)."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise bad(path, field, value, "true or false")


def json_text(value: object, path: Path, field: str) -> str:
    """Text that holds a JSON object (sparsedp's stored mask, engine, provenance)."""
    if isinstance(value, str):
        try:
            if isinstance(json.loads(value), dict):
                return value
        except ValueError:
            pass
    raise bad(path, field, value, "a JSON object as text")


def mapping(value: object, path: Path, field: str) -> dict[str, Any]:
    """A JSON object (an empty one for a missing or null value)."""
    if value is None or value is MISSING:
        return {}
    if not isinstance(value, dict):
        raise bad(path, field, value, "a JSON object")
    return value


def _cell(text_value: str, path: Path, line: int, column: str) -> float:
    """A measured value: a number; NaN and infinity stand for a diverged measurement."""
    try:
        return float(text_value)
    except ValueError:
        raise BatchScienceError(f"{path}: line {line}, column {column!r} is "
                                f"{show(text_value)}, expected a number or nothing; fix "
                                "that value or remove the trial folder") from None


def _step(text_value: str, path: Path, line: int) -> int:
    try:
        number = float(text_value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number.is_integer() and 0 <= number <= INT64_MAX):
        raise BatchScienceError(f"{path}: line {line}, column 'step' is {show(text_value)}, "
                                "expected a whole number >= 0; fix that value or remove the "
                                "trial folder")
    return int(number)


def read_measurements(path: Path, metric: str) -> list[tuple[int, float, bool]]:
    """``(step, value, exact)`` of ``metric`` at every row that measured it (or the lower
    bound sparsedp's early-exit checks store instead), by step."""
    if not path.is_file():
        raise BatchScienceError(f"{path}: missing or not a file; every trial folder needs "
                                "metadata.json and measurements.csv")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BatchScienceError(f"{path}: cannot read it ({exc}); fix or remove that "
                                "trial directory") from None
    if rows and (metric not in columns or "step" not in columns):
        raise BatchScienceError(f"{path}: no column {metric!r} (columns: "
                                f"{', '.join(map(str, columns))}); choose one with --metric")
    curve = []
    for line, row in enumerate(rows, start=2):
        value, bound = row.get(metric) or "", row.get(BOUND_COLUMN) or ""
        if value.strip():
            curve.append((_step(row["step"] or "", path, line),
                          _cell(value, path, line, metric), True))
        elif bound.strip():
            curve.append((_step(row["step"] or "", path, line),
                          _cell(bound, path, line, BOUND_COLUMN), False))
    return sorted(curve, key=lambda c: c[0])
