"""Mask health: what a mask leaves of the network, measured once at pruning (docs/pruners.md).

Stored with every trial under ``health`` in its mask report (``mask_json``):

- per prunable weight tensor (rank ≥ 2): its density and the *units cut off*, output units
  (dim 0: a convolution's filters, a linear layer's units) with no incoming weight left;
  the last such tensor whose output size is the number of classes is the output layer, so
  its units cut off are *output classes* cut off;
- the pruned network's *initial loss* (mean cross-entropy), *logit scale* (the standard
  deviation of all logits and the largest ``|logit|``) and the number of distinct classes it
  predicts, on a fixed sample: the first :data:`SAMPLE_EXAMPLES` examples of the training
  split (in evaluation mode, without gradients; the model is left as it was).

A mask is *unhealthy* (:func:`unhealthy_reasons`) when an output class is cut off, a whole
layer is cut off, or the initial loss is not finite or above ``2·ln(classes)`` (a network
that guesses uniformly scores ``ln(classes)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sparsedp.data.splits import SplitData
from sparsedp.pruning.mask import Mask

SAMPLE_EXAMPLES = 500
CHUNK = 250
LOSS_FACTOR = 2.0  # initial loss above LOSS_FACTOR · ln(classes) is unhealthy


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def layer_health(mask: Mask, num_classes: int | None) -> list[dict[str, Any]]:
    """Per prunable weight tensor (rank ≥ 2): name, kind (``conv``, ``linear``, ``output``),
    density, units and units cut off (no incoming weight)."""
    rows = []
    for name, m in mask.items():
        if m.dim() < 2:
            continue
        incoming = m.reshape(m.shape[0], -1).sum(dim=1)
        rows.append({
            "name": name,
            "kind": "conv" if m.dim() > 2 else "linear",
            "density": float(m.sum().item()) / m.numel(),
            "units": int(m.shape[0]),
            "cut_off": int((incoming == 0).sum().item()),
        })
    outputs = [row for row in rows if row["units"] == num_classes]
    if outputs:
        outputs[-1]["kind"] = "output"
    return rows


@torch.no_grad()
def initial_outputs(model: nn.Module, data: SplitData,
                    examples: int = SAMPLE_EXAMPLES) -> dict[str, Any]:
    """Loss, logit scale and classes predicted on the first ``examples`` training examples."""
    n = min(examples, data.num_train)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits, labels = [], []
        for start in range(0, n, CHUNK):
            x, y = data.train_batch(np.arange(start, min(start + CHUNK, n)))
            logits.append(model(x.to(device)).float().cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    out, y = torch.cat(logits), torch.cat(labels)
    return {
        "examples": n,
        "initial_loss": _finite(float(F.cross_entropy(out, y))),
        "logit_std": _finite(float(out.std())),
        "logit_max_abs": _finite(float(out.abs().max())),
        "classes_predicted": int(out.argmax(dim=1).unique().numel()),
    }


def mask_health(model: nn.Module, mask: Mask, data: SplitData | None) -> dict[str, Any]:
    """The mask's health (module doc) for ``model`` as it will be trained (pruned, and
    re-initialised under the ``reinit`` ablation); without data, the layers only."""
    num_classes = data.num_classes if data is not None else None
    layers = layer_health(mask, num_classes)
    health: dict[str, Any] = {
        "num_classes": num_classes,
        "layers": layers,
        "classes_cut_off": sum(r["cut_off"] for r in layers if r["kind"] == "output"),
        "filters_cut_off": sum(r["cut_off"] for r in layers if r["kind"] == "conv"),
        "hidden_units_cut_off": sum(r["cut_off"] for r in layers if r["kind"] == "linear"),
        "sample": f"the first {SAMPLE_EXAMPLES} examples of the training split",
    }
    if data is not None:
        health.update(initial_outputs(model, data))
    health["unhealthy"] = unhealthy_reasons(health)
    return health


def unhealthy_reasons(health: Mapping[str, Any]) -> list[str]:
    """Why a mask is unhealthy (module doc); empty when it is healthy."""
    reasons = []
    if health.get("classes_cut_off"):
        reasons.append(f"{health['classes_cut_off']} output class(es) cut off")
    for row in health.get("layers", []):
        if row["units"] and row["cut_off"] == row["units"]:
            reasons.append(f"every unit of {row['name']} cut off")
    classes = health.get("num_classes")
    if "initial_loss" in health and classes:
        loss, bound = health["initial_loss"], LOSS_FACTOR * math.log(classes)
        if loss is None:
            reasons.append("initial loss not finite")
        elif loss > bound:
            reasons.append(f"initial loss {loss:.3g} > 2·ln({classes}) = {bound:.3g}")
    return reasons
