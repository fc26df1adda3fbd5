"""Stored trials as a pandas DataFrame (one row per trial), the input of analysis and export."""

from __future__ import annotations

import json
from collections.abc import Collection

import pandas as pd

from sparsedp.store.sqlite import TRIAL_COLUMNS, ResultStore
from sparsedp.training.workloads import WORKLOADS, Workload

DATASET_LABELS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def _registered(name: str) -> Workload | None:
    """The registered workload ``name``; None for one imported from another tool."""
    return WORKLOADS.get(name)


def trials_frame(
    store: ResultStore,
    experiment: str,
    *,
    study_keys: Collection[str] | None = None,
    all_studies: bool = False,
) -> pd.DataFrame:
    """Stored trials of ``experiment``'s current studies with their study's fields, in
    study/trial order.

    ``study_keys`` names the current studies (the experiment file as it is now; default:
    those the store registered last); trials of other studies the experiment linked before
    (an earlier goal, budget, pruning or seed) are left out unless ``all_studies``. The
    ``current`` column says which configuration a row belongs to; ``stop_hopeless`` and
    ``keep_complete`` are the stopping settings the trial ran with (``None`` where not
    recorded; 1 for trials stored before ``keep_complete`` existed, which stopped at the best).
    """
    records = []
    for row in store.trial_rows(experiment, all_studies=True):
        current = bool(row["current"]) if study_keys is None else row["study_key"] in study_keys
        if not (current or all_studies):
            continue
        spec = json.loads(row["spec_json"])
        engine = json.loads(row["engine_json"]) if row["engine_json"] else {}
        workload = _registered(row["workload"])
        provenance = json.loads(row["provenance_json"]) if row["provenance_json"] else {}
        records.append({
            "experiment": experiment,
            "study_key": row["study_key"],
            "workload": row["workload"],
            "dataset": row["dataset"],
            "dataset_label": provenance.get("dataset_label")
            or DATASET_LABELS.get(row["dataset"], row["dataset"]),
            "model": row["model"],
            "optimizer": row["optimizer"],
            "sparsity": row["sparsity"],
            "batch_size": row["batch_size"],
            "trial_index": row["trial_index"],
            "seed": row["seed"],
            "lr": row["lr"],
            "momentum": row["momentum"],
            "decay_steps": row["decay_steps"],
            "end_lr_factor": row["end_lr_factor"],
            "status": row["status"],
            "steps_to_result": row["steps_to_result"],
            "steps_taken": row["steps_taken"],
            "final_val_error": row["final_val_error"],
            "final_error_exact": bool(row["final_error_exact"]),
            "goal_error": spec.get("goal_error") or getattr(workload, "goal_error", None),
            "max_steps": spec.get("max_steps") or getattr(workload, "max_steps", None),
            "eval_every": spec.get("eval_every") or getattr(workload, "eval_every", None),
            "wall_time": row["wall_time"],
            "samples_per_second": row["samples_per_second"],
            "eval_share": row["eval_share"],
            "eval_examples": row["eval_examples"],
            "attempts": row["attempts"],
            "peak_rss_mb": row.get("peak_rss_mb"),
            "message": row["message"],
            "curve": row["curve_json"],
            "stop_hopeless": engine.get("stop_hopeless"),
            # trials stored before keep_complete existed stopped at the best: K = 1
            "keep_complete": engine.get("keep_complete",
                                        1 if engine.get("stop_hopeless") else None),
            "precision": spec.get("precision") or "fp32",
            "train_examples": spec.get("train_examples"),  # None: the whole training split
            "stage": row.get("stage") or "search",  # rows stored before stages: the search
            "current": current,
        })
    records.sort(key=lambda r: not r["current"])  # stable: current studies first
    frame = pd.DataFrame.from_records(records, columns=list(TRIAL_COLUMNS))
    frame["steps_to_result"] = frame["steps_to_result"].astype("float64")
    for column in ("momentum", "decay_steps", "end_lr_factor", "final_val_error"):
        frame[column] = frame[column].astype("float64")
    return frame


REPEAT_COLUMNS = (
    "experiment", "study_key", "workload", "sparsity", "batch_size", "source_trial",
    "repeat_index", "seed", "data_seed", "lr", "momentum", "decay_steps", "end_lr_factor",
    "status", "steps_to_result", "steps_taken", "final_val_error", "wall_time", "message",
    "curve",
)


def repeats_frame(
    store: ResultStore, experiment: str, *, study_keys: Collection[str] | None = None
) -> pd.DataFrame:
    """Stored seed repeats (``sparsedp repeat``) of ``experiment``'s current studies
    (``study_keys``; default: those the store registered last), one row each; empty for a
    file written before repeats existed. Never part of :func:`trials_frame`."""
    records = []
    for row in store.repeat_rows(experiment):
        current = bool(row["current"]) if study_keys is None else row["study_key"] in study_keys
        if not current:
            continue
        record = {column: row.get(column) for column in REPEAT_COLUMNS}
        record.update(experiment=experiment, curve=row["curve_json"])
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(REPEAT_COLUMNS))
    frame["steps_to_result"] = frame["steps_to_result"].astype("float64")
    return frame
