"""The ``probes`` table: noise-scale and Lipschitz measurements along stored trials.

One row per (study, trial, kind, step); probing a trial again replaces its rows of that kind
(the settings used are in ``detail_json``). ``value`` is B_simple (kind ``noise_scale``) or
L (kind ``lipschitz``), NULL where not finite (``detail_json`` says why); ``low``/``high``
bound B_simple's interval (``high`` NULL: unbounded above).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

PROBE_KINDS = ("noise_scale", "lipschitz")

PROBE_SCHEMA = """
CREATE TABLE IF NOT EXISTS probes (
    study_key TEXT NOT NULL,
    trial_index INTEGER NOT NULL,
    kind TEXT NOT NULL,
    step INTEGER NOT NULL,
    value REAL,
    low REAL,
    high REAL,
    detail_json TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (study_key, trial_index, kind, step)
);
"""


def _finite(value: object) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None  # type: ignore[arg-type]


def replace_probe_rows(db: sqlite3.Connection, study_key: str, trial_index: int, kind: str,
                       rows: Iterable[Mapping[str, Any]]) -> int:
    """Replace the trial's rows of ``kind`` by ``rows`` (inside the caller's transaction).

    Each row has ``step``, ``value``, optional ``low``/``high`` and ``detail`` (a dict).
    Returns the number of earlier rows removed.
    """
    if kind not in PROBE_KINDS:
        raise ValueError(f"unknown probe kind {kind!r}; known: {', '.join(PROBE_KINDS)}")
    removed = db.execute(
        "DELETE FROM probes WHERE study_key = ? AND trial_index = ? AND kind = ?",
        (study_key, trial_index, kind),
    ).rowcount
    now = time.time()
    for row in rows:
        db.execute(
            "INSERT INTO probes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (study_key, trial_index, kind, int(row["step"]), _finite(row["value"]),
             _finite(row.get("low")), _finite(row.get("high")),
             json.dumps(_clean(row.get("detail", {})), sort_keys=True, allow_nan=False), now),
        )
    return int(removed)


def _clean(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no inf or NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def read_probe_rows(db: sqlite3.Connection, study_keys: Iterable[str] | None = None
                    ) -> list[dict[str, Any]]:
    """All probe rows (of ``study_keys``), by study, trial, kind and step; [] in a file
    written before the table existed."""
    present = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'probes'"
    ).fetchone()
    if not present:
        return []
    rows = db.execute(
        "SELECT study_key, trial_index, kind, step, value, low, high, detail_json FROM probes "
        "ORDER BY study_key, trial_index, kind, step"
    ).fetchall()
    keys = None if study_keys is None else set(study_keys)
    out = []
    for r in rows:
        if keys is not None and r[0] not in keys:
            continue
        out.append({"study_key": r[0], "trial_index": int(r[1]), "kind": r[2], "step": int(r[3]),
                    "value": r[4], "low": r[5], "high": r[6], "detail": json.loads(r[7])})
    return out
