"""Schema upgrades on frozen databases: every schema sparsedp ever wrote, opened by today's code.

tests/fixtures/schema/ holds one small results database per schema version, each written by
the code of the commit that introduced it (make_fixtures.py runs that commit's own CLI on a
tiny real-MNIST experiment). Today's ResultStore must open each (on a copy), migrate it in
place, and read back every row with every value equal; and today's schema must be the newest
fixture's, so a schema change without a new fixture fails here.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sparsedp.store import ResultStore, repeats_frame, trials_frame
from sparsedp.store import sqlite as store_sqlite
from sparsedp.store.check import check_store

FIXTURES = Path(__file__).parent / "fixtures" / "schema"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ENTRIES = {entry["name"]: entry for entry in MANIFEST["fixtures"]}
NEWEST = MANIFEST["fixtures"][-1]
EXPERIMENT = "fixture"
# What a file that predates a column holds there once migrated (the ALTER's default).
ADDED_DEFAULTS = {("experiment_studies", "current"): 1}
REGENERATE = ("add a fixture: commit the schema change, add it to VERSIONS in "
              "tests/fixtures/schema/make_fixtures.py and run that script")


def _generator():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()
fingerprint = GENERATOR.schema_fingerprint


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _dump(path: Path) -> dict[str, dict[int, dict[str, tuple[type, Any]]]]:
    """Every row of every table by rowid, each value with its Python type (1 != 1.0 here)."""
    db = _read_only(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {}
        for table in tables:
            cursor = db.execute(f"SELECT rowid, * FROM {table}")
            columns = [d[0] for d in cursor.description][1:]
            out[table] = {row[0]: {c: (type(v), v) for c, v in zip(columns, row[1:], strict=True)}
                          for row in cursor}
        return out
    finally:
        db.close()


def _schema_of(path: Path) -> dict[str, Any]:
    db = _read_only(path)
    try:
        return fingerprint(db)
    finally:
        db.close()


def _copy(name: str, directory: Path) -> Path:
    directory.mkdir()
    shutil.copyfile(FIXTURES / ENTRIES[name]["file"], directory / ResultStore.FILENAME)
    return directory / ResultStore.FILENAME


def _fresh_schema(directory: Path) -> dict[str, Any]:
    ResultStore(directory).close()
    return _schema_of(directory / ResultStore.FILENAME)


def test_the_manifest_describes_every_fixture_file():
    """Each committed database is in the manifest with its commit, and still holds what the
    generator recorded (its schema and row counts): a fixture never changes silently."""
    files = sorted(p.name for p in FIXTURES.glob("*.sqlite"))
    assert files == sorted(entry["file"] for entry in MANIFEST["fixtures"])
    assert len(files) >= 7  # the seven schemas of the history (make_fixtures.py --check)
    for entry in MANIFEST["fixtures"]:
        path = FIXTURES / entry["file"]
        assert _schema_of(path) == entry["schema"], entry["name"]
        with _read_only(path) as db:
            assert GENERATOR.row_counts(db) == entry["rows"], entry["name"]
        rows = entry["rows"]  # 2 + 4 trials of 2 configurations; 2 seeds x 2 best trials
        assert (rows["trials"], rows["studies"], rows["failures"]) == (6, 4, 1), entry["name"]
        assert rows.get("repeats", 4) == 4 and rows.get("probes", 1) > 0, entry["name"]
    schemas = [json.dumps(entry["schema"], sort_keys=True) for entry in MANIFEST["fixtures"]]
    assert len(set(schemas)) == len(schemas)  # one fixture per distinct schema


def test_todays_schema_is_the_newest_fixtures(tmp_path):
    """A fresh store's tables, columns, types and version equal the newest fixture's: a schema
    change without a new fixture fails here."""
    assert _fresh_schema(tmp_path) == NEWEST["schema"], REGENERATE


def test_the_fingerprint_notices_a_schema_change(tmp_path, monkeypatch):
    """The check above can fail: one more column in today's schema changes the fingerprint."""
    monkeypatch.setitem(store_sqlite._ADDED_TRIAL_COLUMNS, "extra", "REAL")
    changed = _fresh_schema(tmp_path)
    assert changed != NEWEST["schema"]
    assert changed["tables"]["trials"][:-1] == NEWEST["schema"]["tables"]["trials"]


