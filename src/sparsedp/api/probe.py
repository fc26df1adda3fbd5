"""``Experiment.probe``: the gradient noise scale and Lipschitz smoothness along best trials.

The CLI's ``sparsedp probe`` is a thin layer over :func:`probe_experiment` (docs/probes.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sparsedp.api.errors import SparsedpError
from sparsedp.api.stored import read_store
from sparsedp.data import SplitData, load_dataset, prepare_splits
from sparsedp.execution.preflight import PreflightError, check_database_writable, check_device
from sparsedp.probing.run import (
    DEFAULT_CHECKPOINTS,
    DEFAULT_LIPSCHITZ_POINTS,
    ProbeTarget,
    outcome_rows,
    probe_trial,
    select_targets,
    with_defaults,
)
from sparsedp.specs import ExperimentSpec
from sparsedp.store import ResultStore
from sparsedp.training.probed_run import ProbeSettings
from sparsedp.training.workloads import get_workload


class StoredExperiment(Protocol):
    """What probing needs of an experiment (:class:`~sparsedp.api.Experiment` has it)."""

    spec: ExperimentSpec

    @property
    def results_dir(self) -> Path: ...

    def _require_results(self) -> None: ...

    def probe_results(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class ProbeEvent:
    """Progress of a probe: ``kind`` is ``note``, ``trial`` (a target starts), ``measure``
    (one measurement done: ``measure`` names it, at ``step``) or ``warning``."""

    kind: str
    text: str
    target: ProbeTarget | None = None
    step: int | None = None


def probe_experiment(
    experiment: StoredExperiment,
    *,
    batch_size: int | None = None,
    sparsities: Iterable[float] | None = None,
    checkpoints: int = DEFAULT_CHECKPOINTS,
    lipschitz_points: int | None = DEFAULT_LIPSCHITZ_POINTS,
    settings: ProbeSettings | None = None,
    device: str | None = None,
    on_event: Callable[[ProbeEvent], None] | None = None,
) -> list[dict[str, Any]]:
    """Probe the best trial of each sparsity (at ``batch_size``, default the smallest with a
    result), store the measurements, and return the experiment's probe rows.

    ``checkpoints``: noise-scale checkpoints from 0 to the result (0: none);
    ``lipschitz_points``: about this many L values (0: none; None: ``settings.lipschitz_every``);
    ``settings``: micro-batch, B_big, groups, bootstrap, L examples, seed.
    """
    emit = on_event or (lambda event: None)
    experiment._require_results()  # intact and sparsedp's (api/stored.py)
    device = device or experiment.spec.engine.device
    spec = experiment.spec
    try:
        check_device(device, setting="device")
        check_database_writable(spec.results_dir / ResultStore.FILENAME)  # it stores them
    except PreflightError as exc:
        raise SparsedpError(str(exc)) from None
    with read_store(spec.results_dir, f"no results yet for {spec.name}") as store:
        targets, notes = select_targets(spec, store.trial_rows(spec.name),
                                        batch_size=batch_size, sparsities=sparsities)
    for note in notes:
        emit(ProbeEvent("note", note))
    if not targets:
        raise SparsedpError(f"{spec.name}: no study has a complete trial to probe")
    base = settings or ProbeSettings()
    loaded: dict[str, SplitData] = {}
    for target in targets:
        dataset = get_workload(target.study.workload).dataset
        if dataset not in loaded:
            loaded[dataset] = prepare_splits(load_dataset(dataset, spec.data_dir))
        data = loaded[dataset].first(target.study.train_examples)  # the study's training set
        _probe_one(experiment, target, data, base, checkpoints, lipschitz_points, device, emit)
    return experiment.probe_results()


def _probe_one(experiment: StoredExperiment, target: ProbeTarget, data: SplitData,
               base: ProbeSettings, checkpoints: int, lipschitz_points: int | None,
               device: str, emit: Callable[[ProbeEvent], None]) -> None:
    settings = with_defaults(base, target.stored_steps, checkpoint_count=checkpoints,
                             lipschitz_points=lipschitz_points)
    b = settings.micro_batch or target.study.batch_size
    if settings.noise_steps and min(settings.examples, data.num_train) // b < 2:
        raise SparsedpError(f"examples {settings.examples} hold fewer than two micro-batches "
                            f"of {b}: raise the examples or lower the micro-batch")
    emit(ProbeEvent("trial", f"probing {target.study.label} trial {target.trial_index} "
                    f"({target.stored_steps} steps to result): noise scale at steps "
                    f"{', '.join(map(str, settings.noise_steps)) or '—'}; L every "
                    f"{settings.lipschitz_every or '—'} steps", target))

    def measured(kind: str, step: int) -> None:
        emit(ProbeEvent("measure", f"  {kind} at step {step}", target, step))

    outcome, result = probe_trial(target, data, settings, device=device, on_measure=measured)
    if result.steps_to_result != target.stored_steps:
        emit(ProbeEvent("warning", f"re-trained {target.study.label} trial "
                        f"{target.trial_index} reached the goal at step {result.steps_to_result}, "
                        f"the stored trial at {target.stored_steps} (the stored trial was "
                        "computed with another engine); the probes describe the re-trained run",
                        target))
    with ResultStore(experiment.results_dir) as store:
        for kind, rows in outcome_rows(outcome, settings).items():
            if kind == "noise_scale" and not settings.noise_steps:
                continue
            if kind == "lipschitz" and not settings.lipschitz_every:
                continue
            store.write_probes(target.study.key, target.trial_index, kind, rows)


__all__ = ["ProbeEvent", "ProbeSettings", "probe_experiment"]
