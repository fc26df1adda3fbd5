"""The training-batch order of the authors' released code, for like-for-like comparisons.

The authors' ``Dataset`` holds one ``numpy.random.RandomState(0)`` that every shuffle shares,
whatever the run (the run index seeds only TensorFlow, i.e. the initial weights). In order:
the validation split (a list ``0..N-1``), SNIP's one pass over the training split (made at
every sparsity, 0 included), then lazily, as the training loop asks for examples, one
permutation of the training split per epoch, interleaved with one permutation of the
validation split per validation epoch (``train.py`` draws a validation batch every
``check_interval`` steps for its log). Batches run across epoch boundaries.

So every run of the authors' code at a given batch size trains on the same sequence of
batches; sparsedp's default order (:class:`~sparsedp.data.batches.BatchStream`) is another
draw of the same kind. This module is not used for training; it lets a comparison feed the
authors' order to sparsedp (see docs/authors-comparison.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sparsedp.data.splits import VALIDATION_FRACTION


def _epochs(rng: np.random.RandomState, n: int) -> Iterator[int]:
    """The authors' ``get_generator('unlimited', split, True)``: reshuffled when exhausted."""
    while True:
        ids = list(range(n))
        rng.shuffle(ids)
        yield from ids


def authors_batch_order(
    num_examples: int,
    batch_size: int,
    steps: int,
    check_interval: int = 100,
    fraction: float = VALIDATION_FRACTION,
) -> np.ndarray:
    """Positions in the training split of the authors' first ``steps`` batches, ``steps × B``.

    ``num_examples`` is the official training set's size (MNIST 60,000); ``check_interval``
    is the authors' ``--check_interval`` (100 by default, the validation-batch draw), not
    ``--check_interval_arrival`` (the goal test, which draws nothing).
    """
    if batch_size < 1 or steps < 0 or check_interval < 1:
        raise ValueError(
            f"need batch_size >= 1, steps >= 0, check_interval >= 1; got {batch_size}, "
            f"{steps}, {check_interval}"
        )
    rng = np.random.RandomState(0)
    rng.shuffle(list(range(num_examples)))  # the validation split
    num_val = int(num_examples * fraction)
    num_train = num_examples - num_val
    rng.shuffle(list(range(num_train)))  # SNIP's pass over the training split
    train, val = _epochs(rng, num_train), _epochs(rng, num_val)
    order = np.empty((steps, batch_size), dtype=np.int64)
    for step in range(steps):
        order[step] = [next(train) for _ in range(batch_size)]
        if (step + 1) % check_interval == 0:
            for _ in range(batch_size):
                next(val)
    return order