@pytest.mark.parametrize("name", list(ENTRIES))
def test_todays_store_migrates_the_fixture_and_loses_nothing(name, tmp_path):
    """On a copy: today's store opens it writable, adds what the file lacks, keeps every row
    with every value (and type) equal, and the result has today's columns; opening it again
    changes nothing; the run's database check accepts it before and after."""
    path = _copy(name, tmp_path / "results")
    before = _dump(path)
    check_store(path.parent)
    with ResultStore(path.parent) as store:
        assert store.experiment_names() == [EXPERIMENT]
    after = _dump(path)
    for table, rows in before.items():
        assert after[table].keys() == rows.keys(), table
        for rowid, row in rows.items():
            migrated = after[table][rowid]
            assert {c: migrated[c] for c in row} == row, (table, rowid)
            for column in migrated.keys() - row.keys():  # added in place
                assert migrated[column][1] == ADDED_DEFAULTS.get((table, column)), column
    fresh = _fresh_schema(tmp_path / "fresh")["tables"]
    migrated_schema = _schema_of(path)
    for table, columns in fresh.items():  # same columns, types and constraints; the order
        # differs where ALTER TABLE appended a column
        assert sorted(migrated_schema["tables"][table]) == sorted(columns), table
    assert migrated_schema["schema_version"] == str(store_sqlite.SCHEMA_VERSION)
    check_store(path.parent)
    with ResultStore(path.parent):
        pass
    assert _dump(path) == after


def _raw_trials(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    db = _read_only(path)
    db.row_factory = sqlite3.Row
    try:
        return {(r["study_key"], r["trial_index"]): dict(r)
                for r in db.execute("SELECT * FROM trials")}
    finally:
        db.close()


def _current_keys(path: Path) -> set[str]:
    """Study keys the fixture's own code linked as current (every one before that column)."""
    db = _read_only(path)
    try:
        columns = {r[1] for r in db.execute("PRAGMA table_info(experiment_studies)")}
        where = " AND current = 1" if "current" in columns else ""
        return {r[0] for r in db.execute(
            f"SELECT study_key FROM experiment_studies WHERE experiment = ?{where}",
            (EXPERIMENT,))}
    finally:
        db.close()


def _same(value: Any, expected: Any) -> bool:
    if expected is None:
        return value is None or (isinstance(value, float) and pd.isna(value))
    return value == expected


@pytest.mark.parametrize("read_only", [False, True], ids=["migrated", "read-only"])
@pytest.mark.parametrize("name", list(ENTRIES))
def test_the_api_reads_every_stored_row(name, read_only, tmp_path):
    """trials_frame, repeats_frame, probe rows, the configuration and the failure log read
    back what the fixture's code stored: migrated (as `run` leaves it) and read-only on the
    file as it is (as `status`/`report` read it; the file stays byte for byte the same)."""
    path = _copy(name, tmp_path / "results")
    original = FIXTURES / ENTRIES[name]["file"]
    raw = _raw_trials(original)
    current = _current_keys(original)
    with ResultStore(path.parent, read_only=read_only) as store:
        frame = trials_frame(store, EXPERIMENT)
        everything = trials_frame(store, EXPERIMENT, all_studies=True)
        repeats = repeats_frame(store, EXPERIMENT)
        probes = store.probe_rows()
        config = store.experiment_config(EXPERIMENT)
        failures = sum(store.failure_count(key, index) for key, index in raw)
    if read_only:
        assert path.read_bytes() == original.read_bytes()

    assert len(everything) == len(raw) and len(frame) == sum(k in current for k, _ in raw)
    assert 0 < len(frame) <= len(everything)
    for row in everything.to_dict("records"):
        stored = raw[(row["study_key"], row["trial_index"])]
        assert row["current"] == (row["study_key"] in current)
        for column in ("seed", "lr", "momentum", "status", "steps_to_result", "steps_taken",
                       "final_val_error", "wall_time", "attempts", "message"):
            assert _same(row[column], stored[column]), (column, row[column], stored[column])
        assert row["curve"] == stored["curve_json"]
        assert _same(row["peak_rss_mb"], stored.get("peak_rss_mb"))
        assert row["stage"] == (stored.get("stage") or "search")
    assert set(everything["status"]) >= {"complete", "incomplete"}

    with _read_only(original) as db:
        assert config == json.loads(db.execute(
            "SELECT config_json FROM experiments WHERE name = ?", (EXPERIMENT,)).fetchone()[0])
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        stored_repeats = db.execute("SELECT study_key, source_trial, repeat_index, status, "
                                    "steps_to_result FROM repeats ORDER BY 1, 2, 3").fetchall() \
            if "repeats" in tables else []
        stored_probes = db.execute("SELECT study_key, trial_index, kind, step, value FROM probes "
                                   "ORDER BY 1, 2, 3, 4").fetchall() if "probes" in tables else []
        logged = db.execute("SELECT study_key, trial_index FROM failures").fetchall()
    assert config is not None and config["name"] == EXPERIMENT
    assert [(r["study_key"], r["source_trial"], r["repeat_index"], r["status"])
            for r in repeats.to_dict("records")] == [r[:4] for r in stored_repeats]
    assert all(_same(a, b[4]) for a, b in zip(repeats["steps_to_result"],
                                                  stored_repeats, strict=True))
    assert [(p["study_key"], p["trial_index"], p["kind"], p["step"], p["value"])
            for p in probes] == stored_probes
    assert ("repeats" in tables) == bool(stored_repeats)
    assert ("probes" in tables) == bool(stored_probes)
    assert failures == len(logged) == 1  # logged for a stored trial
