"""Which stored trials to probe, how to re-train them with probes, and the rows to store.

A probe re-trains a stored trial from its study, trial index and search point (regenerated
from the study's search space, so bit-identical metaparameters) with the reference trainer,
which is deterministic: the weights at each step are the stored trial's. See docs/probes.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sparsedp.data.splits import SplitData
from sparsedp.specs import ExperimentSpec, StudySpec
from sparsedp.training.probed_run import ProbedTrialRun, ProbeOutcome, ProbeSettings
from sparsedp.training.trainer import EngineSettings, TrialResult

DEFAULT_CHECKPOINTS = 5
DEFAULT_LIPSCHITZ_POINTS = 10


@dataclass(frozen=True)
class ProbeTarget:
    """One stored trial to probe: the best trial of a study."""

    study: StudySpec
    trial_index: int
    stored_steps: int
    micro_batch: int | None  # the micro-batch the stored trial was trained with

    @property
    def point(self) -> dict[str, float | int]:
        return self.study.space().points(self.trial_index + 1)[self.trial_index]


def select_targets(
    spec: ExperimentSpec,
    rows: Iterable[Mapping[str, Any]],
    *,
    batch_size: int | None = None,
    sparsities: Iterable[float] | None = None,
) -> tuple[list[ProbeTarget], list[str]]:
    """The best trial of each (workload, sparsity)'s study at ``batch_size`` (default: the
    smallest batch size whose study has a complete trial), and notes on what was skipped."""
    best: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if row["status"] != "complete" or row["steps_to_result"] is None:
            continue
        current = best.get(row["study_key"])
        if current is None or (row["steps_to_result"], row["trial_index"]) < (
            current["steps_to_result"], current["trial_index"]
        ):
            best[row["study_key"]] = row
    wanted = None if sparsities is None else {float(s) for s in sparsities}
    cells: dict[tuple[str, float], list[StudySpec]] = {}
    for study in spec.studies():
        if wanted is None or study.sparsity in wanted:
            cells.setdefault((study.workload, study.sparsity), []).append(study)
    targets, notes = [], []
    for (workload, sparsity), studies in cells.items():
        studies = sorted(studies, key=lambda s: s.batch_size)
        if batch_size is not None:
            studies = [s for s in studies if s.batch_size == batch_size]
        with_result = [s for s in studies if s.key in best]
        if not with_result:
            at = f"batch size {batch_size}" if batch_size is not None else "any batch size"
            notes.append(f"{workload} s={sparsity:g}: no complete trial at {at}; not probed")
            continue
        study = with_result[0]
        if batch_size is None and study is not studies[0]:
            notes.append(f"{workload} s={sparsity:g}: no result at B={studies[0].batch_size}; "
                         f"probing B={study.batch_size}")
        row = best[study.key]
        engine = json.loads(row["engine_json"]) if row.get("engine_json") else {}
        targets.append(ProbeTarget(study, int(row["trial_index"]), int(row["steps_to_result"]),
                                   engine.get("micro_batch")))
    return targets, notes


def checkpoints(steps: int, count: int = DEFAULT_CHECKPOINTS) -> tuple[int, ...]:
    """``count`` evenly spaced steps from 0 (initialisation) to ``steps`` (the result)."""
    if count < 2:
        return (steps,)
    return tuple(sorted({round(steps * k / (count - 1)) for k in range(count)}))


def lipschitz_interval(steps: int, points: int = DEFAULT_LIPSCHITZ_POINTS) -> int:
    """Every how many steps to measure L to get about ``points`` values along ``steps``."""
    return max(1, math.ceil(steps / points))


def probe_trial(
    target: ProbeTarget,
    data: SplitData,
    settings: ProbeSettings,
    *,
    device: str = "cpu",
    on_measure: Callable[[str, int], None] | None = None,
) -> tuple[ProbeOutcome, TrialResult]:
    """Re-train ``target`` with the probes; the outcome and the re-trained trial's result."""
    config = target.study.trial_config(target.trial_index, target.point)
    engine = EngineSettings(micro_batch=target.micro_batch, device=device)
    run = ProbedTrialRun(config, data, settings, engine=engine, on_measure=on_measure)
    run.advance()
    outcome = run.finish()
    return outcome, run.result()


def outcome_rows(outcome: ProbeOutcome, settings: ProbeSettings) -> dict[str, list[dict]]:
    """The rows to store per kind (store/probes.py)."""
    common = {k: v for k, v in asdict(settings).items() if k not in ("noise_steps",)}
    noise = [
        {"step": p.step, "value": p.b_simple,
         "low": p.interval[0] if p.interval else None,
         "high": p.interval[1] if p.interval else None,
         "detail": {"g2": p.g2, "trace": p.trace, "micro_batch": p.micro_batch,
                    "big_batch": p.big_batch, "groups": p.groups, "seconds": p.seconds,
                    "infinite": p.b_simple == math.inf,
                    "unbounded_above": bool(p.interval and not math.isfinite(p.interval[1])),
                    "settings": common}}
        for p in outcome.noise
    ]
    lipschitz = [
        {"step": p.step, "value": p.lipschitz,
         "detail": {"ratios": p.ratios, "step_norm": p.step_norm, "examples": p.examples,
                    "seconds": p.seconds, "settings": common}}
        for p in outcome.lipschitz
    ]
    return {"noise_scale": noise, "lipschitz": lipschitz}


def with_defaults(settings: ProbeSettings, steps: int, *, checkpoint_count: int,
                  lipschitz_points: int | None) -> ProbeSettings:
    """``settings`` with the checkpoints and the L interval derived from a trial's steps."""
    every = settings.lipschitz_every
    if lipschitz_points is not None:
        every = lipschitz_interval(steps, lipschitz_points) if lipschitz_points else 0
    noise = checkpoints(steps, checkpoint_count) if checkpoint_count else ()
    return replace(settings, noise_steps=noise, lipschitz_every=every)
