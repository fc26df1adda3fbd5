"""Worker side of an experiment: load data once, run trial tasks, return records.

A worker keeps each data set it has loaded (memory-mapped uint8 arrays, shared through the
page cache between processes) and a cache of SNIP saliencies. A saliency depends only on the
model's initialisation and the training data, not on the sparsity or the batch size, so trial i
of every study in a row of the grid shares it; it is kept on disk under the results directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from sparsedp.data import SplitData, load_dataset, prepare_splits
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.tasks import TaskFailure, TrialGroup, TrialTask
from sparsedp.execution.trial_checkpoints import INFLIGHT, TrialCheckpoints
from sparsedp.plugins import PluginSet
from sparsedp.pruning import SNIP_BASED, PruneSettings, compute_saliency
from sparsedp.pruning.builtin import random_at_snip_layer_counts
from sparsedp.specs import EngineOptions
from sparsedp.training import EngineSettings, TrialConfig, TrialResult, TrialRun
from sparsedp.training.batched import BatchedTrials
from sparsedp.training.parts import study_parts
from sparsedp.training.stopping import combined_limit
from sparsedp.training.trainer import build_trial_model
from sparsedp.training.tuning import default_micro_batch, measure_eval_settings, measure_slots


@dataclass
class StartedTrial:
    """A trial set up in this worker and advanced piece by piece (interleaved trials)."""

    task: TrialTask
    config: TrialConfig
    data: SplitData
    engine: EngineSettings
    run: TrialRun


@dataclass
class StartedGroup:
    """A rolling group of batched trials set up in this worker, advanced check by check."""

    group: TrialGroup
    configs: list[TrialConfig]
    data: SplitData
    engine: EngineSettings
    run: BatchedTrials
    slots: int
    reported: set[int] = field(default_factory=set)
    broken: bool = False

    @property
    def task(self) -> TrialTask:
        return self.group.tasks[0]

    @property
    def finished(self) -> bool:
        return self.broken or len(self.reported) == len(self.group.tasks)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class WorkerContext:
    """Per-process state: loaded data sets, saliency cache, engine settings."""

    def __init__(
        self,
        engine: EngineOptions,
        data_dir: str | None,
        cache_dir: str | None,
        provenance: dict[str, Any],
        plugins: PluginSet | None = None,
    ) -> None:
        if plugins is not None:  # this process's registries: the experiment's plugins
            plugins.activate()
        self.engine = engine
        self.data_dir = data_dir
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.provenance = provenance
        self._data: dict[str, SplitData] = {}
        self._eval_choice: dict[str, tuple[bool, int]] = {}
        self.checkpoints = TrialCheckpoints(
            self.cache_dir / INFLIGHT if self.cache_dir else None,
            engine.checkpoint_every, engine.precision)
        if engine.threads:
            torch.set_num_threads(engine.threads)

    def data(self, dataset: str, train_examples: int | None = None) -> SplitData:
        """The data set's splits; with ``train_examples``, only the first N training
        examples (:meth:`SplitData.first`)."""
        if dataset not in self._data:
            self._data[dataset] = prepare_splits(load_dataset(dataset, self.data_dir))
        key = f"{dataset}|{train_examples}"  # one subset per size: its device copy is shared
        if train_examples is not None and key not in self._data:
            self._data[key] = self._data[dataset].first(train_examples)
        return self._data[key if train_examples is not None else dataset]

    def engine_settings(self, config: TrialConfig, data: SplitData) -> EngineSettings:
        """Speed settings for a trial: given in the experiment file, else measured/chosen."""
        engine = self.engine
        micro = engine.micro_batch or default_micro_batch(config.batch_size, engine.device)
        if engine.eval_batch_size:
            channels_last, eval_batch = engine.channels_last, engine.eval_batch_size
        else:
            channels_last, eval_batch = self._eval_settings(config, data)
        return EngineSettings(early_exit=engine.early_exit, eval_batch_size=eval_batch,
                              channels_last=channels_last or engine.channels_last,
                              micro_batch=micro, device=engine.device,
                              precision=engine.precision, keep_complete=engine.keep_complete,
                              train_channels_last=engine.channels_last)

    def _eval_settings(self, config: TrialConfig, data: SplitData) -> tuple[bool, int]:
        spec = config.spec
        key = f"{spec.dataset}|{spec.model}|{config.hidden_units}"
        if key not in self._eval_choice:

            def make_model() -> torch.nn.Module:
                return build_trial_model(config, data, seed=0).to(self.engine.device)

            x = data.validation()[0].to(self.engine.device)
            cache = self.cache_dir / "eval-settings.json" if self.cache_dir else None
            self._eval_choice[key] = measure_eval_settings(make_model, x, cache_file=cache,
                                                           cache_key=key)
        return self._eval_choice[key]

    def saliency(self, config: TrialConfig, data: SplitData) -> dict[str, torch.Tensor] | None:
        """SNIP saliency for the trial's initialisation, from the disk cache when present
        (for ``random-snip-layers``, its scores made from that same SNIP saliency)."""
        if config.sparsity == 0.0 or config.pruning.method not in SNIP_BASED:
            return None
        snip = self._snip_saliency(config, data, replace(config.pruning, method="snip"))
        if config.pruning.method == "random-snip-layers":
            return random_at_snip_layer_counts(snip, config.sparsity, config.seed)
        return snip

    def _snip_saliency(self, config: TrialConfig, data: SplitData,
                       pruning: PruneSettings) -> dict[str, torch.Tensor]:
        spec = config.spec
        identity = {
            "dataset": spec.dataset,
            "model": spec.model,
            "hidden_units": config.hidden_units,
            "seed": config.seed,
            "pruning": pruning.cache_identity(),
            "source": data.dataset.source,
        }
        if parts := study_parts(config.workload, pruning.method):
            identity["parts"] = parts  # a plugin's new version: a new saliency
        if config.train_examples is not None:  # SNIP sees only the trial's training data
            identity["train_examples"] = config.train_examples
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
        path = self.cache_dir / "saliency" / f"{digest}.pt" if self.cache_dir else None
        if path is not None and path.exists():
            try:
                return torch.load(path, weights_only=True)
            except Exception:  # damaged (unpickling raises all sorts): recompute
                path.unlink(missing_ok=True)
        model = build_trial_model(config, data).to(self.engine.device)
        scores = compute_saliency(model, pruning, data, config.seed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            torch.save({k: v.cpu() for k, v in scores.items()}, tmp)
            os.replace(tmp, path)
        return scores

    def _limit(self, step_limit, limit_known: int | None):
        """The stopping limit: the live limit (if any) and the limit known at dispatch."""
        stop = self.engine.stop_hopeless

        def limit() -> int | None:
            live = step_limit() if step_limit is not None else None  # may exit an orphan
            return combined_limit(live, limit_known) if stop else None

        return limit

    def _record(self, task: TrialTask, config: TrialConfig, result: TrialResult,
                engine: EngineSettings, data: SplitData, batched: int = 1,
                resumed_at: list[int] | None = None,
                resumed_on: list[str] | None = None) -> TrialRecord:
        return TrialRecord(
            study_key=task.study.key,
            trial_index=task.index,
            seed=config.seed,
            metaparameters=dict(task.point),
            status=result.status,
            steps_to_result=result.steps_to_result,
            steps_taken=result.steps_taken,
            final_val_error=result.final_val_error,
            final_error_exact=result.final_error_exact,
            curve=result.curve,
            wall_time=result.wall_time,
            train_time=result.train_time,
            eval_time=result.eval_time,
            prune_time=result.prune_time,
            samples_per_second=result.samples_per_second,
            eval_share=result.eval_share,
            eval_examples=result.eval_examples,
            message=result.message,
            attempts=task.attempt,
            peak_rss_mb=peak_rss_mb(),
            mask_report=result.mask_report,
            engine={**_settings(engine), "batched_trials": batched,
                    "stop_hopeless": self.engine.stop_hopeless, "order": self.engine.order,
                    "early_exit_order": "margin",  # what ordered the lower bounds in the curve
                    **({"resumed_at": resumed_at, "resumed_on": resumed_on or []}
                       if resumed_at else {})},
            provenance={
                **self.provenance,
                "dataset_label": data.dataset.label,
                "data_source": data.dataset.source,
            },
        )

    def start(self, task: TrialTask, step_limit=None) -> StartedTrial | TaskFailure:
        """Set a trial up (data, saliency, pruning) without training it yet."""
        try:
            config = task.study.trial_config(task.index, task.point)
            data = self.data(config.spec.dataset, config.train_examples)
            saliency = self.saliency(config, data)
            engine = self.engine_settings(config, data)
            run = TrialRun(config, data, engine=engine, saliency=saliency,
                           step_limit=self._limit(step_limit, task.limit_known))
            self.checkpoints.resume(task, run)  # a save from a stopped run: go on from there
            return StartedTrial(task, config, data, engine, run)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            return _failure(task, exc)

    def advance(self, started: StartedTrial, checks: int | None = None
                ) -> TrialRecord | TaskFailure | None:
        """Advance a started trial by ``checks`` checks (all: None); its record once it ends."""
        task = started.task
        try:
            if not started.run.advance(checks):
                self.checkpoints.save_if_due(task, started.run)
                return None
            record = self._record(task, started.config, started.run.result(), started.engine,
                                  started.data, resumed_at=self.checkpoints.resumed_at(task),
                                  resumed_on=self.checkpoints.resumed_on(task))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self.checkpoints.discard(task)
            return _failure(task, exc)
        self.checkpoints.discard(task)
        return record

    def run(self, task: TrialTask, step_limit=None) -> TrialRecord | TaskFailure:
        """Run one trial; exceptions come back as a :class:`TaskFailure`."""
        started = self.start(task, step_limit)
        if isinstance(started, TaskFailure):
            return started
        outcome = self.advance(started)
        assert outcome is not None  # advance(None) runs the trial to its end
        return outcome

    def slots(self, configs: list[TrialConfig], data: SplitData, engine: EngineSettings) -> int:
        """How many trials of a group train at once: ``batched_trials`` when given, else
        measured on a GPU (:func:`measure_slots`), else 16."""
        if self.engine.batched_trials is not None:
            return min(self.engine.batched_trials, len(configs))
        if not engine.device.startswith("cuda"):
            return min(16, len(configs))
        spec = configs[0].spec
        cache = self.cache_dir / "group-sizes.json" if self.cache_dir else None
        return measure_slots(configs, data, engine, cache_file=cache,
                             cache_key=f"{spec.dataset}|{spec.model}|{configs[0].hidden_units}")

    def start_group(self, group: TrialGroup, step_limit=None) -> StartedGroup | list[TaskFailure]:
        """Set up a rolling group of a study's trials (:class:`BatchedTrials`); trials are
        built, pruned and joined as slots free up."""
        tasks = group.tasks
        try:
            configs = [t.study.trial_config(t.index, t.point) for t in tasks]
            data = self.data(configs[0].spec.dataset, configs[0].train_examples)
            engine = self.engine_settings(configs[0], data)
            slots = self.slots(configs, data, engine)
            run = BatchedTrials(configs, data, engine=engine, slots=slots,
                                saliencies=lambda k: self.saliency(configs[k], data),
                                step_limit=self._limit(step_limit, tasks[0].limit_known),
                                share_best=self.engine.stop_hopeless)
            return StartedGroup(group, configs, data, engine, run, slots)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            return [_failure(t, exc) for t in tasks]

    def advance_group(self, started: StartedGroup
                      ) -> list[tuple[TrialTask, TrialRecord | TaskFailure]]:
        """Train the group to its next check; the trials that ended, with their records.

        If the group raises, every trial not yet reported comes back as a failed attempt and
        the group is over.
        """
        tasks = started.group.tasks
        try:
            ended = started.run.advance()
            out = []
            for k in ended:
                result = started.run.results[k]
                assert result is not None
                out.append((tasks[k], self._record(tasks[k], started.configs[k], result,
                                                   started.engine, started.data,
                                                   started.slots)))
                started.reported.add(k)
            return out
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            started.broken = True
            return [(t, _failure(t, exc)) for k, t in enumerate(tasks)
                    if k not in started.reported]

    def run_group(self, group: TrialGroup, step_limit=None) -> list[TrialRecord | TaskFailure]:
        """Run a group of one study's trials to the end; one outcome per trial, in order."""
        started = self.start_group(group, step_limit)
        if isinstance(started, list):
            return list(started)
        outcomes: dict[int, TrialRecord | TaskFailure] = {}
        position = {id(t): k for k, t in enumerate(group.tasks)}
        while not started.finished:
            for task, outcome in self.advance_group(started):
                outcomes[position[id(task)]] = outcome
        return [outcomes[k] for k in range(len(group.tasks))]


def _settings(engine: EngineSettings) -> dict[str, Any]:
    """The trial's engine settings as recorded (channels-last training only when on, so the
    records of default-layout trials read as before it existed)."""
    settings = asdict(engine)
    if not settings["train_channels_last"]:
        del settings["train_channels_last"]
    return settings


def _failure(task: TrialTask, exc: BaseException) -> TaskFailure:
    return TaskFailure(task.study.key, task.index, task.attempt,
                       f"{type(exc).__name__}: {exc}", traceback.format_exc())
