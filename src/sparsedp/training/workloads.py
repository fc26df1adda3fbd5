"""Workload registry: data set, model, optimizer, schedule, searched metaparameters, goal."""

from __future__ import annotations

from dataclasses import dataclass, field

from sparsedp.training.optimizers import OPTIMIZERS
from sparsedp.training.schedules import SCHEDULES

METAPARAMETERS = ("lr", "momentum", "decay_steps", "end_lr_factor")


@dataclass(frozen=True)
class Workload:
    """Everything fixed about a workload; trials vary only the searched metaparameters."""

    name: str
    dataset: str
    model: str
    optimizer: str
    schedule: str
    searched: tuple[str, ...]
    goal_error: float
    eval_every: int
    max_steps: int
    description: str
    paper: str = ""
    model_options: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.optimizer in OPTIMIZERS and self.schedule in SCHEDULES
        assert set(self.searched) <= set(METAPARAMETERS)


def _mnist_like(dataset: str, label: str, optimizer: str, paper: str) -> Workload:
    searched = ("lr",) if optimizer == "sgd" else ("lr", "momentum")
    return Workload(
        name=f"{dataset}-simplecnn-{optimizer}",
        dataset=dataset,
        model="simple-cnn",
        optimizer=optimizer,
        schedule="constant",
        searched=searched,
        goal_error=0.02,
        eval_every=16,
        max_steps=40_000,
        description=f"Simple-CNN on {label}, {optimizer}, constant learning rate",
        paper=paper,
    )


WORKLOADS: dict[str, Workload] = {}
for _optimizer, _paper in (("sgd", "W1"), ("momentum", "W2"), ("nesterov", "W2")):
    for _dataset, _label in (("mnist", "MNIST"), ("fashion-mnist", "Fashion-MNIST")):
        _w = _mnist_like(_dataset, _label, _optimizer, _paper if _dataset == "mnist" else "")
        WORKLOADS[_w.name] = _w
WORKLOADS["cifar10-resnet8-nesterov"] = Workload(
    name="cifar10-resnet8-nesterov",
    dataset="cifar10",
    model="resnet-8",
    optimizer="nesterov",
    schedule="linear-decay",
    searched=("lr", "momentum", "decay_steps", "end_lr_factor"),
    goal_error=0.4,
    eval_every=16,
    max_steps=100_000,
    description="ResNet-8 (no batch norm) on CIFAR-10, Nesterov, linear learning-rate decay",
    paper="W3",
)


def get_workload(name: str) -> Workload:
    """The registered workload ``name`` (a clear error listing the known ones otherwise)."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(
            f"unknown workload {name!r}; known: {', '.join(sorted(WORKLOADS))}"
        ) from None
