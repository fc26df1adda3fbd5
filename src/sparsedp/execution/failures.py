"""Telling a trial's own failure from a broken environment, and stopping on the latter.

A failed attempt comes back as an error line (``"Type: message"``). Two rules stop a run
instead of storing ``failed`` trials (see docs/faults.md):

- an *environment* failure (an operating-system error such as a missing file or a full disk,
  unusable data, an unusable device) stops the run at once: it is not the trial's fault, and
  every other trial would hit it too;
- the first attempts of :data:`STREAK` different trials in a row failing with the same error
  stop the run as a *systematic* failure (attempts lost with a worker process that died do
  not count: one death loses all of that worker's trials at once). "The same error" is the
  same exception type and message once every number in it is masked
  (:func:`error_signature`): a bad setting shared by every trial often names each trial's
  own value (``ValueError: learning rate must be positive, got -4.53``).

A trial that used up its retries is stored as ``failed`` only once the failure has shown to be
the trial's own (another trial succeeded, or the run ended without stopping); until then the
runner holds the row back.
"""

from __future__ import annotations

import re

STREAK = 3

# Numbers in an error line (integers, decimals, exponents, hexadecimal addresses, nan/inf):
# they name the trial (its learning rate, its index, an object's address), not the error.
_NUMBER = re.compile(
    r"[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|[-+]?(?i:\b(?:nan|inf(?:inity)?)\b)"
)

# Error lines that name the environment rather than the trial.
_ENVIRONMENT_PREFIXES = ("DataError:", "MemoryError")
_ENVIRONMENT_MARKERS = (
    "[Errno ",  # any OSError: missing or unreadable files, full disk, read-only file system
    "No space left on device",
    "Disk quota exceeded",
    "file write failed",  # torch.save on a full disk
    "Torch not compiled with CUDA",
    "no CUDA GPUs are available",
    "invalid device ordinal",
    "CUDA driver",
    "CUDA error",
)


class RunStopped(Exception):
    """The run cannot go on: the message says why, in one line, and how to fix it."""


def is_environment_failure(error: str) -> bool:
    """Whether a failed attempt's error line points at the environment, not the trial."""
    first = error.strip().splitlines()[0] if error.strip() else ""
    return first.startswith(_ENVIRONMENT_PREFIXES) or any(m in first for m in _ENVIRONMENT_MARKERS)


def error_signature(line: str) -> str:
    """An error line with its numbers masked: the exception type and the place in the
    message, so that errors differing only in a trial's own values group together."""
    return _NUMBER.sub("<n>", line.strip())


class FailureWatch:
    """Follows first attempts in the order they end; raises :class:`RunStopped` on a
    systematic or environment failure."""

    def __init__(self, streak: int = STREAK) -> None:
        self.streak = streak
        self._error: str | None = None  # the signature of the streak's error
        self._first = ""  # the streak's first error line, as it was
        self._varied = False  # whether a later line of the streak differed from it
        self._trials: set[tuple[str, int]] = set()

    def failed(self, study_key: str, index: int, attempt: int, error: str,
               lost: bool = False) -> None:
        """Note one failed attempt (raises :class:`RunStopped` when the run must stop).

        ``lost``: the attempt was lost with its worker (the trial did not raise). One worker's
        death loses all its trials at once, so such attempts do not count: they are retried,
        and the backend replaces the worker.
        """
        line = error.strip().splitlines()[0] if error.strip() else "unknown error"
        if is_environment_failure(line):
            raise RunStopped(f"a trial failed because of its environment: {line}")
        if attempt != 1 or lost:
            return  # retries say nothing new about other trials
        signature = error_signature(line)
        if signature != self._error:
            self._error, self._first, self._trials, self._varied = signature, line, set(), False
        self._varied = self._varied or line != self._first
        self._trials.add((study_key, index))
        if len(self._trials) >= self.streak:
            numbers = " (but for the numbers in it)" if self._varied else ""
            raise RunStopped(
                f"the first attempts of {len(self._trials)} trials in a row failed with the "
                f"same error{numbers}: {self._first}"
            )

    def succeeded(self) -> None:
        """A trial ended with a result: the environment works."""
        self._error, self._trials = None, set()
