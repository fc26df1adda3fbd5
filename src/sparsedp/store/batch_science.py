"""The directory layout of Shallue et al.'s released data (google-research/batch_science).

::

    <dataset>/<model>/<optimizer>/<batch_size>/study.json
    <dataset>/<model>/<optimizer>/<batch_size>/<trial_id>/metadata.json
    <dataset>/<model>/<optimizer>/<batch_size>/<trial_id>/measurements.csv

:func:`export_batch_science` writes an experiment's trials in that layout;
``batch_science_import`` reads the layout (written by sparsedp, by Shallue et al., or by
another tool) into a results database, after ``batch_science_tree`` has found its files and
``batch_science_fields`` checked their values. Field by field decisions, and where the two
formats do not map onto each other: ``docs/batch-science.md``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparsedp.search.space import Dimension, SearchSpace
from sparsedp.store.sqlite import ResultStore

METRIC = "val/classification_error"
"""The measurements column sparsedp writes and, by default, reads steps to result from."""
BOUND_COLUMN = "val/classification_error_lower_bound"
"""sparsedp's own column: the lower bound a check reports when it exits early (the exact
value column is empty then)."""

DATASETS = {"mnist": "mnist", "fashion-mnist": "fashion_mnist", "cifar10": "cifar_10"}
MODELS = {"simple-cnn": "simple_cnn", "resnet-8": "resnet_8_no_bn"}
OPTIMIZERS = {"sgd": "sgd", "momentum": "momentum", "nesterov": "nesterov_momentum"}
PARAMETERS = {"lr": "learning_rate", "momentum": "momentum",
              "decay_steps": "learning_rate_decay_steps",
              "end_lr_factor": "end_learning_rate_factor"}
SCALES = {"linear": "LINEAR_SCALE", "log": "LOG_SCALE", "reverse-log": "REVERSE_LOG_SCALE"}
# sparsedp status → batch_science status (COMPLETE: trained to the goal or the budget)
STATUSES = {"complete": "COMPLETE", "incomplete": "COMPLETE", "infeasible": "INFEASIBLE",
            "stopped": "INCOMPLETE", "failed": "INCOMPLETE"}


class BatchScienceError(ValueError):
    """A layout that cannot be read or written; the message is one line with a fix."""


# --------------------------------------------------------------------------- export


def _model_dir(model: str, hidden_units: int, sparsity: float) -> str:
    name = MODELS.get(model, re.sub(r"[^A-Za-z0-9]+", "_", model))
    if hidden_units:
        name += f"_hidden{hidden_units}"
    return name if sparsity == 0 else f"{name}_sparsity{sparsity:g}"


def _parameter_configs(space: SearchSpace | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dim in space.dimensions if space is not None else ():
        out[PARAMETERS[dim.name]] = {
            "max_value": int(dim.high) if dim.integer else dim.high,
            "min_value": int(dim.low) if dim.integer else dim.low,
            "scale": SCALES[dim.scale],
            "type": "INTEGER" if dim.integer else "DOUBLE",
        }
    return out


def _measurements(curve: list) -> list[dict[str, object]]:
    rows = []
    for step, error, exact in curve:
        rows.append({"step": int(step), METRIC: repr(float(error)) if exact else "",
                     BOUND_COLUMN: "" if exact else repr(float(error))})
    return rows


def _write_csv(path: Path, rows: list[dict[str, object]], columns: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def export_batch_science(
    store: ResultStore,
    experiment: str,
    out_dir: str | Path,
    *,
    study_keys: set[str],
    spaces: Mapping[str, SearchSpace],
) -> list[Path]:
    """Write the trials of ``experiment``'s studies ``study_keys`` under ``out_dir``; one
    ``study.json`` per study with trials. Returns the study directories written."""
    out = Path(out_dir)
    studies = {row["key"]: row for row in store.study_rows(experiment) if row["key"] in study_keys}
    by_study: dict[str, list[dict]] = {}
    for row in store.trial_rows(experiment, all_studies=True):
        if row["study_key"] in studies:
            by_study.setdefault(row["study_key"], []).append(row)
    written = []
    for key, trials in by_study.items():
        study = studies[key]
        spec = json.loads(study["spec_json"])
        engines = [json.loads(t["engine_json"]) for t in trials if t["engine_json"]]
        directory = (out / DATASETS.get(study["dataset"], study["dataset"])
                     / _model_dir(study["model"], int(spec.get("hidden_units") or 0),
                                  float(study["sparsity"]))
                     / OPTIMIZERS.get(study["optimizer"], study["optimizer"])
                     / str(study["batch_size"]))
        if directory.exists():
            raise BatchScienceError(
                f"{directory} exists already: two studies of {experiment} map to it, or an "
                "earlier export is there; export into an empty directory")
        directory.mkdir(parents=True)
        document = {
            "batch_size": int(study["batch_size"]),
            "dataset": DATASETS.get(study["dataset"], study["dataset"]),
            "early_stopping": any(e.get("stop_hopeless") for e in engines),
            "model": directory.parent.parent.name,
            "optimizer": directory.parent.name,
            "parameter_configs": _parameter_configs(spaces.get(key)),
            "train_steps": int(spec.get("max_steps") or 0),
            # sparsedp's own fields (other readers ignore them):
            "sparsity": float(study["sparsity"]),
            "goal_error": spec.get("goal_error"),
            "sparsedp": {"experiment": experiment, "study_key": key,
                         "workload": study["workload"], "dataset": study["dataset"],
                         "model": study["model"], "optimizer": study["optimizer"],
                         "spec": spec},
        }
        (directory / "study.json").write_text(json.dumps(document, indent=2, sort_keys=True))
        for trial in trials:
            trial_dir = directory / str(int(trial["trial_index"]))
            trial_dir.mkdir()
            meta = {
                "_internal_study_name": key,
                "_internal_trial_id": int(trial["trial_index"]),
                "parameters": {PARAMETERS[name]: trial[name] for name in PARAMETERS
                               if trial[name] is not None},
                "status": STATUSES.get(trial["status"], "INCOMPLETE"),
                "steps": int(trial["steps_taken"]),
                "trial_id": int(trial["trial_index"]),
                "sparsedp": {name: trial[name] for name in _KEPT},
            }
            (trial_dir / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
            _write_csv(trial_dir / "measurements.csv",
                       _measurements(json.loads(trial["curve_json"])),
                       ["step", METRIC, BOUND_COLUMN])
        written.append(directory)
    return written


# trial fields carried in metadata.json's "sparsedp" block, so an import gives them back
_KEPT = ("status", "steps_to_result", "seed", "final_val_error", "final_error_exact",
         "wall_time", "train_time", "eval_time", "prune_time", "samples_per_second",
         "eval_share", "eval_examples", "message", "attempts", "peak_rss_mb", "mask_json",
         "engine_json", "provenance_json")


# --------------------------------------------------------------------------- import


def search_space_of(spec: Mapping[str, Any]) -> SearchSpace | None:
    """The search space an imported study's spec carries (None when it has none)."""
    dims = spec.get("search_space")
    return SearchSpace(tuple(Dimension(**d) for d in dims)) if dims else None
