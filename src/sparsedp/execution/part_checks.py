"""Preflight checks of plugin-defined parts: does each model fit its data set and train?

Run before any trial (from :func:`sparsedp.execution.preflight.preflight`): each workload
whose model or data set is not built in gets its model built for the data set's images and
classes, one forward and backward pass on two training examples, and its prunable
parameters checked; a data set smaller than the largest batch size is refused; a plugin's
pruner is run once on the first workload. Every
problem raises :class:`PreflightError` with one line naming the part and its plugin.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sparsedp.data import ImageDataset, load_dataset
from sparsedp.data.custom import dataset_spec
from sparsedp.data.splits import prepare_splits, split_train_validation
from sparsedp.models import (
    BUILTIN_MODELS,
    MODELS,
    PRUNABLE_ATTRIBUTE,
    build_model,
    prunable_parameters,
)
from sparsedp.pruning import compute_saliency, get_pruner
from sparsedp.specs import ExperimentSpec
from sparsedp.training import get_workload


class PartError(Exception):
    """A part does not work; the message is one line (wrapped into PreflightError)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def check_parts(spec: ExperimentSpec) -> list[str]:
    """One line per plugin-defined workload checked; raises :class:`PartError`."""
    lines: list[str] = []
    loaded: dict[str, ImageDataset] = {}
    for name in spec.workloads:
        workload = get_workload(name)
        if workload.model in BUILTIN_MODELS and not _custom_data(workload.dataset):
            continue
        if workload.dataset not in loaded:
            loaded[workload.dataset] = load_dataset(workload.dataset, spec.data_dir)
        data = loaded[workload.dataset]
        n_train = len(split_train_validation(len(data.train_labels))[0])
        if max(spec.batch_sizes) > n_train:
            raise PartError(
                f"workload {name!r}: batch size {max(spec.batch_sizes)} is larger than the "
                f"training split of data set {workload.dataset!r} ({n_train:,} examples); use "
                f"batch sizes <= {n_train}"
            )
        options = dict(workload.model_options)
        if spec.study_defaults.hidden_units:
            options["hidden_units"] = spec.study_defaults.hidden_units
        check_model(workload.model, data, options)
        channels, size, _ = data.image_shape
        lines.append(f"workload {name}: model {workload.model} fits {workload.dataset} "
                     f"({channels}x{size}x{size}, {data.num_classes} classes)")
    settings = spec.study_defaults.pruning
    if not get_pruner(settings.method).saliency.__module__.startswith("sparsedp."):
        lines.append(check_pruner(spec, loaded))
    return lines


def check_pruner(spec: ExperimentSpec, loaded: dict[str, ImageDataset]) -> str:
    """Run a plugin's pruner once, on the first workload's model and data (its scores are
    checked against the pruner contract): a broken pruner fails here, not in every trial."""
    settings = spec.study_defaults.pruning
    workload = get_workload(spec.workloads[0])
    if workload.dataset not in loaded:
        loaded[workload.dataset] = load_dataset(workload.dataset, spec.data_dir)
    data = prepare_splits(loaded[workload.dataset])
    channels, size, _ = data.image_shape
    options = dict(workload.model_options)
    if spec.study_defaults.hidden_units:
        options["hidden_units"] = spec.study_defaults.hidden_units
    model = build_model(workload.model, channels=channels, image_size=size,
                        num_classes=data.num_classes, seed=0, **options)
    sparsity = max(spec.sparsities) or 0.5
    try:
        compute_saliency(model, settings, data, 0, sparsity=sparsity)
    except Exception as exc:
        text = _first_line(exc)
        where = "" if f"pruner {settings.method!r}" in text else f"pruner {settings.method!r}: "
        raise PartError(f"{where}{text} (tried on workload {workload.name}'s model and "
                        "data before any trial)") from exc
    return f"pruner {settings.method}: scores {workload.model} on {workload.dataset}"


def _custom_data(dataset: str) -> bool:
    return dataset_spec(dataset) is not None


def check_model(model_name: str, data: ImageDataset, options: dict) -> None:
    """Build the model for ``data``, run two examples forward and backward, check its
    output shape and prunable parameters."""
    spec = MODELS[model_name]
    where = f"model {model_name!r} ({spec.origin})"
    channels, size, _ = data.image_shape
    classes = data.num_classes
    shown = f"{channels}x{size}x{size} images and {classes} classes"
    try:
        model = build_model(model_name, channels=channels, image_size=size,
                            num_classes=classes, seed=0, **options)
    except Exception as exc:
        raise PartError(f"{where}: building it for {shown} failed ({_first_line(exc)})") \
            from exc
    images = np.asarray(data.train_images[:2])
    x = torch.as_tensor(images, dtype=torch.float32)
    if images.dtype == np.uint8:
        x = x / 255.0
    y = torch.as_tensor(np.asarray(data.train_labels[:2]), dtype=torch.int64)
    try:
        out = model(x)
    except Exception as exc:
        raise PartError(f"{where}: its forward pass on a batch of 2 {channels}x{size}x{size} "
                        f"images failed ({_first_line(exc)})") from exc
    if not isinstance(out, torch.Tensor):
        raise PartError(f"{where}: returned {type(out).__name__}; it must return a tensor of "
                        f"logits shaped (batch, classes)")
    if tuple(out.shape) != (2, classes) or not out.is_floating_point():
        raise PartError(f"{where}: returned shape {tuple(out.shape)} ({out.dtype}) for a batch "
                        f"of 2 with {classes} classes; it must return float logits shaped "
                        f"(batch, classes) = (2, {classes})")
    try:
        F.cross_entropy(out, y).backward()
    except Exception as exc:
        raise PartError(f"{where}: the backward pass failed ({_first_line(exc)})") from exc
    _check_prunable(model, where)


def _check_prunable(model: nn.Module, where: str) -> None:
    hook = getattr(model, PRUNABLE_ATTRIBUTE, None)
    if hook is not None:
        try:
            chosen = dict(hook(model))
        except Exception as exc:
            raise PartError(f"{where}: its prunable() raised {_first_line(exc)}") from exc
        own = {id(p) for p in model.parameters()}
        stray = [n for n, p in chosen.items() if id(p) not in own]
        if stray:
            raise PartError(f"{where}: prunable() returned {stray[0]!r}, which is not a "
                            "parameter of the model; return entries of model.named_parameters()")
    if not prunable_parameters(model):
        raise PartError(f"{where}: has no prunable parameters (no conv or linear weights); "
                        "register it with prunable=... naming the weights pruning may remove")
