"""What an experiment's report states besides its trials: configuration, provenance, engines."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from sparsedp.analysis.data_size import curve_workload
from sparsedp.api.stored import read_store
from sparsedp.execution.provenance import provenance as current_provenance
from sparsedp.specs import ExperimentSpec, StudySpec


def report_context(spec: ExperimentSpec, studies: list[StudySpec]
                   ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The report's configuration, provenance and engine notes for the current ``studies``."""
    # The experiment as configured now: trials of studies an earlier configuration
    # linked (another goal, budget, pruning, seed) stay out of the provenance.
    keys = {study.key for study in studies}
    missing = f"no results yet for {spec.name} in {spec.results_dir}"
    with read_store(spec.results_dir, missing) as store:  # checked: api/stored.py
        rows = [r for r in store.trial_rows(spec.name, all_studies=True)
                if r["study_key"] in keys]
    stored = [json.loads(r["provenance_json"]) for r in rows if r["provenance_json"]]
    provenance = {
        "report generated with": current_provenance(spec.engine.device),
        "trials measured with": _distinct(stored),
    }
    config = spec.to_dict()
    config["expected_studies"] = [
        {"workload": curve_workload(s.workload, s.train_examples), "sparsity": s.sparsity,
         "batch_size": s.batch_size}
        for s in studies
    ]
    engines = _distinct([json.loads(r["engine_json"]) for r in rows if r["engine_json"]])
    # What produced the stored trials (the stopping sentence reads each trial's own
    # setting from the frame), then the file's settings, which apply to the next run.
    notes = {"trial engine settings": engines,
             "experiment file's engine settings (next run)": asdict(spec.engine)}
    return config, provenance, notes


def _distinct(items: list[dict]) -> list[dict] | dict:
    """The distinct dicts among ``items`` (one dict when they all agree)."""
    seen: list[dict] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen[0] if len(seen) == 1 else seen
