"""Shared CLI helpers: user-facing errors, argument types, console output."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from sparsedp.api import Experiment
from sparsedp.api.errors import (  # noqa: F401  (the CLI's names for them)
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_STOPPED,
    EXIT_TRIALS_FAILED,
    SparsedpError,
    Terminated,
)


class CliError(SparsedpError):
    """An error to show as one line (no traceback), with its exit code (default 2)."""


def load(args: argparse.Namespace) -> Experiment:
    """The experiment file a command names (``args.experiment``), validated."""
    return Experiment.from_file(args.experiment)


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
