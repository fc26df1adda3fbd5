"""A validated pruning mask with a per-layer sparsity report."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


class MaskError(ValueError):
    """A mask that does not fit its model or holds values other than 0/1."""


@dataclass(frozen=True)
class LayerSparsity:
    """One row of the sparsity report."""

    name: str
    shape: tuple[int, ...]
    total: int
    kept: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.kept / self.total if self.total else 0.0


class Mask:
    """Binary masks for the prunable parameters of a model, keyed by parameter name.

    Values are checked to be exactly 0 or 1 and shapes to match the model. Parameters not in
    the mask are dense. ``apply_`` zeroes pruned weights; ``mask_gradients_`` zeroes their
    gradients so optimizer state (momentum buffers) never picks them up.
    """

    def __init__(self, masks: dict[str, torch.Tensor], model: nn.Module) -> None:
        parameters = dict(model.named_parameters())
        checked: dict[str, torch.Tensor] = {}
        for name, mask in masks.items():
            if name not in parameters:
                raise MaskError(f"mask names parameter {name!r}, which the model does not have")
            if tuple(mask.shape) != tuple(parameters[name].shape):
                raise MaskError(
                    f"mask for {name!r} has shape {tuple(mask.shape)}, "
                    f"parameter has {tuple(parameters[name].shape)}"
                )
            values = mask.detach().to(torch.float32)
            if not bool(((values == 0) | (values == 1)).all()):
                raise MaskError(f"mask for {name!r} holds values other than 0 and 1")
            checked[name] = values.to(device=parameters[name].device)
        self._masks = checked
        self._parameters = {name: parameters[name] for name in checked}
        self._own = (list(self._parameters.values()), list(checked.values()))

    @property
    def names(self) -> list[str]:
        return list(self._masks)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._masks[name]

    def items(self):
        return self._masks.items()

    @torch.no_grad()
    def apply_(self, model: nn.Module | None = None) -> None:
        """Zero the pruned weights (of ``model``, or of the model the mask was built for)."""
        parameters = dict(model.named_parameters()) if model is not None else self._parameters
        for name, mask in self._masks.items():
            parameters[name].mul_(mask)

    @torch.no_grad()
    def mask_gradients_(self, model: nn.Module | None = None) -> None:
        """Zero the gradients of pruned weights (of ``model``, or of the mask's own model).

        For the mask's own model this is one ``foreach`` multiply over cached lists, the
        per-step path of the trainer; the same products as one ``mul_`` per tensor.
        """
        if model is None:
            params, masks = self._own
            pairs = [(p.grad, m) for p, m in zip(params, masks, strict=True)
                     if p.grad is not None]
            if pairs:
                torch._foreach_mul_([g for g, _ in pairs], [m for _, m in pairs])
            return
        parameters = dict(model.named_parameters())
        for name, mask in self._masks.items():
            grad = parameters[name].grad
            if grad is not None:
                grad.mul_(mask)

    def report(self) -> list[LayerSparsity]:
        """Per-layer totals and kept counts, in parameter order."""
        return [
            LayerSparsity(name, tuple(mask.shape), mask.numel(), int(mask.sum().item()))
            for name, mask in self._masks.items()
        ]

    @property
    def total(self) -> int:
        return sum(row.total for row in self.report())

    @property
    def kept(self) -> int:
        return sum(row.kept for row in self.report())

    @property
    def sparsity(self) -> float:
        """Fraction of prunable parameters removed."""
        return 1.0 - self.kept / self.total if self.total else 0.0

    def empty_layers(self) -> list[str]:
        """Names of prunable weight tensors (rank >= 2) with every entry pruned."""
        return [r.name for r in self.report() if r.kept == 0 and len(r.shape) >= 2]

    def format_report(self) -> str:
        """The sparsity report as aligned text."""
        lines = [f"{'parameter':<22} {'shape':<18} {'kept':>9} {'total':>9} {'sparsity':>9}"]
        for row in self.report():
            lines.append(
                f"{row.name:<22} {'x'.join(map(str, row.shape)):<18} {row.kept:>9} "
                f"{row.total:>9} {row.sparsity:>8.2%}"
            )
        lines.append(
            f"{'all prunable':<22} {'':<18} {self.kept:>9} {self.total:>9} {self.sparsity:>8.2%}"
        )
        return "\n".join(lines)

    def report_dict(self) -> dict:
        """The report as JSON-ready data."""
        return {
            "total": self.total,
            "kept": self.kept,
            "sparsity": self.sparsity,
            "layers": [
                {
                    "name": r.name,
                    "shape": list(r.shape),
                    "total": r.total,
                    "kept": r.kept,
                    "sparsity": r.sparsity,
                }
                for r in self.report()
            ],
        }

    def save_report(self, path: str | Path) -> None:
        """Write the report as JSON."""
        Path(path).write_text(json.dumps(self.report_dict(), indent=2))

    def save(self, path: str | Path) -> None:
        """Save the 0/1 tensors (``torch.save`` of a name → bool tensor dict)."""
        torch.save({name: mask.bool().cpu() for name, mask in self._masks.items()}, path)

    @classmethod
    def load(cls, path: str | Path, model: nn.Module) -> Mask:
        """Load a mask saved by :meth:`save` and validate it against ``model``."""
        return cls(torch.load(path, weights_only=True), model)

    def warn_if_layers_empty(self) -> list[str]:
        """Warn (once per call) when a whole weight tensor was pruned away; return their names."""
        empty = self.empty_layers()
        if empty:
            warnings.warn(
                f"pruning removed every weight of {', '.join(empty)}: the network cannot pass "
                "signal through it and will not train (lower the sparsity)",
                RuntimeWarning,
                stacklevel=2,
            )
        return empty
