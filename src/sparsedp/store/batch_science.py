"""The directory layout of Shallue et al.'s released data (google-research/batch_science).

::

    <dataset>/<model>/<optimizer>/<batch_size>/study.json
    <dataset>/<model>/<optimizer>/<batch_size>/<trial_id>/metadata.json
    <dataset>/<model>/<optimizer>/<batch_size>/<trial_id>/measurements.csv

:func:`export_batch_science` writes an experiment's trials in that layout;
:func:`import_batch_science` reads the layout (written by sparsedp, by Shallue et al., or by
another tool) into a results database. Field by field decisions, and where the two formats
do not map onto each other: ``docs/batch-science.md``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sparsedp.execution.records import TrialRecord
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

_IMPORTED_STATUS = {"COMPLETE": "incomplete", "INFEASIBLE": "infeasible",
                    "INCOMPLETE": "stopped"}
_SCALE_NAMES = {v: k for k, v in SCALES.items()} | {"": "linear"}
_PARAMETER_NAMES = {v: k for k, v in PARAMETERS.items()}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchScienceError(f"{path}: cannot read it as JSON ({exc}); fix or remove "
                                "that file") from None
    if not isinstance(data, dict):
        raise BatchScienceError(f"{path}: expected a JSON object; fix or remove that file")
    return data


def _space(configs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The DOUBLE and INTEGER dimensions sparsedp knows, as Dimension dicts."""
    dims = []
    for name, config in configs.items():
        ours = _PARAMETER_NAMES.get(name)
        if ours is None or config.get("type") not in ("DOUBLE", "INTEGER"):
            continue
        scale = _SCALE_NAMES.get(str(config.get("scale", "")))
        try:
            dim = Dimension(ours, config["min_value"], config["max_value"], scale or "linear",
                            config.get("type") == "INTEGER")
        except (KeyError, ValueError):
            continue  # a range sparsedp cannot represent: no edge check for it
        dims.append(asdict(dim))
    return dims


def search_space_of(spec: Mapping[str, Any]) -> SearchSpace | None:
    """The search space an imported study's spec carries (None when it has none)."""
    dims = spec.get("search_space")
    return SearchSpace(tuple(Dimension(**d) for d in dims)) if dims else None


