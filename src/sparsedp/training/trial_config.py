"""The typed, frozen description of one trial."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from sparsedp.pruning.prune import PruneSettings, check_sparsity
from sparsedp.training.optimizers import check_optimizer
from sparsedp.training.schedules import Schedule
from sparsedp.training.workloads import Workload, get_workload


@dataclass(frozen=True)
class TrialConfig:
    """One trial: a workload, a sparsity, a batch size and one point of metaparameters.

    ``goal_error``, ``max_steps`` and ``eval_every`` default to the workload's values when
    ``None``. ``seed`` drives the initialisation (and so the SNIP mask); ``data_seed`` drives
    the order of training batches (shared by every trial of a study by default).
    """

    workload: str
    sparsity: float
    batch_size: int
    lr: float
    momentum: float | None = None
    decay_steps: int | None = None
    end_lr_factor: float | None = None
    seed: int = 0
    data_seed: int = 0
    goal_error: float | None = None
    max_steps: int | None = None
    eval_every: int | None = None
    hidden_units: int = 0
    pruning: PruneSettings = field(default_factory=PruneSettings)
    train_examples: int | None = None  # the first N of the training split (None: all)

    def __post_init__(self) -> None:
        spec = get_workload(self.workload)
        check_sparsity(self.sparsity)
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if spec.optimizer != "sgd":
            if self.momentum is None and spec.optimizer != "adamw":  # adamw: beta1 = 0.9
                raise ValueError(f"workload {self.workload} ({spec.optimizer}) needs --momentum")
            check_optimizer(spec.optimizer, self.momentum)
        if spec.schedule == "linear-decay" and (
            self.decay_steps is None or self.end_lr_factor is None
        ):
            raise ValueError(
                f"workload {self.workload} uses linear decay: give --decay-steps and "
                "--end-lr-factor"
            )
        if self.goal_error is not None and not 0 < self.goal_error < 1:
            raise ValueError(f"goal error must be in (0, 1), got {self.goal_error}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max steps must be >= 1, got {self.max_steps}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"eval interval must be >= 1, got {self.eval_every}")
        if self.hidden_units and spec.model != "simple-cnn":
            raise ValueError("hidden_units applies to the simple-cnn model only")
        if self.hidden_units < 0:
            raise ValueError(f"hidden units must be >= 0, got {self.hidden_units}")
        if self.train_examples is not None and self.train_examples < 1:
            raise ValueError(f"train_examples must be >= 1, got {self.train_examples}")

    @property
    def spec(self) -> Workload:
        return get_workload(self.workload)

    @property
    def resolved_goal_error(self) -> float:
        return self.goal_error if self.goal_error is not None else self.spec.goal_error

    @property
    def resolved_max_steps(self) -> int:
        return self.max_steps if self.max_steps is not None else self.spec.max_steps

    @property
    def resolved_eval_every(self) -> int:
        return self.eval_every if self.eval_every is not None else self.spec.eval_every

    def schedule(self) -> Schedule:
        return Schedule(self.spec.schedule, self.lr, self.decay_steps, self.end_lr_factor)

    def with_metaparameters(self, **values: float) -> TrialConfig:
        return replace(self, **values)
