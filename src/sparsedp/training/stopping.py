"""The stopping rule: when a trial can no longer matter to its study, and is stopped.

A study's result is its best steps-to-result; its statistics (intervals, search adequacy) need
the next best ones too. With ``keep_complete = K``, a trial is stopped only once it can no
longer beat the K-th best steps-to-result the study has finished with, so the K best trials
of every study run to their result and every stopped trial is a lower bound above them
(docs/engine.md, "Stopping"). K = 1 stops at the best, as the stopping rule always did.

:class:`CompletedSteps` keeps the K best steps-to-result seen by one party (the runner, a
worker's pool, a group of batched trials); its :attr:`~CompletedSteps.limit` is the stopping
limit they set. Limits only fall as more trials complete, so the limits of several parties
combine by taking the smallest (:func:`combined_limit`), and each party's limit is safe on its
own: the K-th best of a subset of a study's trials is never below the study's.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable


def check_keep_complete(value: object) -> int:
    """``value`` as a valid ``keep_complete`` (a whole number >= 1), or ValueError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"keep_complete must be a whole number >= 1, got {value!r}")
    return value


class CompletedSteps:
    """The ``keep`` best steps-to-result seen so far, and the stopping limit they set."""

    def __init__(self, keep: int = 1, steps: Iterable[int] = ()) -> None:
        self.keep = check_keep_complete(keep)
        self._best: list[int] = []
        for value in steps:
            self.add(value)

    def add(self, steps: int) -> bool:
        """Note a completed trial; True when this lowered (or first set) the limit."""
        before = self.limit
        bisect.insort(self._best, int(steps))
        del self._best[self.keep:]
        return self.limit != before

    @property
    def limit(self) -> int | None:
        """The K-th best steps-to-result (None until K trials completed): a trial that has
        trained this many steps without meeting the goal cannot be among the K best."""
        return self._best[-1] if len(self._best) == self.keep else None

    @property
    def best(self) -> list[int]:
        """The best steps-to-result seen, at most ``keep`` of them, lowest first."""
        return list(self._best)


def combined_limit(*limits: int | None) -> int | None:
    """The smallest of the limits that are set (None when none is)."""
    known = [v for v in limits if v is not None]
    return min(known) if known else None


def stop_message(step: int, limit: int, keep: int) -> str:
    """Why a trial stopped at ``step``: the study's best, or its K-th best, is ``limit``."""
    if keep == 1:
        return f"stopped at step {step}: cannot beat the study's best ({limit})"
    return (f"stopped at step {step}: cannot beat the study's {_ordinal(keep)} best "
            f"({limit}; keep_complete = {keep})")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