def _read_measurements(path: Path, metric: str) -> list[tuple[int, float, bool]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BatchScienceError(f"{path}: cannot read it ({exc}); fix or remove that "
                                "trial directory") from None
    if rows and (metric not in rows[0] or "step" not in rows[0]):
        raise BatchScienceError(f"{path}: no column {metric!r} (columns: "
                                f"{', '.join(rows[0])}); choose one with --metric")
    curve = []
    for row in rows:
        value, bound = row.get(metric) or "", row.get(BOUND_COLUMN) or ""
        if value.strip():
            curve.append((int(float(row["step"])), float(value), True))
        elif bound.strip():
            curve.append((int(float(row["step"])), float(bound), False))
    return sorted(curve, key=lambda c: c[0])


def _foreign_record(key: str, trial_id: int, meta: dict[str, Any], curve: list,
                    goal: float, source: str) -> TrialRecord:
    """A trial another tool wrote: steps to result = first measured step at or below goal."""
    reached = next((step for step, error, exact in curve
                    if exact and math.isfinite(error) and error <= goal), None)
    status = str(meta.get("status", "")).upper()
    if reached is not None and status == "COMPLETE":  # as Shallue et al.'s analysis
        outcome = "complete"
    else:
        outcome, reached = _IMPORTED_STATUS.get(status, "stopped"), None
    parameters = meta.get("parameters") or {}
    exact = [c for c in curve if c[2]]
    return TrialRecord(
        study_key=key, trial_index=trial_id, seed=0,
        metaparameters={ours: float(parameters[theirs]) for ours, theirs in PARAMETERS.items()
                        if isinstance(parameters.get(theirs), (int, float))},
        status=outcome, steps_to_result=reached,
        steps_taken=int(meta.get("steps") or (curve[-1][0] if curve else 0)),
        final_val_error=exact[-1][1] if exact else None, final_error_exact=bool(exact),
        curve=curve, wall_time=0.0, train_time=0.0, eval_time=0.0, prune_time=0.0,
        samples_per_second=0.0, eval_share=0.0, eval_examples=0,
        message=f"imported from {source}", attempts=1,
        provenance={"imported_from": source, "format": "batch-science", "metadata": meta},
    )


def _own_record(key: str, trial_id: int, meta: dict[str, Any], curve: list) -> TrialRecord:
    """A trial sparsedp exported: every stored field back as it was."""
    kept = meta["sparsedp"]
    parameters = meta.get("parameters") or {}

    def loads(name: str):
        return json.loads(kept[name]) if kept.get(name) else None

    return TrialRecord(
        study_key=key, trial_index=trial_id, seed=int(kept["seed"]),
        metaparameters={ours: parameters[theirs] for ours, theirs in PARAMETERS.items()
                        if theirs in parameters},
        status=kept["status"], steps_to_result=kept["steps_to_result"],
        steps_taken=int(meta["steps"]), final_val_error=kept["final_val_error"],
        final_error_exact=bool(kept["final_error_exact"]), curve=curve,
        wall_time=kept["wall_time"], train_time=kept["train_time"],
        eval_time=kept["eval_time"], prune_time=kept["prune_time"],
        samples_per_second=kept["samples_per_second"], eval_share=kept["eval_share"],
        eval_examples=kept["eval_examples"], message=kept["message"] or "",
        attempts=int(kept["attempts"]), peak_rss_mb=kept["peak_rss_mb"] or 0.0,
        mask_report=loads("mask_json"), engine=loads("engine_json"),
        provenance=loads("provenance_json"),
    )


def import_batch_science(
    source: str | Path,
    store: ResultStore,
    experiment: str,
    *,
    goal: float | None = None,
    metric: str = METRIC,
) -> dict[str, int]:
    """Read every ``study.json`` under ``source`` (and its trials) into ``store`` as the
    studies of ``experiment``. ``goal`` is the target of ``metric`` for studies whose
    ``study.json`` names none (Shallue et al.'s name none). Returns counts of studies and
    trials. Importing again replaces the trials (idempotent)."""
    root = Path(source)
    if not root.is_dir():
        raise BatchScienceError(f"{root} is not a directory; give the folder that holds "
                                "<dataset>/<model>/<optimizer>/<batch_size>/study.json")
    files = sorted(root.rglob("study.json"))
    if not files:
        raise BatchScienceError(f"no study.json under {root}; give the folder that holds "
                                "<dataset>/<model>/<optimizer>/<batch_size>/study.json")
    studies, records = [], []
    for path in files:
        directory = path.parent
        rel = directory.relative_to(root)
        if len(rel.parts) < 4:
            raise BatchScienceError(f"{path}: expected <dataset>/<model>/<optimizer>/"
                                    "<batch_size>/study.json below the import folder")
        doc = _read_json(path)
        own = doc.get("sparsedp") if isinstance(doc.get("sparsedp"), dict) else None
        study_goal = doc["goal_error"] if doc.get("goal_error") is not None else goal
        if study_goal is None:
            raise BatchScienceError(f"{path} names no goal: give the target {metric} with "
                                    "--goal (e.g. --goal 0.01)")
        try:
            batch_size = int(doc.get("batch_size", rel.parts[-1]))
        except (TypeError, ValueError):
            raise BatchScienceError(f"{path}: batch size {rel.parts[-1]!r} is not a whole "
                                    "number") from None
        dataset = "/".join(rel.parts[:-3])
        model, optimizer = rel.parts[-3], rel.parts[-2]
        sparsity = float(doc.get("sparsity") or 0.0)
        space = _space(doc.get("parameter_configs") or {})
        if own is not None:
            key, workload = str(own["study_key"]), str(own["workload"])
            spec = dict(own.get("spec") or {})
        else:
            identity = json.dumps([rel.as_posix(), study_goal, metric])
            key = hashlib.sha256(identity.encode()).hexdigest()[:16]
            workload = f"{dataset}/{model}/{optimizer}"
            spec = {"workload": workload, "sparsity": sparsity, "batch_size": batch_size,
                    "goal_error": float(study_goal), "metric": metric,
                    "max_steps": int(doc.get("train_steps") or 0) or None,
                    "early_stopping": doc.get("early_stopping")}
        spec["search_space"] = space
        spec["imported_from"] = rel.as_posix()
        if own is not None:
            dataset, model, optimizer = (str(own.get(name, default)) for name, default in (
                ("dataset", dataset), ("model", model), ("optimizer", optimizer)))
        studies.append({"key": key, "workload": workload, "dataset": dataset, "model": model,
                        "optimizer": optimizer, "sparsity": sparsity,
                        "batch_size": batch_size, "spec": spec})
        for trial_dir in sorted((d for d in directory.iterdir() if d.is_dir()),
                                key=lambda d: (not d.name.isdigit(), d.name.zfill(12))):
            meta = _read_json(trial_dir / "metadata.json")
            try:
                trial_id = int(meta.get("trial_id", trial_dir.name))
            except (TypeError, ValueError):
                raise BatchScienceError(f"{trial_dir}: trial id {trial_dir.name!r} is not a "
                                        "whole number") from None
            curve = _read_measurements(trial_dir / "measurements.csv", metric)
            if own is not None and isinstance(meta.get("sparsedp"), dict):
                records.append(_own_record(key, trial_id, meta, curve))
            else:
                records.append(_foreign_record(key, trial_id, meta, curve, float(study_goal),
                                               trial_dir.relative_to(root).as_posix()))
    _check_unique(studies)
    store.register_experiment(experiment, {"name": experiment, "imported_from": str(root),
                                           "format": "batch-science", "goal_error": goal,
                                           "metric": metric}, studies)
    for record in records:
        store.write_trial(record, replace=True)
    return {"studies": len(studies), "trials": len(records)}


def _check_unique(studies: list[dict[str, Any]]) -> None:
    seen: dict[tuple, str] = {}
    for study in studies:
        cell = (study["workload"], study["sparsity"], study["batch_size"])
        where = study["spec"]["imported_from"]
        if cell in seen:
            raise BatchScienceError(f"{seen[cell]} and {where} are the same study "
                                    f"({cell[0]} s={cell[1]:g} B={cell[2]}); import them into "
                                    "separate results")
        seen[cell] = where
