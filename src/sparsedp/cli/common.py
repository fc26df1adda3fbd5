"""Shared CLI helpers: user-facing errors, argument types, console output."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console


class CliError(Exception):
    """An error to show as one line (no traceback), exit code 2."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def stderr_console() -> Console:
    """Console for progress and human messages (stderr keeps stdout clean for --json)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def is_terminal() -> bool:
    return sys.stderr.isatty()
