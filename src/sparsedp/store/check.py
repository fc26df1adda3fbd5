"""Is an existing results database usable? Checked read-only, before a run writes to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sparsedp.store.sqlite import SCHEMA_VERSION, ResultStore


class StoreFileError(Exception):
    """The results database cannot be used as it is; the message is one line."""


def check_store(directory: str | Path) -> str:
    """Check ``<directory>/sparsedp.sqlite`` without changing it (a missing file is fine)."""
    path = Path(directory) / ResultStore.FILENAME
    if not path.exists():
        return f"results database {path}: new"
    fix = "move it away (or set `results` to another directory) and run again"
    if not path.is_file():
        raise StoreFileError(f"results database {path} is not a file; {fix}")
    if path.stat().st_size == 0:
        return f"results database {path}: empty"
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise StoreFileError(f"results database {path} cannot be opened ({exc}); {fix}") from exc
    try:
        problem = _problem(db)
    except sqlite3.DatabaseError as exc:
        raise StoreFileError(
            f"results database {path} is damaged or not a SQLite file ({exc}); {fix}"
        ) from exc
    finally:
        db.close()
    if problem:
        text, own_fix = problem
        raise StoreFileError(f"results database {path} {text}; {own_fix or fix}")
    return f"results database {path}: schema {SCHEMA_VERSION}, intact"


# The tables and columns of schema version 1 as it first shipped. Every later sparsedp reads
# such a file (columns added since are added in place when a run opens it), so these are what
# makes a file a sparsedp results database.
REQUIRED_COLUMNS: dict[str, frozenset[str]] = {
    "meta": frozenset({"key", "value"}),
    "experiments": frozenset({"name", "config_json", "created", "updated"}),
    "studies": frozenset({"key", "workload", "dataset", "model", "optimizer", "sparsity",
                          "batch_size", "spec_json", "created"}),
    "experiment_studies": frozenset({"experiment", "study_key", "position"}),
    "trials": frozenset({
        "study_key", "trial_index", "seed", "lr", "momentum", "decay_steps", "end_lr_factor",
        "status", "steps_to_result", "steps_taken", "final_val_error", "final_error_exact",
        "curve_json", "wall_time", "train_time", "eval_time", "prune_time",
        "samples_per_second", "eval_share", "eval_examples", "message", "attempts",
        "mask_json", "engine_json", "provenance_json", "finished",
    }),
    "failures": frozenset({"study_key", "trial_index", "attempt", "error", "traceback",
                           "time"}),
}


def _problem(db: sqlite3.Connection) -> tuple[str, str | None] | None:
    """What is wrong (and a fix, when the general one does not fit), or None."""
    result = db.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        return f"is damaged (SQLite quick_check: {result})", None
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None  # an empty SQLite file: the store creates its tables
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None and not (str(row[0]).isdigit() and int(row[0]) <= SCHEMA_VERSION):
            return (f"was written by a newer sparsedp (schema {row[0]}; this one reads up to "
                    f"{SCHEMA_VERSION})", "upgrade sparsedp, or point `results` elsewhere")
    for table, columns in REQUIRED_COLUMNS.items():
        if table not in tables:
            return f"is not a sparsedp results database (no table {table!r})", None
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        missing = sorted(set(columns) - present)
        if missing:
            return (f"is not a sparsedp results database (table {table!r} lacks "
                    f"{', '.join(missing)})", None)
    return None
