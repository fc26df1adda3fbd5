"""How an experiment is computed (never what): the ``[engine]`` options."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparsedp.specs.values import is_int
from sparsedp.training.precision import check_precision

ORDERS = ("neighbour", "index")
BACKENDS = ("local", "ray")
DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?")


CHANNELS_LAST_FIX = "set batched_trials = 1, or leave channels_last out"


def channels_last_conflict(channels_last: bool, batched_trials: int | None,
                           device: str) -> str | None:
    """Why ``channels_last`` cannot run with these batching settings (None: it can):
    channels-last training runs one trial at a time."""
    if not channels_last:
        return None
    if batched_trials is None and str(device).startswith("cuda"):
        return ("channels_last = true trains one trial at a time, but batched_trials is 16 "
                "(the default on CUDA)")
    if batched_trials is not None and batched_trials > 1:
        return ("channels_last = true trains one trial at a time, but batched_trials is "
                f"{batched_trials}")
    return None


@dataclass(frozen=True)
class EngineOptions:
    """How to compute an experiment, never what: none of these changes a study's results.

    ``stop_hopeless`` stops trials that can no longer beat the study's best, or with
    ``keep_complete = K`` its K-th best finished steps-to-result (so the K best trials of
    every study run to their result);
    ``order`` is ``"neighbour"`` (run studies next to finished ones first) or ``"index"``;
    ``micro_batch``/``eval_batch_size``/``threads`` left ``None`` are measured or chosen
    automatically; ``backend`` is ``"local"`` or ``"ray"``. ``channels_last`` trains (and
    evaluates) convolutional models in the channels-last memory layout: faster on CPU for
    ResNet-8, with float rounding of its own (like another thread count, the results differ in
    the last bits; every trial records it and a saved trial continues only in its own layout);
    one trial at a time only (``batched_trials = 1``).
    """

    early_exit: bool = True
    stop_hopeless: bool = True
    keep_complete: int = 3  # measured choice: docs/engine.md, "Stopping"
    order: str = "neighbour"
    micro_batch: int | None = None
    eval_batch_size: int | None = None
    threads: int | None = None
    device: str = "cpu"
    backend: str = "local"
    max_retries: int = 2
    batched_trials: int | None = None  # None: measured on CUDA, 1 (off) on CPU (slower there)
    interleave: int | None = None  # None: 16 when stopping hopeless trials, else 1 (off)
    precision: str = "fp32"  # changes the arithmetic: the one engine option in study keys
    checkpoint_every: int = 300  # seconds between saves of an unfinished trial; 0: never
    channels_last: bool = False  # train in the channels-last layout (docs/engine.md)

    def resolved_batched_trials(self) -> int:
        """How many trials of a study run in lockstep (1 = one at a time)."""
        if self.batched_trials is not None:
            return self.batched_trials
        return 16 if self.device.startswith("cuda") else 1

    def resolved_interleave(self) -> int:
        """How many trials one local process advances in turn (1 = one after another).

        Interleaving only pays off through the stopping rule, so without it trials run one
        after another.
        """
        if not self.stop_hopeless:
            return 1
        return 16 if self.interleave is None else self.interleave

    def __post_init__(self) -> None:
        for label in ("early_exit", "stop_hopeless", "channels_last"):
            if not isinstance(getattr(self, label), bool):
                raise ValueError(f"{label} must be true or false, got {getattr(self, label)!r}")
        if self.order not in ORDERS:
            raise ValueError(f"unknown order {self.order!r}; use one of {', '.join(ORDERS)}")
        try:
            check_precision(self.precision, self.device)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}")
        if not isinstance(self.device, str) or not DEVICE_PATTERN.fullmatch(self.device):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        for label in ("micro_batch", "eval_batch_size", "threads", "batched_trials", "interleave",
                      "keep_complete"):
            value = getattr(self, label)
            if value is not None and (not is_int(value) or value < 1):
                raise ValueError(f"{label} must be a whole number >= 1, got {value!r}")
        for label in ("max_retries", "checkpoint_every"):
            value = getattr(self, label)
            if not is_int(value) or value < 0:
                raise ValueError(f"{label} must be a whole number >= 0, got {value!r}")
        conflict = channels_last_conflict(self.channels_last, self.batched_trials, self.device)
        if conflict:
            raise ValueError(f"{conflict}: {CHANNELS_LAST_FIX}")

