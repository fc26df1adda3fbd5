"""Learning-rate schedules: constant, and linear decay then constant (TF polynomial, power 1)."""

from __future__ import annotations

from dataclasses import dataclass

SCHEDULES = ("constant", "linear-decay")


@dataclass(frozen=True)
class Schedule:
    """``lr(step)`` for step = 0, 1, … (the number of updates already applied)."""

    kind: str
    base_lr: float
    decay_steps: int | None = None
    end_lr_factor: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.kind!r}; known: {', '.join(SCHEDULES)}")
        if not self.base_lr > 0:
            raise ValueError(f"learning rate must be > 0, got {self.base_lr}")
        if self.kind == "linear-decay":
            if self.decay_steps is None or self.decay_steps < 1:
                raise ValueError("linear-decay needs decay_steps >= 1")
            if self.end_lr_factor is None or not 0 <= self.end_lr_factor <= 1:
                raise ValueError("linear-decay needs end_lr_factor in [0, 1]")

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.base_lr
        assert self.decay_steps is not None and self.end_lr_factor is not None
        end_lr = self.base_lr * self.end_lr_factor
        fraction = min(step, self.decay_steps) / self.decay_steps
        return (self.base_lr - end_lr) * (1.0 - fraction) + end_lr
