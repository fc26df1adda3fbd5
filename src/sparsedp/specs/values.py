"""Small value checks shared by the specs and the experiment-file loader."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

_RANGE_PATTERN = re.compile(r"2\s*\^\s*(\d+)\s*\.\.\s*2\s*\^\s*(\d+)")
_MAX_EXPONENT = 40


def is_int(value: object) -> bool:
    """A whole number that is not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or float that is not a boolean."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve_against(base: Path, value: str | Path) -> Path:
    """``value`` as an absolute path, relative ones taken from ``base``; symbolic links are
    resolved as far as they go (a loop is left as it is, for the reader to report: unlike
    ``Path.resolve``, ``os.path.realpath`` does not raise on one before Python 3.13)."""
    path = Path(value).expanduser()
    return Path(os.path.realpath(path if path.is_absolute() else base / path))


class Problem(ValueError):
    """A validation failure: what is wrong and how to fix it (str: ``what; fix``)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix


def resolve_batch_sizes(value: str | Sequence[int]) -> tuple[int, ...]:
    """Batch sizes from a list of whole numbers or a range ``"2^a..2^b"`` (powers of two
    from ``2^a`` to ``2^b`` inclusive). Raises ``ValueError`` with a fix when malformed."""
    if isinstance(value, str):
        match = _RANGE_PATTERN.fullmatch(value.strip())
        if not match:
            raise Problem(
                f"malformed range {value!r}",
                "write powers of two as '2^a..2^b', e.g. '2^4..2^13', or give a list",
            )
        start, end = int(match[1]), int(match[2])
        if start > end:
            raise Problem(
                f"range {value!r} is inverted (2^{start} > 2^{end})",
                f"write '2^{end}..2^{start}'",
            )
        if end > _MAX_EXPONENT:
            raise Problem(f"range {value!r} goes past 2^{_MAX_EXPONENT}", "use smaller powers")
        return tuple(2**k for k in range(start, end + 1))
    if not isinstance(value, (list, tuple)):
        raise Problem(
            f"expected a list of whole numbers or a range string, got {value!r}",
            "write e.g. [64, 256] or '2^4..2^13'",
        )
    if not value:
        raise Problem("the list is empty", "give at least one batch size")
    for i, item in enumerate(value):
        if not is_int(item):
            raise Problem(f"entry {i} ({item!r}) is not a whole number", "use integers")
        if item < 1:
            raise Problem(f"entry {i} is {item}, below 1", "batch sizes must be >= 1")
    duplicates = sorted({b for b in value if list(value).count(b) > 1})
    if duplicates:
        raise Problem(
            f"duplicate batch sizes {', '.join(map(str, duplicates))}", "list each size once"
        )
    return tuple(value)


# --------------------------------------------------------------------------- TOML loading

