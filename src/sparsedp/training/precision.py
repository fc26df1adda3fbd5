"""Arithmetic precision of training: FP32 by default, TF32 or bf16 on request.

The authors trained in FP32. PyTorch lets cuDNN convolutions use TF32 by default on Ampere and
later GPUs, which changes the numbers; ``fp32`` turns that off. ``tf32`` (CUDA only) lets
matrix products and convolutions round their inputs to TF32; ``bf16`` runs the forward pass
under bf16 autocast (losses, gradients and updates stay FP32). Both change numerics, so they
are part of a study's key and the report says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(precision: str, device: str) -> None:
    """Raise ValueError for an unknown precision or one the device cannot give."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "tf32" and not device.startswith("cuda"):
        raise ValueError('precision "tf32" needs a CUDA device (device = "cuda")')


@contextlib.contextmanager
def numerics(precision: str, device: torch.device) -> Iterator[None]:
    """Set the precision for the code inside (TF32 switches restored on exit)."""
    check_precision(precision, device.type)
    if device.type != "cuda":
        with torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" \
                else contextlib.nullcontext():
            yield
        return
    backends = torch.backends
    saved = (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32,
             backends.cudnn.deterministic, backends.cudnn.benchmark)
    allow = precision == "tf32"
    backends.cuda.matmul.allow_tf32 = allow
    backends.cudnn.allow_tf32 = allow
    backends.cudnn.deterministic = True  # same trial, same numbers (no atomics-based kernels)
    backends.cudnn.benchmark = False  # no timing-dependent choice of kernels
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" \
                else contextlib.nullcontext():
            yield
    finally:
        (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32,
         backends.cudnn.deterministic, backends.cudnn.benchmark) = saved
