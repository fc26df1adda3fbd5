"""Reading a batch_science layout (sparsedp's export, Shallue et al.'s released data, another
tool's) into sparsedp's studies and trials, and storing them.

:func:`read_layout` reads and checks every file before anything is written;
:func:`store_layout` stores the result in one transaction that refuses an experiment, study
or trial the results database holds already, so an import commits completely or not at all
and never replaces a measured trial. Field by field decisions: docs/batch-science.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sparsedp.execution.records import TrialRecord
from sparsedp.search.space import Dimension
from sparsedp.store.batch_science import METRIC, PARAMETERS, SCALES, BatchScienceError
from sparsedp.store.batch_science_fields import (
    MISSING,
    bad,
    finite,
    flag,
    fraction,
    json_text,
    mapping,
    optional,
    read_json,
    read_measurements,
    text,
    value_of,
    whole,
)
from sparsedp.store.batch_science_tree import STUDY_FILE, StudyFolder, walk
from sparsedp.store.sqlite import ResultStore

_IMPORTED_STATUS = {"COMPLETE": "incomplete", "INFEASIBLE": "infeasible",
                    "INCOMPLETE": "stopped"}
_OWN_STATUSES = ("complete", "incomplete", "infeasible", "stopped", "failed")
_SCALE_NAMES = {v: k for k, v in SCALES.items()}
_PARAMETER_NAMES = {v: k for k, v in PARAMETERS.items()}
_TIMES = ("wall_time", "train_time", "eval_time", "prune_time", "samples_per_second",
          "eval_share")


@dataclass(frozen=True)
class Layout:
    """A checked layout, ready to store: nothing of it has been written yet."""

    root: Path
    goal: float | None  # the --goal given for studies that name none
    metric: str
    studies: tuple[dict[str, Any], ...]  # as ResultStore.register_experiment takes them
    records: tuple[TrialRecord, ...]
    files: dict[Any, Path]  # study key → study.json; (study key, trial index) → metadata.json
    skipped: tuple[str, ...]  # entries below root that are not part of the layout


def read_layout(source: str | Path, *, goal: float | None = None,
                metric: str = METRIC) -> Layout:
    """Every study and trial under ``source``, checked. ``goal`` is the target of ``metric``
    for studies whose ``study.json`` names none (Shallue et al.'s name none). Raises
    :class:`BatchScienceError` (one line naming the file) for anything it cannot use."""
    tree = walk(source)
    studies, records, files = [], [], {}
    for folder in tree.studies:
        study, own, study_goal = _study(folder, goal, metric)
        key = study["key"]
        if key in files:
            raise BatchScienceError(f"{files[key]} and {folder.path / STUDY_FILE} name the "
                                    f"same study key {key!r}; remove one of them")
        files[key] = folder.path / STUDY_FILE
        studies.append(study)
        for trial_dir in folder.trials:
            record = _trial(trial_dir, key, own, study_goal, metric,
                            trial_dir.relative_to(tree.root).as_posix())
            where = (key, record.trial_index)
            if where in files:
                raise BatchScienceError(f"{files[where]} and {trial_dir / 'metadata.json'} "
                                        f"are both trial {record.trial_index}; give each trial "
                                        "of a study its own trial_id")
            files[where] = trial_dir / "metadata.json"
            records.append(record)
    _check_unique(studies, files)
    return Layout(tree.root, goal, metric, tuple(studies), tuple(records), files,
                  tree.skipped)


def store_layout(store: ResultStore, experiment: str, layout: Layout) -> None:
    """Store ``layout`` as the new experiment ``experiment`` in one transaction. Refused
    (:class:`BatchScienceError`, nothing written) when ``store`` holds that experiment, one
    of its studies or one of its trials already: an import never replaces anything."""
    fix = "an import never replaces stored trials; import into another results directory"
    with store.transaction():
        names = store.experiment_names()
        if experiment in names:
            raise BatchScienceError(f"{store.path} holds an experiment named {experiment!r} "
                                    "already; an import never replaces one: choose another "
                                    "name with --name")
        owners: dict[str, str] = {}
        for name in names:
            for row in store.study_rows(name, all_studies=True):
                owners.setdefault(row["key"], name)
        for study in layout.studies:
            key = study["key"]
            if key in owners:
                raise BatchScienceError(f"{layout.files[key]}: study {key} is in {store.path} "
                                        f"already (experiment {owners[key]}); {fix}")
        trials: dict[str, set[int]] = {}
        for record in layout.records:
            stored = trials.get(record.study_key)
            if stored is None:  # a trial row no experiment links (an interrupted old import)
                stored = trials[record.study_key] = set(store.finished_trials(record.study_key))
            if record.trial_index in stored:
                raise BatchScienceError(
                    f"{layout.files[(record.study_key, record.trial_index)]}: trial "
                    f"{record.trial_index} of study {record.study_key} is in {store.path} "
                    f"already; {fix}")
        store.register_experiment(experiment, {
            "name": experiment, "imported_from": str(layout.root), "format": "batch-science",
            "goal_error": layout.goal, "metric": layout.metric}, layout.studies)
        for record in layout.records:
            store.write_trial(record)  # never replace=True: a clash would raise, roll back


# --------------------------------------------------------------------------- studies


def _study(folder: StudyFolder, goal: float | None,
           metric: str) -> tuple[dict[str, Any], bool, float]:
    """The study dict of ``folder``'s ``study.json``, whether sparsedp wrote it, and its
    goal."""
    path, rel = folder.path / STUDY_FILE, folder.rel
    doc = read_json(path)
    own = None if value_of(doc, "sparsedp") is MISSING else mapping(
        doc["sparsedp"], path, "sparsedp")
    study_goal = optional(fraction, value_of(doc, "goal_error"), path, "goal_error",
                          closed_low=False)
    if study_goal is None:
        study_goal = goal
    if study_goal is None:
        raise BatchScienceError(f"{path} names no goal: give the target {metric} with "
                                "--goal (e.g. --goal 0.01)")
    batch_size = optional(whole, value_of(doc, "batch_size"), path, "batch_size", minimum=1)
    if batch_size is None:
        name = rel.parts[-1]
        if not (name.isdigit() and int(name) >= 1):
            raise BatchScienceError(f"{path}: no batch_size, and the folder name {name!r} is "
                                    "not a whole number >= 1; add batch_size to study.json")
        batch_size = int(name)
    sparsity = optional(fraction, value_of(doc, "sparsity"), path, "sparsity",
                        closed_low=True) or 0.0
    train_steps = optional(whole, value_of(doc, "train_steps"), path, "train_steps") or 0
    early_stopping = optional(flag, value_of(doc, "early_stopping"), path, "early_stopping")
    space = _space(mapping(value_of(doc, "parameter_configs"), path, "parameter_configs"),
                   path)
    dataset = "/".join(rel.parts[:-3])
    model, optimizer = rel.parts[-3], rel.parts[-2]
    if own is not None:
        key = text(value_of(own, "study_key"), path, "sparsedp.study_key")
        workload = text(value_of(own, "workload"), path, "sparsedp.workload")
        dataset, model, optimizer = (
            text(own.get(name, default), path, f"sparsedp.{name}") for name, default in
            (("dataset", dataset), ("model", model), ("optimizer", optimizer)))
        spec = dict(mapping(value_of(own, "spec"), path, "sparsedp.spec"))
        _check_spec(spec, path)
    else:
        identity = json.dumps([rel.as_posix(), study_goal, metric])
        key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        workload = f"{dataset}/{model}/{optimizer}"
        spec = {"workload": workload, "sparsity": sparsity, "batch_size": batch_size,
                "goal_error": study_goal, "metric": metric, "max_steps": train_steps or None,
                "early_stopping": early_stopping}
    spec["search_space"] = space
    spec["imported_from"] = rel.as_posix()
    return ({"key": key, "workload": workload, "dataset": dataset, "model": model,
             "optimizer": optimizer, "sparsity": sparsity, "batch_size": batch_size,
             "spec": spec}, own is not None, study_goal)


def _check_spec(spec: dict[str, Any], path: Path) -> None:
    """The fields of sparsedp's own study specification that analysis and report read."""
    where = "sparsedp.spec."
    optional(fraction, value_of(spec, "goal_error"), path, where + "goal_error",
             closed_low=False)
    optional(whole, value_of(spec, "max_steps"), path, where + "max_steps")
    optional(whole, value_of(spec, "eval_every"), path, where + "eval_every", minimum=1)
    optional(text, value_of(spec, "precision"), path, where + "precision")


def _space(configs: Mapping[str, Any], path: Path) -> list[dict[str, Any]]:
    """The DOUBLE and INTEGER dimensions sparsedp knows, as Dimension dicts; a range
    sparsedp cannot represent (e.g. a log scale from 0, an unknown scale) gets no edge
    check, DISCRETE ones and unknown names are kept out."""
    dims = []
    for name, config in configs.items():
        where = f"parameter_configs.{name}"
        config = mapping(config, path, where)
        kind = optional(text, value_of(config, "type"), path, where + ".type")
        ours = _PARAMETER_NAMES.get(name)
        if ours is None or kind not in ("DOUBLE", "INTEGER"):
            continue
        low = finite(value_of(config, "min_value"), path, where + ".min_value")
        high = finite(value_of(config, "max_value"), path, where + ".max_value")
        scale = optional(text, value_of(config, "scale"), path, where + ".scale")
        scale = "linear" if scale is None else _SCALE_NAMES.get(scale)
        if scale is None:
            continue
        try:
            dim = Dimension(ours, low, high, scale, kind == "INTEGER")
        except ValueError:
            continue
        dims.append(asdict(dim))
    return dims


def _check_unique(studies: list[dict[str, Any]], files: dict[Any, Path]) -> None:
    seen: dict[tuple, Path] = {}
    for study in studies:
        cell = (study["workload"], study["sparsity"], study["batch_size"])
        where = files[study["key"]]
        if cell in seen:
            raise BatchScienceError(f"{seen[cell]} and {where} are the same study "
                                    f"({cell[0]} s={cell[1]:g} B={cell[2]}); import them into "
                                    "separate results")
        seen[cell] = where


# --------------------------------------------------------------------------- trials


def _trial(trial_dir: Path, key: str, own_study: bool, goal: float, metric: str,
           source: str) -> TrialRecord:
    """The trial in ``trial_dir`` (its ``metadata.json`` and ``measurements.csv``)."""
    path = trial_dir / "metadata.json"
    meta = read_json(path)
    trial_id = optional(whole, value_of(meta, "trial_id"), path, "trial_id")
    if trial_id is None:
        if not trial_dir.name.isdigit():
            raise BatchScienceError(f"{path}: no trial_id, and the folder name "
                                    f"{trial_dir.name!r} is not a whole number; add trial_id")
        trial_id = int(trial_dir.name)
    status = value_of(meta, "status")
    if not isinstance(status, str) or status.upper() not in _IMPORTED_STATUS:
        raise bad(path, "status", status, "COMPLETE, INCOMPLETE or INFEASIBLE")
    parameters = mapping(value_of(meta, "parameters"), path, "parameters")
    metaparameters = {ours: finite(parameters[theirs], path, f"parameters.{theirs}")
                      for ours, theirs in PARAMETERS.items()
                      if parameters.get(theirs) is not None}
    steps = optional(whole, value_of(meta, "steps"), path, "steps")
    curve = read_measurements(trial_dir / "measurements.csv", metric)
    if steps is None:
        steps = curve[-1][0] if curve else 0
    kept = None if value_of(meta, "sparsedp") is MISSING else mapping(
        meta["sparsedp"], path, "sparsedp")
    if own_study and kept is not None:
        return _own_record(key, trial_id, steps, metaparameters, curve, kept, path)
    return _foreign_record(key, trial_id, status.upper(), steps, metaparameters, curve, meta,
                           goal, source)


def _foreign_record(key: str, trial_id: int, status: str, steps: int,
                    metaparameters: dict[str, float], curve: list, meta: dict[str, Any],
                    goal: float, source: str) -> TrialRecord:
    """A trial another tool wrote: steps to result = first measured step at or below goal."""
    reached = next((step for step, error, exact in curve
                    if exact and math.isfinite(error) and error <= goal), None)
    if reached is not None and status == "COMPLETE":  # as Shallue et al.'s analysis
        outcome = "complete"
    else:
        outcome, reached = _IMPORTED_STATUS[status], None
    exact = [c for c in curve if c[2]]
    return TrialRecord(
        study_key=key, trial_index=trial_id, seed=0, metaparameters=metaparameters,
        status=outcome, steps_to_result=reached, steps_taken=steps,
        final_val_error=exact[-1][1] if exact else None, final_error_exact=bool(exact),
        curve=curve, wall_time=0.0, train_time=0.0, eval_time=0.0, prune_time=0.0,
        samples_per_second=0.0, eval_share=0.0, eval_examples=0,
        message=f"imported from {source}", attempts=1,
        provenance={"imported_from": source, "format": "batch-science", "metadata": meta},
    )


def _own_record(key: str, trial_id: int, steps: int, metaparameters: dict[str, float],
                curve: list, kept: dict[str, Any], path: Path) -> TrialRecord:
    """A trial sparsedp exported: every stored field back as it was, each checked."""
    def get(name: str, reader, **options: Any) -> Any:
        return reader(value_of(kept, name), path, f"sparsedp.{name}", **options)

    def maybe(name: str, reader, **options: Any) -> Any:
        return optional(reader, value_of(kept, name), path, f"sparsedp.{name}", **options)

    status = value_of(kept, "status")
    if status not in _OWN_STATUSES:
        raise bad(path, "sparsedp.status", status, ", ".join(_OWN_STATUSES))
    steps_to_result = maybe("steps_to_result", whole)
    if status == "complete" and steps_to_result is None:
        raise bad(path, "sparsedp.steps_to_result", value_of(kept, "steps_to_result"),
                  "a whole number >= 0 for a complete trial")
    message = value_of(kept, "message")
    if message is not None and message is not MISSING and not isinstance(message, str):
        raise bad(path, "sparsedp.message", message, "a text")

    def loads(name: str) -> Any:
        raw = maybe(name, json_text)
        return json.loads(raw) if raw else None

    times = {name: maybe(name, finite) for name in _TIMES}
    return TrialRecord(
        study_key=key, trial_index=trial_id, seed=get("seed", whole, minimum=None),
        metaparameters=metaparameters, status=status, steps_to_result=steps_to_result,
        steps_taken=steps, final_val_error=maybe("final_val_error", finite),
        final_error_exact=get("final_error_exact", flag), curve=curve,
        wall_time=times["wall_time"], train_time=times["train_time"],
        eval_time=times["eval_time"], prune_time=times["prune_time"],
        samples_per_second=times["samples_per_second"], eval_share=times["eval_share"],
        eval_examples=maybe("eval_examples", whole), message=message or "",
        attempts=get("attempts", whole), peak_rss_mb=maybe("peak_rss_mb", finite) or 0.0,
        mask_report=loads("mask_json"), engine=loads("engine_json"),
        provenance=loads("provenance_json"),
    )
