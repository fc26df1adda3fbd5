"""SQLite results store.

Each trial is written in one transaction the moment it ends, so an interrupted experiment
loses at most the trials that were still running. WAL mode lets ``status``/``report`` read
while a run writes. A trial is identified by (study key, trial index): writing it twice is
refused unless the caller asks to replace it (used only to upgrade a ``stopped`` trial when
stopping is switched off). Seed repeats of a study's best trial (``sparsedp repeat``) live
in their own table, ``repeats``, added in place to older files (tables added after schema
version 1 are optional: a file without them reads as having none).

Trials belong to studies, and experiments sharing a results directory share the trials of
identical studies (same key). An experiment's own trials are those its configuration asks
for: search trials ``0 … trials-1`` and refine trials ``REFINE_BASE + 0 … + refine.trials-1``
(:class:`TrialScope`); an experiment's reads (:meth:`ResultStore.trial_rows`, and the run's
ledger reads once :meth:`ResultStore.register_experiment` named it) leave out the others, e.g.
trials 8–31 of a study another experiment searched with 32 trials (docs/decisions.md).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sparsedp.execution.records import TrialRecord
from sparsedp.store.probes import PROBE_SCHEMA, read_probe_rows, replace_probe_rows
from sparsedp.store.scope import TrialScope

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    config_json TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS studies (
    key TEXT PRIMARY KEY,
    workload TEXT NOT NULL,
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    sparsity REAL NOT NULL,
    batch_size INTEGER NOT NULL,
    spec_json TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS experiment_studies (
    experiment TEXT NOT NULL REFERENCES experiments(name),
    study_key TEXT NOT NULL REFERENCES studies(key),
    position INTEGER NOT NULL,
    current INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (experiment, study_key)
);
CREATE TABLE IF NOT EXISTS trials (
    study_key TEXT NOT NULL REFERENCES studies(key),
    trial_index INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    lr REAL, momentum REAL, decay_steps REAL, end_lr_factor REAL,
    status TEXT NOT NULL,
    steps_to_result INTEGER,
    steps_taken INTEGER NOT NULL,
    final_val_error REAL,
    final_error_exact INTEGER NOT NULL,
    curve_json TEXT NOT NULL,
    wall_time REAL, train_time REAL, eval_time REAL, prune_time REAL,
    samples_per_second REAL, eval_share REAL, eval_examples INTEGER,
    message TEXT,
    attempts INTEGER NOT NULL,
    peak_rss_mb REAL,
    mask_json TEXT,
    engine_json TEXT,
    provenance_json TEXT,
    finished REAL NOT NULL,
    stage TEXT,
    stage_json TEXT,
    PRIMARY KEY (study_key, trial_index)
);
CREATE TABLE IF NOT EXISTS repeats (
    study_key TEXT NOT NULL REFERENCES studies(key),
    source_trial INTEGER NOT NULL,
    repeat_index INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    data_seed INTEGER NOT NULL,
    lr REAL, momentum REAL, decay_steps REAL, end_lr_factor REAL,
    status TEXT NOT NULL,
    steps_to_result INTEGER,
    steps_taken INTEGER NOT NULL,
    final_val_error REAL,
    curve_json TEXT NOT NULL,
    wall_time REAL,
    message TEXT,
    attempts INTEGER NOT NULL,
    mask_json TEXT,
    engine_json TEXT,
    provenance_json TEXT,
    finished REAL NOT NULL,
    PRIMARY KEY (study_key, source_trial, repeat_index)
);
CREATE TABLE IF NOT EXISTS failures (
    study_key TEXT NOT NULL,
    trial_index INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    error TEXT NOT NULL,
    traceback TEXT,
    time REAL NOT NULL
);
"""

_TRIAL_FIELDS = (
    "study_key", "trial_index", "seed", "lr", "momentum", "decay_steps", "end_lr_factor",
    "status", "steps_to_result", "steps_taken", "final_val_error", "final_error_exact",
    "curve_json", "wall_time", "train_time", "eval_time", "prune_time", "samples_per_second",
    "eval_share", "eval_examples", "message", "attempts", "peak_rss_mb", "mask_json",
    "engine_json", "provenance_json", "finished", "stage", "stage_json",
)
_REPEAT_FIELDS = (
    "study_key", "source_trial", "repeat_index", "seed", "data_seed", "lr", "momentum",
    "decay_steps", "end_lr_factor", "status", "steps_to_result", "steps_taken",
    "final_val_error", "curve_json", "wall_time", "message", "attempts", "mask_json",
    "engine_json", "provenance_json", "finished",
)
# Columns added after schema version 1 first shipped: added in place to older files.
_ADDED_TRIAL_COLUMNS = {"peak_rss_mb": "REAL", "stage": "TEXT", "stage_json": "TEXT"}
_ADDED_LINK_COLUMNS = {"current": "INTEGER NOT NULL DEFAULT 1"}

