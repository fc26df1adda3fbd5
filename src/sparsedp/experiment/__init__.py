"""Experiments: a grid of studies (workload × sparsity × batch size) read from a TOML file."""

from sparsedp.experiment.spec import (
    BACKENDS,
    ORDERS,
    SEED_STRIDE,
    EngineOptions,
    ExperimentFileError,
    ExperimentSpec,
    StudyDefaults,
    StudySpec,
    load_experiment,
    resolve_batch_sizes,
)

__all__ = [
    "BACKENDS",
    "ORDERS",
    "SEED_STRIDE",
    "EngineOptions",
    "ExperimentFileError",
    "ExperimentSpec",
    "StudyDefaults",
    "StudySpec",
    "load_experiment",
    "resolve_batch_sizes",
]
