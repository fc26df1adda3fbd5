"""The pruner registry: what a pruning method is, what it is given, and how to add one.

A pruner is a *saliency function* ``(model, data, settings) -> scores``: for every prunable
parameter (``data.parameters``) a tensor of scores of the parameter's shape, **higher =
keep**. Every pruner is ranked by the same global top-k (:func:`global_topk_mask`): the
``round(N · (1 − sparsity))`` highest scores over all prunable parameters together are kept,
ties going to earlier parameters, then earlier entries. The contract (docs/pruners.md, checked
for every registered pruner by tests/test_pruner_contract.py):

- the keys are exactly the names in ``data.parameters``, each tensor of that parameter's shape,
  with finite values (any sign; only the order matters);
- the same model, data, settings and ``data.seed`` give the same scores (draw randomness from
  :meth:`PruneData.generator`, never from the global generators);
- the model is left as it was: its parameters, buffers, mode and ``.grad`` (work on a copy,
  or use ``torch.autograd.grad``);
- a pruner with ``needs_data=False`` works with ``data.train`` None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sparsedp.data.splits import SplitData
from sparsedp.pruning.saliency import snip_batches

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, eq=False)
class PruneData:
    """What a pruner is given besides the model and its settings.

    ``parameters``: the prunable parameters of the model, by name, in model order: score
    exactly these. ``seed``: the trial's seed. ``sparsity``: the target fraction removed (for
    methods whose scores depend on it, such as iterative ones; ``None`` when the caller shares
    the scores between sparsities, which only happens for pruners with
    ``uses_sparsity=False``). ``input_shape``: one example's shape, e.g. ``(1, 28, 28)``, and
    ``num_classes``: the model's output size (``None`` only when the caller gave neither data
    nor these). ``train``: the normalised training split (:class:`SplitData`), ``None`` in a
    data-free call.
    """

    parameters: dict[str, nn.Parameter]
    seed: int
    sparsity: float | None = None
    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    train: SplitData | None = None

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are (move batches here)."""
        return next(iter(self.parameters.values())).device

    def generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator seeded from ``seed + salt``: one salt per use of randomness."""
        return torch.Generator().manual_seed(self.seed + salt)

    def require_train(self, who: str) -> SplitData:
        """The training split, or a one-line error naming the pruner that needs it."""
        if self.train is None:
            raise ValueError(f"pruner {who!r} needs training data, and none was given")
        return self.train

    def require_input_shape(self, who: str) -> tuple[int, ...]:
        """The input shape, or a one-line error naming the pruner that needs it."""
        if self.input_shape is None:
            raise ValueError(
                f"pruner {who!r} needs the model's input shape: pass data or input_shape"
            )
        return self.input_shape

    def batches(
        self, batch_size: int = 100, num_batches: int | None = None, who: str = "snip"
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """SNIP's batches: ``(x, y, weight)`` chunks of consecutive training mini-batches
        (all of the split, or the first ``num_batches``); weighted losses summed over all
        chunks give the sum of the mini-batches' mean losses (see :func:`snip_batches`)."""
        chunk = 2 if self.device.type == "cpu" else 50  # ~5,000 examples a pass on GPUs
        return snip_batches(self.require_train(who), batch_size, num_batches, chunk)

    def class_balanced(
        self, per_class: int, salt: int = 0, who: str = "grasp"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` training examples of every class (all of a class that has fewer),
        the first ones met in a permutation of the training split seeded by ``seed + salt``;
        returned in that order as normalised ``(x, y)`` on the CPU."""
        train = self.require_train(who)
        labels = np.asarray(train.dataset.train_labels)[train.train_index]
        order = np.random.default_rng(self.seed + salt).permutation(labels.shape[0])
        taken: dict[int, int] = {}
        chosen = []
        for position in order:
            label = int(labels[position])
            if taken.get(label, 0) < per_class:
                taken[label] = taken.get(label, 0) + 1
                chosen.append(position)
        return train.train_batch(np.asarray(chosen, dtype=np.int64))


# The third argument is the :class:`~sparsedp.pruning.settings.PruneSettings`; not named here,
# since that module checks its method against this registry (imports run one way only).
Saliency = Callable[[nn.Module, PruneData, Any], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Pruner:
    """A registered pruning method.

    ``saliency(model, data, settings)`` returns scores, higher = keep (see the module doc).
    ``version``: non-empty for plugin pruners; it enters the study key, so change it when the
    scores change. ``needs_data``: False for data-free methods (called with ``data.train``
    None when no data is at hand). ``uses_sparsity``: True when the scores depend on the
    target sparsity (``data.sparsity``), e.g. iterative methods; such scores are never shared
    between sparsities.
    """

    name: str
    saliency: Saliency
    description: str = ""
    version: str = ""
    needs_data: bool = True
    uses_sparsity: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(
                f"pruner name {self.name!r} must be letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit)"
            )
        if not callable(self.saliency):
            raise ValueError(f"pruner {self.name!r}: saliency must be callable "
                             "(model, data, settings) -> {parameter name: scores}")
        if not isinstance(self.version, str) or not isinstance(self.description, str):
            raise ValueError(f"pruner {self.name!r}: version and description must be strings")


_REGISTRY: dict[str, Pruner] = {}
_BUILTIN: set[str] = set()


def register_pruner(pruner: Pruner, *, replace: bool = False) -> Pruner:
    """Add ``pruner`` to the registry (``replace=True`` to overwrite a plugin's pruner of the
    same name; built-in pruners cannot be replaced). Returns it, so it can decorate."""
    if not isinstance(pruner, Pruner):
        raise ValueError(f"register_pruner expects a Pruner, got {type(pruner).__name__}")
    if pruner.name in _BUILTIN:
        raise ValueError(f"pruner {pruner.name!r} is built in and cannot be replaced; "
                         "register yours under another name")
    if pruner.name in _REGISTRY and not replace:
        raise ValueError(f"a pruner named {pruner.name!r} is already registered; choose "
                         "another name, or pass replace=True to overwrite it")
    _REGISTRY[pruner.name] = pruner
    return pruner


def register_builtin(pruner: Pruner) -> Pruner:
    """Register one of sparsedp's own pruners (once, at import)."""
    register_pruner(pruner)
    _BUILTIN.add(pruner.name)
    return pruner


def get_pruner(name: str) -> Pruner:
    """The registered pruner ``name``, or a ValueError listing the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown pruner {name!r}; known: {', '.join(pruner_names())}"
        ) from None


def pruner_names() -> tuple[str, ...]:
    """Names of the registered pruners, in registration order (built-ins first)."""
    return tuple(_REGISTRY)


def check_scores(
    name: str, scores: object, parameters: dict[str, nn.Parameter]
) -> dict[str, torch.Tensor]:
    """Scores checked against the contract, in parameter order, detached; a one-line
    ValueError naming the pruner otherwise."""
    if not isinstance(scores, dict):
        raise ValueError(f"pruner {name!r} returned {type(scores).__name__}, expected a dict "
                         "{parameter name: scores}")
    missing = [n for n in parameters if n not in scores]
    extra = [str(n) for n in scores if n not in parameters]
    if missing or extra:
        problem = f"no scores for {', '.join(missing)}" if missing else \
            f"scores for {', '.join(extra)}, which are not prunable parameters"
        raise ValueError(f"pruner {name!r} returned {problem}")
    checked: dict[str, torch.Tensor] = {}
    for key, parameter in parameters.items():
        value = scores[key]
        if not isinstance(value, torch.Tensor) or not (
            value.is_floating_point() or value.dtype in (torch.int64, torch.int32, torch.bool)
        ):
            raise ValueError(f"pruner {name!r}: scores for {key!r} are not a real tensor")
        if tuple(value.shape) != tuple(parameter.shape):
            raise ValueError(f"pruner {name!r}: scores for {key!r} have shape "
                             f"{tuple(value.shape)}, the parameter {tuple(parameter.shape)}")
        value = value.detach()
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"pruner {name!r}: scores for {key!r} are not all finite")
        checked[key] = value
    return checked