TRIAL_COLUMNS = (
    "experiment", "study_key", "workload", "dataset", "dataset_label", "model", "optimizer",
    "sparsity", "batch_size", "trial_index", "seed", "lr", "momentum", "decay_steps",
    "end_lr_factor", "status", "steps_to_result", "steps_taken", "final_val_error",
    "final_error_exact", "goal_error", "max_steps", "eval_every", "wall_time",
    "samples_per_second", "eval_share", "eval_examples", "attempts", "peak_rss_mb", "message",
    "curve", "stop_hopeless", "keep_complete", "precision", "stage", "current",
    "train_examples",
)


class ResultStore:
    """The experiment directory's ``sparsedp.sqlite``."""

    FILENAME = "sparsedp.sqlite"

    def __init__(self, directory: str | Path, *, read_only: bool = False) -> None:
        self.directory = Path(directory)
        self.path = self.directory / self.FILENAME
        self.scope: TrialScope | None = None  # set by register_experiment: whose trials count
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(
                    f"no results at {self.path}: run the experiment first (`sparsedp run`)"
                )
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA + PROBE_SCHEMA)  # probes: added in place to old files
            self._migrate()
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        self._db.row_factory = sqlite3.Row

    def _migrate(self) -> None:
        present = {row[1] for row in self._db.execute("PRAGMA table_info(trials)")}
        for column, kind in _ADDED_TRIAL_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE trials ADD COLUMN {column} {kind}")
        present = {row[1] for row in self._db.execute("PRAGMA table_info(experiment_studies)")}
        for column, kind in _ADDED_LINK_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE experiment_studies ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------
    def register_experiment(self, name: str, config: dict, studies: Iterable[dict]) -> None:
        """Record the experiment's configuration and its studies (idempotent).

        ``studies`` become the experiment's *current* studies; studies it linked before
        (an earlier configuration: another goal, budget, pruning or seed) stay in the file
        with their trials but are no longer current, so reports and exports leave them out
        unless asked (:meth:`trial_rows` with ``all_studies``). From here on this store's
        ledger reads (:meth:`finished_trials`, :meth:`best_steps`, …) see only the trials
        the configuration asks for (:class:`TrialScope`), not those another experiment
        sharing the directory stored beyond them.
        """
        self.scope = TrialScope.of(config)
        now = time.time()
        with self._transaction():
            self._db.execute(
                "INSERT INTO experiments VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "config_json = excluded.config_json, updated = excluded.updated",
                (name, json.dumps(config, sort_keys=True), now, now),
            )
            self._db.execute(
                "UPDATE experiment_studies SET current = 0 WHERE experiment = ?", (name,)
            )
            for position, study in enumerate(studies):
                self._db.execute(
                    "INSERT OR IGNORE INTO studies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (study["key"], study["workload"], study["dataset"], study["model"],
                     study["optimizer"], study["sparsity"], study["batch_size"],
                     json.dumps(study["spec"], sort_keys=True), now),
                )
                self._db.execute(
                    "INSERT INTO experiment_studies (experiment, study_key, position, current) "
                    "VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE "
                    "SET position = excluded.position, current = 1",
                    (name, study["key"], position),
                )

    def write_trial(self, trial: TrialRecord, *, replace: bool = False) -> None:
        """Commit one finished trial atomically."""
        meta = trial.metaparameters
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        with self._transaction():
            self._db.execute(
                f"{verb} INTO trials ({', '.join(_TRIAL_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(_TRIAL_FIELDS))})",
                (
                    trial.study_key, trial.trial_index, trial.seed, meta.get("lr"),
                    meta.get("momentum"), meta.get("decay_steps"), meta.get("end_lr_factor"),
                    trial.status, trial.steps_to_result, trial.steps_taken,
                    trial.final_val_error, int(trial.final_error_exact),
                    json.dumps(trial.curve), trial.wall_time, trial.train_time,
                    trial.eval_time, trial.prune_time, trial.samples_per_second,
                    trial.eval_share, trial.eval_examples, trial.message, trial.attempts,
                    trial.peak_rss_mb,
                    json.dumps(trial.mask_report) if trial.mask_report is not None else None,
                    json.dumps(trial.engine) if trial.engine is not None else None,
                    json.dumps(trial.provenance) if trial.provenance is not None else None,
                    time.time(), trial.stage,
                    json.dumps(trial.stage_info) if trial.stage_info is not None else None,
                ),
            )

    def write_repeat(
        self, study_key: str, source_trial: int, repeat_index: int, data_seed: int,
        record: TrialRecord,
    ) -> None:
        """Commit one finished seed repeat of ``study_key``'s trial ``source_trial``
        (kept apart from the search's trials: :meth:`repeat_rows` reads them); a stored
        ``failed`` repeat is replaced."""
        meta = record.metaparameters
        with self._transaction():
            self._db.execute(
                f"INSERT OR REPLACE INTO repeats ({', '.join(_REPEAT_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(_REPEAT_FIELDS))})",
                (
                    study_key, source_trial, repeat_index, record.seed, data_seed,
                    meta.get("lr"), meta.get("momentum"), meta.get("decay_steps"),
                    meta.get("end_lr_factor"), record.status, record.steps_to_result,
                    record.steps_taken, record.final_val_error, json.dumps(record.curve),
                    record.wall_time, record.message, record.attempts,
                    json.dumps(record.mask_report) if record.mask_report is not None else None,
                    json.dumps(record.engine) if record.engine is not None else None,
                    json.dumps(record.provenance) if record.provenance is not None else None,
                    time.time(),
                ),
            )

    def record_failure(
        self, study_key: str, trial_index: int, attempt: int, error: str, traceback: str
    ) -> None:
        """Log one failed attempt of a trial (the trial itself is written separately)."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                (study_key, trial_index, attempt, error, traceback, time.time()),
            )

    def write_probes(self, study_key: str, trial_index: int, kind: str, rows: list[dict]) -> int:
        """Store a trial's probe measurements of one kind (store/probes.py); returns how many
        earlier rows they replaced."""
        with self._transaction():
            return replace_probe_rows(self._db, study_key, trial_index, kind, rows)

    def probe_rows(self, study_keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Stored probe measurements (of ``study_keys``)."""
        return read_probe_rows(self._db, study_keys)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """One transaction around several writes (``with store.transaction(): ...``): all
        of them commit at the end, or none of them does (an exception rolls back)."""
        return _Transaction(self._db)

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write's own transaction, or none inside :meth:`transaction`'s."""
        return contextlib.nullcontext() if self._db.in_transaction else _Transaction(self._db)

    # -- reading ---------------------------------------------------------------------------
    def finished_trials(self, study_key: str) -> dict[int, str]:
        """trial_index → status of every stored trial of a study (of the registered
        experiment's trials, :attr:`scope`, once there is one; so the reads below too)."""
        scoped, args = self._scoped()
        rows = self._db.execute(
            f"SELECT trial_index, status FROM trials WHERE study_key = ?{scoped}",
            (study_key, *args),
        ).fetchall()
        return {int(r["trial_index"]): r["status"] for r in rows}

    def best_steps(self, study_key: str) -> tuple[int, int] | None:
        """(steps_to_result, trial_index) of the study's best complete trial, if any."""
        scoped, args = self._scoped()
        row = self._db.execute(
            "SELECT steps_to_result, trial_index FROM trials WHERE study_key = ? AND "
            f"status = 'complete'{scoped} ORDER BY steps_to_result, trial_index LIMIT 1",
            (study_key, *args),
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def completed_steps(self, study_key: str) -> list[int]:
        """Steps-to-result of the study's complete trials, lowest first."""
        return [steps for steps, _ in self.completed_trials(study_key)]

    def completed_trials(self, study_key: str) -> list[tuple[int, int]]:
        """(steps_to_result, trial_index) of the study's complete trials, best first."""
        scoped, args = self._scoped()
        rows = self._db.execute(
            "SELECT steps_to_result, trial_index FROM trials WHERE study_key = ? AND "
            f"status = 'complete' AND steps_to_result IS NOT NULL{scoped} "
            "ORDER BY steps_to_result, trial_index", (study_key, *args),
        ).fetchall()
        return [(int(r[0]), int(r[1])) for r in rows]

    def stopped_steps(self, study_key: str) -> dict[int, int]:
        """trial_index → steps trained of the study's ``stopped`` trials."""
        scoped, args = self._scoped()
        rows = self._db.execute(
            "SELECT trial_index, steps_taken FROM trials WHERE study_key = ? AND "
            f"status = 'stopped'{scoped}", (study_key, *args),
        ).fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    def failure_count(self, study_key: str, trial_index: int) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM failures WHERE study_key = ? AND trial_index = ?",
            (study_key, trial_index),
        ).fetchone()
        return int(row[0])

    def experiment_names(self) -> list[str]:
        """Names of the experiments in this file, oldest first."""
        rows = self._db.execute("SELECT name FROM experiments ORDER BY created, name")
        return [str(r[0]) for r in rows.fetchall()]

    def experiment_config(self, name: str) -> dict | None:
        row = self._db.execute(
            "SELECT config_json FROM experiments WHERE name = ?", (name,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def trial_rows(self, experiment: str, *, all_studies: bool = False) -> list[dict[str, Any]]:
        """Stored trials of ``experiment``'s current studies joined with their study, in
        study order; with ``all_studies`` also those of studies an earlier configuration
        linked (current ones first). Each row's ``current`` is 1 or 0. Of the current
        studies, only the trials ``experiment``'s stored configuration asks for
        (:class:`TrialScope`): a study shared with another experiment that ran more trials
        shows this experiment's trials, not the other's."""
        scope = TrialScope.of(self.experiment_config(experiment))
        rows = self._db.execute(
            f"SELECT es.position, {self._current_column()} AS current, s.workload, s.dataset, "
            "s.model, s.optimizer, s.sparsity, s.batch_size, s.spec_json, t.* "
            "FROM experiment_studies es "
            "JOIN studies s ON s.key = es.study_key "
            "JOIN trials t ON t.study_key = es.study_key "
            "WHERE es.experiment = ? ORDER BY current DESC, es.position, t.trial_index",
            (experiment,),
        ).fetchall()
        return [dict(r) for r in rows if (all_studies or r["current"])
                and (scope is None or not r["current"] or r["trial_index"] in scope)]

    def study_rows(self, experiment: str, *, all_studies: bool = False) -> list[dict[str, Any]]:
        """The experiment's current studies in order, with their specs (``all_studies``:
        earlier configurations' studies too, after the current ones)."""
        rows = self._db.execute(
            f"SELECT es.position, {self._current_column()} AS current, s.* "
            "FROM experiment_studies es JOIN studies s ON s.key = es.study_key "
            "WHERE es.experiment = ? ORDER BY current DESC, es.position",
            (experiment,),
        ).fetchall()
        return [dict(r) for r in rows if all_studies or r["current"]]

    def finished_repeats(self, study_key: str, source_trial: int) -> dict[int, str]:
        """repeat index → status of the repeats stored for ``study_key``'s trial
        ``source_trial``."""
        rows = self._db.execute(
            "SELECT repeat_index, status FROM repeats WHERE study_key = ? AND source_trial = ?",
            (study_key, source_trial),
        ).fetchall()
        return {int(r[0]): str(r[1]) for r in rows}

    def repeat_rows(self, experiment: str) -> list[dict[str, Any]]:
        """Stored seed repeats of the studies ``experiment`` links (current or not), with
        their study's fields and ``current``; none in a file written before repeats existed."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "repeats" not in tables:
            return []
        rows = self._db.execute(
            f"SELECT {self._current_column()} AS current, s.workload, s.sparsity, "
            "s.batch_size, r.* FROM experiment_studies es "
            "JOIN studies s ON s.key = es.study_key "
            "JOIN repeats r ON r.study_key = es.study_key "
            "WHERE es.experiment = ? ORDER BY es.position, r.source_trial, r.repeat_index",
            (experiment,),
        ).fetchall()
        scope = TrialScope.of(self.experiment_config(experiment))  # repeats of its own trials
        return [dict(r) for r in rows
                if scope is None or not r["current"] or r["source_trial"] in scope]

    def _scoped(self) -> tuple[str, tuple[int, ...]]:
        """`` AND <the scope's condition>`` and its parameters (nothing before a scope)."""
        if self.scope is None:
            return "", ()
        condition, args = self.scope.sql()
        return f" AND {condition}", args

    def _current_column(self) -> str:
        """``es.current``, or 1 in a file opened read-only before that column existed."""
        present = {row[1] for row in self._db.execute("PRAGMA table_info(experiment_studies)")}
        return "es.current" if "current" in present else "1"


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
