"""Typed reading of a parsed TOML file, with every failure one line naming file, line and key.

:class:`TomlChecker` holds the typed getters (``integer``, ``number``, ``string``, ``boolean``,
``choice``, ``nonempty_list``, ``table``, ``keys``) that the experiment-file loader builds on;
a failure raises :class:`ExperimentFileError` with the line of the key (found in the file's
text), what is wrong and how to fix it, with a "did you mean" suggestion for misspellings.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from sparsedp.specs.values import is_int, is_number, resolve_against


class ExperimentFileError(ValueError):
    """A problem in an experiment file, shown as one line:
    ``<file>:<line>: <key>: <what is wrong>; <how to fix>`` (``:<line>`` when known)."""

    def __init__(
        self,
        file: str | Path,
        key: str | None,
        problem: str,
        fix: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        self.fix = fix
        self.line = line
        where = self.file if line is None else f"{self.file}:{line}"
        said = _LONG_WORD.sub(lambda m: shorten(m[0]), f"{problem}; {fix}" if fix else problem)
        text = f"{where}: {key}: {said}" if key else f"{where}: {said}"
        super().__init__(" ".join(text.split()))


ECHO_LIMIT = 60
"""At most this many characters of a bad value (or key) are echoed in an error message."""
_LONG_WORD = re.compile(r"[^\s;,]{257,}")  # a safety net for values echoed whole by other rules


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text``, or its first ``limit`` characters, an ellipsis and its length when longer
    (an error message stays one readable line whatever the file holds)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


_KEY_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")
_HEADER_LINE = re.compile(r"^\s*\[\[?\s*([^\[\]]*?)\s*\]\]?")
_KEY_LINE = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)"""
    r"\s*="
)
_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "a list",
    dict: "a table",
}


def key_parts(text: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _KEY_PART.findall(text))


def locate(lines: Sequence[str], path: tuple[str, ...]) -> int | None:
    """1-based line defining ``path`` (a key or a ``[table]``), or of its nearest parent."""
    while path:
        table: tuple[str, ...] = ()
        for number, line in enumerate(lines, start=1):
            header = _HEADER_LINE.match(line)
            if header:
                table = key_parts(header[1])
                if table == path:
                    return number
                continue
            key = _KEY_LINE.match(line)
            if key and table + key_parts(key[1])[: len(path) - len(table)] == path:
                return number
        path = path[:-1]
    return None


def describe(value: object) -> str:
    """``'abc' (a string)``: the value as written (shortened) and its type."""
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    return f"{shorten(shown)} ({_TYPE_NAMES.get(type(value), type(value).__name__)})"


def suggest(word: str, valid: Sequence[str], what: str = "valid keys") -> str:
    if len(word) > 4 * ECHO_LIMIT:  # nothing valid is that long (and difflib is quadratic)
        return f"{what}: {', '.join(valid)}"
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{what}: {', '.join(valid)}"


class TomlChecker:
    """Typed getters over a parsed TOML document; every failure is an ExperimentFileError."""

    def __init__(self, path: Path, shown: str, text: str) -> None:
        self.path = path
        self.shown = shown
        self.lines = text.splitlines()

    def fail(self, key: tuple[str | int, ...], problem: str, fix: str | None = None) -> NoReturn:
        names = tuple(k for k in key if isinstance(k, str))
        label = ""
        for part in key:
            if isinstance(part, str):
                part = shorten(part)  # an unknown key can be as long as the file
            label += f"[{part}]" if isinstance(part, int) else (f".{part}" if label else part)
        raise ExperimentFileError(self.shown, label, problem, fix, locate(self.lines, names))

    # helpers for the parts sections (spec.parts) --------------------------------------

    describe = staticmethod(describe)
    suggest = staticmethod(suggest)

    def resolve(self, path: str) -> Path:
        return resolve_against(self.path.parent, path)

    # typed getters ---------------------------------------------------------------------

    def keys(self, table: Mapping[str, Any], valid: Sequence[str], where: tuple[str, ...]) -> None:
        for name in table:
            if name not in valid:
                self.fail((*where, name), "unknown key", suggest(name, valid))

    def table(self, value: object, key: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(
                key, f"expected a table, got {describe(value)}", f"write it as [{'.'.join(key)}]"
            )
        return value  # type: ignore[return-value]

    def integer(self, value: object, key: tuple[str | int, ...], minimum: int) -> int:
        if not is_int(value):
            self.fail(
                key,
                f"expected a whole number, got {describe(value)}",
                f"write e.g. {max(minimum, 1)}",
            )
        if value < minimum:  # type: ignore[operator]
            self.fail(key, f"must be >= {minimum}, got {value}", f"use a value >= {minimum}")
        return value  # type: ignore[return-value]

    def number(self, value: object, key: tuple[str | int, ...]) -> float:
        if not is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
            self.fail(key, f"expected a finite number, got {describe(value)}", "write e.g. 0.5")
        return float(value)  # type: ignore[arg-type]

    def string(self, value: object, key: tuple[str | int, ...]) -> str:
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {describe(value)}", "put the value in quotes")
        return value  # type: ignore[return-value]

    def boolean(self, value: object, key: tuple[str | int, ...]) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {describe(value)}", "write true or false")
        return value  # type: ignore[return-value]

    def choice(self, value: object, key: tuple[str | int, ...], options: Sequence[str]) -> str:
        text = self.string(value, key)
        if text not in options:
            self.fail(key, f"unknown value {shorten(repr(text))}",
                      suggest(text, options, "use one of"))
        return text

    def nonempty_list(self, value: object, key: tuple[str, ...], example: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(key, f"expected a list, got {describe(value)}", f"write e.g. {example}")
        if not value:
            self.fail(key, "the list is empty", f"give at least one value, e.g. {example}")
        return value  # type: ignore[return-value]
