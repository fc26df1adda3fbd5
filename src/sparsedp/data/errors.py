"""The single exception type raised for unusable, missing or corrupt data."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """A data set cannot be found, read or trusted.

    Messages name the file or directory concerned, say what is wrong with it and how to fix it,
    so they can be shown to a user as they are.
    """
