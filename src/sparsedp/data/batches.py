"""Seeded mini-batch order: a continuous stream of per-epoch permutations."""

from __future__ import annotations

import numpy as np
import torch


class BatchStream:
    """Yields index batches of exactly ``batch_size`` from fresh permutations of ``n``.

    Each epoch is a new permutation drawn from a generator seeded with ``seed``; a batch that
    runs past the end of an epoch continues into the next permutation, so every batch is full
    and every example is seen once per epoch. The same seed gives the same order, which is how
    every trial of a study sees the same data.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        if batch_size > n:
            raise ValueError(f"batch size {batch_size} is larger than the {n} training examples")
        self.n = n
        self.batch_size = batch_size
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(n)
        self._cursor = 0
        self.epoch = 0

    def next(self) -> np.ndarray:
        """Indices of the next batch."""
        end = self._cursor + self.batch_size
        if end <= self.n:
            batch = self._order[self._cursor : end]
            self._cursor = end
            return batch
        head = self._order[self._cursor :]
        self._order = self._rng.permutation(self.n)
        self.epoch += 1
        self._cursor = self.batch_size - head.shape[0]
        return np.concatenate([head, self._order[: self._cursor]])

    def state_dict(self) -> dict:
        """Where the stream stands (to continue it exactly after :meth:`load_state_dict`)."""
        return {"n": self.n, "batch_size": self.batch_size, "epoch": self.epoch,
                "cursor": self._cursor, "order": torch.from_numpy(self._order.copy()),
                "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict` of a stream with the same size and batch size."""
        if (state["n"], state["batch_size"]) != (self.n, self.batch_size):
            raise ValueError(f"a stream of {state['n']} examples in batches of "
                             f"{state['batch_size']} cannot continue one of {self.n} in "
                             f"batches of {self.batch_size}")
        self._rng.bit_generator.state = state["rng"]
        self._order = state["order"].numpy().astype(self._order.dtype, copy=True)
        self._cursor, self.epoch = int(state["cursor"]), int(state["epoch"])
