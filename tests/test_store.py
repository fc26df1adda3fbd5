"""The SQLite store on its own: identity of trials, older files, read-only use, current
studies of a reconfigured experiment."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from sparsedp.execution.records import TrialRecord
from sparsedp.store import ResultStore, trials_frame
from sparsedp.store.sqlite import _SCHEMA


def _study(key: str, batch_size: int = 32, goal: float = 0.5) -> dict:
    return {"key": key, "workload": "mnist-simplecnn-momentum", "dataset": "mnist",
            "model": "simple-cnn", "optimizer": "momentum", "sparsity": 0.0,
            "batch_size": batch_size,
            "spec": {"workload": "mnist-simplecnn-momentum", "sparsity": 0.0,
                     "batch_size": batch_size, "goal_error": goal}}


def _trial(key: str, index: int, steps: int | None = 64, status: str = "complete",
           **extra) -> TrialRecord:
    return TrialRecord(
        study_key=key, trial_index=index, seed=index, metaparameters={"lr": 0.1},
        status=status, steps_to_result=steps, steps_taken=steps or 96, final_val_error=0.1,
        final_error_exact=True, curve=[(8, 0.5, True)], wall_time=1.0, train_time=0.5,
        eval_time=0.5, prune_time=0.0, samples_per_second=100.0, eval_share=0.5,
        eval_examples=1000, message="", attempts=1, **extra,
    )


def test_a_trial_is_written_once_unless_replaced(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as store:
        store.register_experiment("e", {}, [_study("a")])
        store.write_trial(_trial("a", 0, status="stopped", steps=None))
        with pytest.raises(sqlite3.IntegrityError):
            store.write_trial(_trial("a", 0, steps=32))
        assert store.finished_trials("a") == {0: "stopped"}  # the refused write left nothing
        store.write_trial(_trial("a", 0, steps=32), replace=True)
        assert store.finished_trials("a") == {0: "complete"}
        assert store.best_steps("a") == (32, 0)


def test_read_only_open_of_a_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sparsedp run"):
        ResultStore(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()  # reading never creates the directory


def test_an_older_file_is_migrated_and_keeps_its_trials(tmp_path: Path) -> None:
    old_schema = (_SCHEMA.replace("    peak_rss_mb REAL,\n", "")
                  .replace("    current INTEGER NOT NULL DEFAULT 1,\n", ""))
    assert old_schema != _SCHEMA
    db = sqlite3.connect(tmp_path / ResultStore.FILENAME)
    db.executescript(old_schema)
    study = _study("old")
    db.execute("INSERT INTO experiments VALUES ('e', '{}', 0, 0)")
    db.execute("INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
               (study["key"], study["workload"], study["dataset"], study["model"],
                study["optimizer"], study["sparsity"], study["batch_size"],
                json.dumps(study["spec"])))
    db.execute("INSERT INTO experiment_studies VALUES ('e', 'old', 0)")
    columns = [r[1] for r in db.execute("PRAGMA table_info(trials)")]
    values = {"study_key": "old", "trial_index": 0, "seed": 0, "status": "complete",
              "steps_to_result": 40, "steps_taken": 40, "final_error_exact": 1,
              "curve_json": "[]", "attempts": 1, "finished": 0.0}
    db.execute(f"INSERT INTO trials ({', '.join(values)}) VALUES "
               f"({', '.join('?' * len(values))})", tuple(values.values()))
    db.commit()
    db.close()
    assert "peak_rss_mb" not in columns

    with ResultStore(tmp_path, read_only=True) as store:  # read as it is, before migration
        assert [r["steps_to_result"] for r in store.trial_rows("e")] == [40]
    with ResultStore(tmp_path) as store:
        store.write_trial(_trial("old", 1, peak_rss_mb=12.5))
        rows = store.trial_rows("e")
    assert [(r["trial_index"], r["peak_rss_mb"], r["current"]) for r in rows] == [
        (0, None, 1), (1, 12.5, 1)]


def test_reads_see_committed_trials_while_a_write_is_open(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as writer:
        writer.register_experiment("e", {}, [_study("a")])
        writer.write_trial(_trial("a", 0))
        writer._db.execute("BEGIN IMMEDIATE")  # a write in progress (WAL mode)
        writer._db.execute("UPDATE trials SET steps_to_result = 1")
        with ResultStore(tmp_path, read_only=True) as reader:
            assert [r["steps_to_result"] for r in reader.trial_rows("e")] == [64]
            writer._db.execute("COMMIT")
            assert [r["steps_to_result"] for r in reader.trial_rows("e")] == [1]


def test_a_reconfigured_experiment_keeps_but_hides_its_earlier_studies(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as store:
        store.register_experiment("e", {"goal": 0.5}, [_study("a32"), _study("a64", 64)])
        store.write_trial(_trial("a32", 0, steps=16))
        store.write_trial(_trial("a64", 0, steps=8))
        # the goal changes: new study keys for the same cells
        store.register_experiment("e", {"goal": 0.2}, [_study("b32", goal=0.2),
                                                        _study("b64", 64, goal=0.2)])
        store.write_trial(_trial("b32", 0, steps=48))
        current = store.trial_rows("e")
        everything = store.trial_rows("e", all_studies=True)
        studies = [r["key"] for r in store.study_rows("e")]
        frame = trials_frame(store, "e")
        frame_all = trials_frame(store, "e", all_studies=True)
        by_keys = trials_frame(store, "e", study_keys={"a32", "a64"})
    assert [r["study_key"] for r in current] == ["b32"]
    assert [(r["study_key"], r["current"]) for r in everything] == [
        ("b32", 1), ("a32", 0), ("a64", 0)]
    assert studies == ["b32", "b64"]
    assert list(frame["study_key"]) == ["b32"] and frame["current"].all()
    assert list(frame_all["current"]) == [True, False, False]
    assert list(by_keys["study_key"]) == ["a32", "a64"]  # the file's keys win over the store's
    assert list(frame["goal_error"]) == [0.2]


def test_trials_frame_reports_each_trials_stopping_setting(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as store:
        store.register_experiment("e", {}, [_study("a")])
        store.write_trial(_trial("a", 0, engine={"stop_hopeless": True}))
        store.write_trial(_trial("a", 1, engine={"stop_hopeless": False}))
        store.write_trial(_trial("a", 2))  # written before the setting was recorded
        frame = trials_frame(store, "e")
    assert list(frame["stop_hopeless"]) == [True, False, None]
