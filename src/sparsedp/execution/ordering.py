"""Trial order within a study: start near the neighbouring study's best point.

The best metaparameters move smoothly with batch size and sparsity, so trials close (in the
unit cube of the quasi-random search) to the best trial of a finished neighbouring study
(adjacent batch size first, then adjacent sparsity) are run first. A good best found early lets
the stopping rule end hopeless trials sooner. The order never changes any trial's own result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from sparsedp.specs import StudySpec


def neighbours(study: StudySpec, studies: Sequence[StudySpec]) -> list[StudySpec]:
    """Studies that differ only in batch size (nearest first) or, after those, in sparsity."""

    def same_except(other: StudySpec, **fields: object) -> bool:
        return replace(other, **fields) == replace(study, **fields)

    by_batch = sorted(
        (s for s in studies if s != study and same_except(s, batch_size=1)),
        key=lambda s: (
            abs(np.log2(s.batch_size) - np.log2(study.batch_size)),
            s.batch_size > study.batch_size,
        ),
    )
    by_sparsity = sorted(
        (s for s in studies if s != study and same_except(s, sparsity=0.0)),
        key=lambda s: (abs(s.sparsity - study.sparsity), s.sparsity > study.sparsity),
    )
    return by_batch + by_sparsity


def order_trials(
    study: StudySpec,
    studies: Sequence[StudySpec],
    pending: Sequence[int],
    points: np.ndarray,
    best_index: Callable[[StudySpec], int | None],
) -> tuple[list[int], str | None]:
    """Pending trial indices, nearest to the closest finished neighbour's best first.

    Returns the order and the key of the neighbour used (None: plain index order).
    """
    for other in neighbours(study, studies):
        best = best_index(other)
        if best is None or best >= len(points):
            continue
        distance = np.linalg.norm(points[list(pending)] - points[best], axis=1)
        order = sorted(zip(distance.tolist(), pending, strict=True))
        return [index for _, index in order], other.key
    return sorted(pending), None
