"""One trial outside any experiment: prune, train, measure steps-to-result (``sparsedp trial``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from sparsedp.api.errors import SparsedpError
from sparsedp.api.events import TrialChecked, TrialEvent, TrialStarted
from sparsedp.data import DataError, default_cache_dir, load_dataset, prepare_splits
from sparsedp.data.splits import SplitData
from sparsedp.execution.preflight import PreflightError, check_device
from sparsedp.plugins import PluginError, import_plugin, load_entry_points
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training import EngineSettings, EvalResult, TrialConfig, TrialResult, run_trial
from sparsedp.training.trainer import build_trial_model
from sparsedp.training.tuning import default_micro_batch, measure_eval_settings


@dataclass(frozen=True)
class TrialMeasurement:
    """What :func:`measure_trial` measured; :meth:`to_dict` is ``sparsedp trial --json``."""

    workload: str
    dataset: str  # the data set's label, e.g. "MNIST"
    sparsity: float
    batch_size: int
    status: str  # complete | incomplete | infeasible
    steps_to_result: int | None
    steps_taken: int
    final_val_error: float | None
    final_error_exact: bool  # false: a lower bound (the last check stopped early)
    wall_time: float  # pruning, training and checks, in seconds
    total_time: float  # wall_time plus loading the data and tuning the engine
    samples_per_second: float
    eval_share: float
    measured_sparsity: float
    message: str
    result: TrialResult = field(repr=False)  # everything: curve, mask report, timings

    @property
    def mask_report(self) -> dict[str, Any]:
        """Kept and total weights per prunable parameter and overall."""
        return self.result.mask_report

    @property
    def curve(self) -> list[tuple[int, float, bool]]:
        """``(step, validation error, exact)`` of every check."""
        return self.result.curve

    def to_dict(self) -> dict[str, Any]:
        """The measurement without ``result``, JSON-ready."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__
                if name != "result"}


def measure_trial(
    workload: str,
    sparsity: float,
    batch_size: int,
    lr: float,
    *,
    momentum: float | None = None,
    decay_steps: int | None = None,
    end_lr_factor: float | None = None,
    seed: int = 0,
    data_seed: int = 0,
    goal_error: float | None = None,
    max_steps: int | None = None,
    eval_every: int | None = None,
    hidden_units: int = 0,
    pruner: str = "snip",
    prune_biases: bool = False,
    snip_batches: int | None = None,
    pruner_options: Mapping[str, Any] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    full_eval: bool = False,
    on_event: Callable[[TrialEvent], None] | None = None,
    plugins: Sequence[str] = (),
) -> TrialMeasurement:
    """Prune a fresh network of ``workload`` at initialization to ``sparsity``, train it with
    ``batch_size`` and learning rate ``lr``, and measure its steps-to-result.

    Unset goal, budget and check interval take the workload's values; ``snip_batches``
    limits SNIP to that many mini-batches of 100 (default: the whole training split);
    ``pruner_options`` sets the method's other options (docs/pruners.md), e.g.
    ``{"grasp_temperature": 200}`` or ``{"synflow_iterations": 100}``;
    ``full_eval`` evaluates the whole validation split at every check instead of the exact
    early exit (same outcome, exact final errors). ``on_event`` receives a
    :class:`~sparsedp.api.events.TrialStarted` and then a
    :class:`~sparsedp.api.events.TrialChecked` per validation check. ``plugins`` are
    modules to import first, beside the installed ones (docs/plugins.md). Bad arguments,
    plugins, data or device raise :class:`SparsedpError` (exit code 2).
    """
    _load_plugins(plugins)  # before the names they register are checked
    known = [f.name for f in fields(PruneSettings)
             if f.name not in ("method", "prune_biases", "snip_batches")]
    unknown = sorted(set(pruner_options or {}) - set(known))
    if unknown:
        raise SparsedpError(f"pruner_options: unknown option(s) {', '.join(unknown)}; "
                            f"known: {', '.join(known)}")
    try:
        config = TrialConfig(
            workload=workload, sparsity=sparsity, batch_size=batch_size, lr=lr,
            momentum=momentum, decay_steps=decay_steps, end_lr_factor=end_lr_factor,
            seed=seed, data_seed=data_seed, goal_error=goal_error, max_steps=max_steps,
            eval_every=eval_every, hidden_units=hidden_units,
            pruning=PruneSettings(pruner, prune_biases, snip_batches=snip_batches,
                                  **dict(pruner_options or {})),
        )
    except ValueError as exc:  # the arguments did not validate
        raise SparsedpError(str(exc)) from None
    return measure_trial_config(config, data_dir=data_dir, device=device, full_eval=full_eval,
                                on_event=on_event, plugins=plugins)


