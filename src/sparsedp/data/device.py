"""The training split and its batch order held on the training device.

On a GPU, gathering and normalising each batch on the host and copying it over costs more
than the step itself for small models. :class:`DeviceSplit` (defined in
:mod:`sparsedp.data.splits`, next to :meth:`SplitData.train_on` that makes it; re-exported
here) keeps the training images on the device as ``uint8`` (in training-split order) and
normalises each batch there through a table of the 256 values per channel made by
:meth:`SplitData.normalize` itself, so a batch is the same tensor, bit for bit, on either
device (a GPU's own division by a scalar rounds differently: it multiplies by the
reciprocal). :class:`DeviceBatchOrder` holds
:class:`~sparsedp.data.batches.BatchStream`'s order (the same epoch permutations from the same
``data_seed``) on the device, so the batch of any step is found there without the host.
"""

from __future__ import annotations

import numpy as np
import torch

from sparsedp.data.splits import DeviceSplit

__all__ = ["DeviceBatchOrder", "DeviceSplit"]


class DeviceBatchOrder:
    """BatchStream's order of one data seed, on the device, for any step.

    The stream is a concatenation of epoch permutations drawn one after another from
    ``numpy.random.default_rng(seed)``; step ``s`` (from 1) reads its positions
    ``[(s-1)·B, s·B)``. Permutations are drawn on the host as steps need them (one copy per
    few epochs, never per step) and kept as int32 on the device.
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: str | torch.device) -> None:
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch size {batch_size} must be in 1..{n} (training examples)")
        self.n, self.batch_size = n, batch_size
        self.device = torch.device(device)
        self._rng = np.random.default_rng(seed)
        self.order = torch.empty(0, dtype=torch.int32, device=self.device)
        self._columns = torch.arange(batch_size, dtype=torch.int64, device=self.device)

    @property
    def steps_available(self) -> int:
        """Steps whose batches are already on the device."""
        return self.order.shape[0] // self.batch_size

    def ensure(self, last_step: int) -> None:
        """Have every batch up to step ``last_step`` on the device (a host draw if needed)."""
        missing = last_step * self.batch_size - self.order.shape[0]
        if missing <= 0:
            return
        epochs = -(-missing // self.n)
        epochs = max(epochs, min(64, max(1, self.order.shape[0] // self.n)))  # grow geometrically
        drawn = np.concatenate([self._rng.permutation(self.n) for _ in range(epochs)])
        self.order = torch.cat([self.order, torch.from_numpy(drawn.astype(np.int32))
                                .to(self.device)])

    def positions(self, steps: torch.Tensor) -> torch.Tensor:
        """Positions ``(len(steps), B)`` of each step's batch; ``steps`` (from 1) on the device.

        :meth:`ensure` must have covered the largest step (the caller knows it on the host).
        """
        offsets = (steps.to(torch.int64) - 1).unsqueeze(1) * self.batch_size + self._columns
        return self.order[offsets].to(torch.int64)
