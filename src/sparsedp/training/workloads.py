"""Workload registry: data set, model, optimizer, schedule, searched metaparameters, goal.

The built-in workloads are the paper's; plugins and experiment files add their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as replace_fields
from typing import TYPE_CHECKING, Any

from sparsedp.origin import BUILT_IN, check_free, check_part, current_origin
from sparsedp.training.optimizers import OPTIMIZERS
from sparsedp.training.schedules import SCHEDULES

if TYPE_CHECKING:
    from sparsedp.pruning.prune import PruneSettings

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
    model_options: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    origin: str = BUILT_IN
    pruning: PruneSettings | None = None  # None: the experiment's [pruning]

    def __post_init__(self) -> None:
        check_part("workload", self.name, self.version, self.description)
        where = f"workload {self.name!r}"
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"{where}: unknown optimizer {self.optimizer!r}; use one of "
                             f"{', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"{where}: unknown schedule {self.schedule!r}; use one of "
                             f"{', '.join(SCHEDULES)}")
        object.__setattr__(self, "searched", tuple(self.searched))
        unknown = [m for m in self.searched if m not in METAPARAMETERS]
        if unknown:
            raise ValueError(f"{where}: cannot search {unknown[0]!r}; searchable: "
                             f"{', '.join(METAPARAMETERS)}")
        needed = required_metaparameters(self.optimizer, self.schedule)
        missing = [m for m in needed if m not in self.searched]
        if missing:
            raise ValueError(f"{where}: {self.optimizer}/{self.schedule} needs {missing[0]!r} "
                             f"searched; search {', '.join(needed)}")
        if not isinstance(self.goal_error, (int, float)) or not 0 < self.goal_error < 1:
            raise ValueError(f"{where}: goal_error must be in (0, 1), got {self.goal_error!r}")
        for label in ("eval_every", "max_steps"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}: {label} must be a whole number >= 1, got {value!r}")

    def definition(self) -> dict[str, Any]:
        """What decides a trial's outcome (the study key of a non built-in workload)."""
        return {"dataset": self.dataset, "model": self.model, "optimizer": self.optimizer,
                "schedule": self.schedule, "searched": list(self.searched),
                "goal_error": self.goal_error, "eval_every": self.eval_every,
                "max_steps": self.max_steps, "model_options": dict(self.model_options),
                "version": self.version}


def required_metaparameters(optimizer: str, schedule: str) -> tuple[str, ...]:
    """The metaparameters a trial needs: lr, momentum unless plain SGD or AdamW (whose β1 is
    ``momentum`` when searched, else 0.9), decay settings for a linear decay (the default
    ``searched`` of a workload)."""
    out = ["lr"]
    if optimizer not in ("sgd", "adamw"):
        out.append("momentum")
    if schedule == "linear-decay":
        out += ["decay_steps", "end_lr_factor"]
    return tuple(out)


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

# Beyond the paper: a small Vision Transformer with AdamW (docs/workloads.md). Only the
# learning rate is searched (AdamW's beta1 stays 0.9 unless a workload searches momentum).
_VIT_SIZES = {"dim": 64, "depth": 4, "heads": 4, "mlp_dim": 128, "pool": "cls"}
for _dataset, _label, _patch, _goal, _budget in (("mnist", "MNIST", 7, 0.02, 40_000),
                                                 ("cifar10", "CIFAR-10", 4, 0.4, 100_000)):
    WORKLOADS[f"{_dataset}-vit-adamw"] = Workload(
        name=f"{_dataset}-vit-adamw",
        dataset=_dataset,
        model="vit",
        optimizer="adamw",
        schedule="constant",
        searched=("lr",),
        goal_error=_goal,
        eval_every=16,
        max_steps=_budget,
        description=f"ViT (patch {_patch}, dim 64, depth 4, 4 heads, MLP 128, class token) on "
                    f"{_label}, AdamW (weight decay 0.05), constant learning rate",
        model_options={"patch": _patch, **_VIT_SIZES},
    )


BUILTIN_WORKLOADS = frozenset(WORKLOADS)


def register_workload(workload: Workload, *, replace: bool = False) -> Workload:
    """Add ``workload`` to the registry (its model and data set are checked when an
    experiment uses it, so they may be registered later)."""
    if not isinstance(workload, Workload):
        raise ValueError(f"register_workload takes a Workload, got {type(workload).__name__}")
    check_free("workload", workload.name, WORKLOADS, BUILTIN_WORKLOADS, replace)
    if workload.origin == BUILT_IN:
        workload = replace_fields(workload, origin=current_origin())
    WORKLOADS[workload.name] = workload
    return workload


def get_workload(name: str) -> Workload:
    """The registered workload ``name`` (a clear error listing the known ones otherwise)."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(
            f"unknown workload {name!r}; known: {', '.join(sorted(WORKLOADS))}"
        ) from None