def measure_trial_config(
    config: TrialConfig,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    full_eval: bool = False,
    on_event: Callable[[TrialEvent], None] | None = None,
    plugins: Sequence[str] = (),
) -> TrialMeasurement:
    """:func:`measure_trial` for a ready :class:`~sparsedp.training.TrialConfig`, e.g. trial
    ``i`` of a study, ``study.trial_config(i, study.space().points(i + 1)[i])``."""
    emit = on_event or (lambda event: None)
    for label, value in (("seed", config.seed), ("data_seed", config.data_seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SparsedpError(f"{label} must be a whole number >= 0, got {value!r} "
                                "(as in experiment files); use e.g. 0")
    _load_plugins(plugins)
    try:
        check_device(device, setting="--device")
    except PreflightError as exc:
        raise SparsedpError(str(exc)) from None
    started = time.perf_counter()
    try:
        dataset = load_dataset(config.spec.dataset, data_dir)
        data = prepare_splits(dataset)
    except DataError as exc:
        raise SparsedpError(str(exc)) from exc
    if config.train_examples is not None and config.train_examples > data.num_train:
        raise SparsedpError(f"train_examples = {config.train_examples} is more than the "
                            f"training split ({data.num_train} examples); use fewer")
    data = data.first(config.train_examples)  # a study's training-set size, if it has one
    if config.batch_size > data.num_train:
        raise SparsedpError(
            f"batch size {config.batch_size} is larger than the training split "
            f"({data.num_train} examples)"
        )
    emit(TrialStarted(config.spec.name, dataset.label, str(dataset.source), data.num_train,
                      data.num_val, config.resolved_goal_error, config.resolved_max_steps,
                      config.resolved_eval_every))

    def progress(step: int, check: EvalResult) -> None:
        emit(TrialChecked(step, check.error, check.exact))

    result = run_trial(config, data, engine=_engine(config, data, device, full_eval),
                       progress=progress)
    return TrialMeasurement(
        workload=config.spec.name,
        dataset=dataset.label,
        sparsity=config.sparsity,
        batch_size=config.batch_size,
        status=result.status,
        steps_to_result=result.steps_to_result,
        steps_taken=result.steps_taken,
        final_val_error=result.final_val_error,
        final_error_exact=result.final_error_exact,
        wall_time=result.wall_time,
        total_time=time.perf_counter() - started,
        samples_per_second=result.samples_per_second,
        eval_share=result.eval_share,
        measured_sparsity=result.mask_report["sparsity"],
        message=result.message,
        result=result,
    )


def _load_plugins(modules: Sequence[str]) -> None:
    """Import the installed entry-point plugins and ``modules``."""
    try:
        load_entry_points()
        for module in modules:
            import_plugin(module)
    except PluginError as exc:
        raise SparsedpError(str(exc)) from exc


def _engine(config: TrialConfig, data: SplitData, device: str, full_eval: bool
            ) -> EngineSettings:
    """The fast engine's settings (measured evaluation layout and batch), or plain ones."""
    if full_eval:
        return EngineSettings(early_exit=False, device=device,
                              micro_batch=default_micro_batch(config.batch_size, device))
    spec = config.spec

    def make_model() -> torch.nn.Module:
        return build_trial_model(config, data, seed=0).to(device)

    channels_last, eval_batch = measure_eval_settings(
        make_model, data.validation()[0].to(device),
        cache_file=default_cache_dir() / "eval-settings.json",
        cache_key=f"{spec.dataset}|{spec.model}|{config.hidden_units}",
    )
    return EngineSettings(early_exit=True, eval_batch_size=eval_batch,
                          channels_last=channels_last, device=device,
                          micro_batch=default_micro_batch(config.batch_size, device))
