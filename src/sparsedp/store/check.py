"""Is an existing results database usable? Checked read-only, before a run writes to it and
before any command reads it (every read goes through :mod:`sparsedp.api.stored`)."""

from __future__ import annotations

import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sparsedp.store.sqlite import SCHEMA_VERSION, ResultStore


class StoreFileError(Exception):
    """The results database cannot be used as it is; the message is one line."""


NEW, EMPTY, INTACT = "new", "empty", "intact"
FIX = "move it away (or set `results` to another directory) and run again"


@dataclass(frozen=True)
class StoreState:
    """What :func:`inspect_store` found: ``state`` is ``new`` (no file), ``empty`` (a file
    without tables yet: the store creates them) or ``intact`` (sparsedp's schema, no damage
    found by SQLite's ``quick_check``)."""

    path: Path
    state: str

    @property
    def line(self) -> str:
        """The line ``sparsedp run`` prints for this check."""
        if self.state == INTACT:
            return f"results database {self.path}: schema {SCHEMA_VERSION}, intact"
        return f"results database {self.path}: {self.state}"


def check_store(directory: str | Path) -> str:
    """Check ``<directory>/sparsedp.sqlite`` without changing it (a missing file is fine);
    returns the line saying so, or raises :class:`StoreFileError` (one line)."""
    return inspect_store(directory).line


def inspect_store(directory: str | Path) -> StoreState:
    """The state of ``<directory>/sparsedp.sqlite``, read-only; :class:`StoreFileError`
    (one line: what, which file, how to fix) when it is damaged, not a file, not a SQLite
    file, not sparsedp's or written by a newer sparsedp."""
    path = Path(directory) / ResultStore.FILENAME
    if not path.exists():
        return StoreState(path, NEW)
    if not path.is_file():
        raise StoreFileError(f"results database {path} is not a file; {FIX}")
    if path.stat().st_size == 0:
        return StoreState(path, EMPTY)
    recover = f"sqlite3 {shlex.quote(str(path))} .recover"
    damaged = (f"restore it from a backup or salvage its rows (`{recover}`), then move the "
               "damaged file away (or set `results` to another directory)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise StoreFileError(f"results database {path} cannot be opened ({exc}); {FIX}") \
            from exc
    try:
        problem = _problem(db)
    except sqlite3.OperationalError as exc:  # unreadable, locked, …: not proof of damage
        raise StoreFileError(f"results database {path} cannot be read ({exc}); check its "
                             "permissions and that no other program holds it") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreFileError(
            f"results database {path} is damaged or not a SQLite file ({exc}); {damaged}"
        ) from exc
    finally:
        db.close()
    if problem is None:
        return StoreState(path, INTACT)
    if problem == EMPTY:
        return StoreState(path, EMPTY)
    text, own_fix = problem
    raise StoreFileError(f"results database {path} {text}; {own_fix or damaged}")


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


def quick_check_summary(rows: list[tuple[str]]) -> str | None:
    """SQLite's ``quick_check`` rows as one line (None: ``ok``). A row may hold several
    lines (``*** in database main ***`` then one problem a line): the first problem is
    shown, and how many more there are."""
    problems = [line.strip() for row in rows for line in str(row[0]).splitlines()
                if line.strip() and not line.strip().startswith("***")]
    if not problems or problems == ["ok"]:
        return None
    more = len(problems) - 1
    return problems[0] + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def _problem(db: sqlite3.Connection) -> tuple[str, str | None] | str | None:
    """What is wrong (and a fix, when the general one does not fit), ``EMPTY`` (no tables
    yet), or None (intact)."""
    found = quick_check_summary(db.execute("PRAGMA quick_check").fetchall())
    if found is not None:
        return f"is damaged (SQLite quick_check: {found})", None
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return EMPTY  # an empty SQLite file: the store creates its tables
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None and not (str(row[0]).isdigit() and int(row[0]) <= SCHEMA_VERSION):
            return (f"was written by a newer sparsedp (schema {row[0]}; this one reads up to "
                    f"{SCHEMA_VERSION})", "upgrade sparsedp, or point `results` elsewhere")
    for table, columns in REQUIRED_COLUMNS.items():
        if table not in tables:
            return f"is not a sparsedp results database (no table {table!r})", FIX
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        missing = sorted(set(columns) - present)
        if missing:
            return (f"is not a sparsedp results database (table {table!r} lacks "
                    f"{', '.join(missing)})", FIX)
    return None
