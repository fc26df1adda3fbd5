"""Which backend runs an experiment's trials: chosen from its ``[engine]`` options."""

from __future__ import annotations

from sparsedp.execution.backends.contract import Backend
from sparsedp.execution.backends.local import InProcessBackend, ProcessBackend
from sparsedp.execution.backends.worker import WorkerContext
from sparsedp.specs.experiment import ExperimentSpec


def make_backend(
    spec: ExperimentSpec,
    workers: int,
    context_args: tuple,
    study_keys: list[str],
    limits: dict[str, int],
) -> Backend:
    """The backend the experiment asks for: Ray, local processes, or this process."""
    interleave = spec.engine.resolved_interleave()
    if spec.engine.resolved_batched_trials() > 1:
        interleave = 1  # a rolling group keeps its device busy: one study at a time
    if spec.engine.backend == "ray":
        from sparsedp.execution.backends.ray_cluster import RayBackend  # Ray is optional

        return RayBackend(workers, context_args, interleave)
    if workers <= 1:
        return InProcessBackend(WorkerContext(*context_args), limits, interleave)
    return ProcessBackend(workers, context_args, study_keys, interleave)
