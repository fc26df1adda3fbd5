"""Who registered a part (built-in, a plugin module, an experiment file), for one-line errors.

The registries of models, data sets and workloads record, for each part, where it came from;
errors about the part name that origin. :func:`loading` marks the plugin being imported, so a
part registered while it loads is credited to it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

BUILT_IN = "built-in"
PART_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

_loading: ContextVar[str | None] = ContextVar("sparsedp_plugin_loading", default=None)


@contextmanager
def loading(origin: str) -> Iterator[None]:
    """Credit parts registered inside this block to ``origin`` (e.g. ``plugin my.parts``)."""
    token = _loading.set(origin)
    try:
        yield
    finally:
        _loading.reset(token)


def current_origin(depth: int = 2) -> str:
    """The plugin being loaded, else the module that called the registering function."""
    marked = _loading.get()
    if marked is not None:
        return marked
    module = sys._getframe(depth).f_globals.get("__name__", "?")
    return f"module {module}"


def check_part(kind: str, name: object, version: object, description: object) -> None:
    """Names are short identifiers; version and description are strings."""
    if not isinstance(name, str) or not PART_NAME.fullmatch(name):
        raise ValueError(
            f"{kind} name {name!r} is not valid; use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit)"
        )
    if not isinstance(version, str):
        raise ValueError(f"{kind} {name!r}: version must be a string, got {version!r}")
    if not isinstance(description, str):
        raise ValueError(f"{kind} {name!r}: description must be a string, got {description!r}")


def check_free(kind: str, name: str, table: dict, builtin: frozenset[str], replace: bool) -> None:
    """A new part may not take a built-in's name, nor another part's unless ``replace``."""
    if name in builtin:
        raise ValueError(
            f"{kind} {name!r} is built into sparsedp; give yours another name"
        )
    if name in table and not replace:
        other = getattr(table[name], "origin", "?")
        raise ValueError(
            f"{kind} {name!r} is already registered (by {other}); give yours another name "
            "or pass replace=True"
        )
