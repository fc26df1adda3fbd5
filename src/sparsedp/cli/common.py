"""Shared CLI helpers: user-facing errors, argument types, console output."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import contextmanager

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
    return Experiment.from_file(args.experiment, plugins=getattr(args, "plugin", ()))


def _plugin_module(text: str) -> str:
    """A ``--plugin`` module name; the current directory joins the search path (as for
    ``python -m``), so a module in it is found."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    return text


def add_plugin_option(parser: argparse.ArgumentParser) -> None:
    """``--plugin MODULE`` (repeatable): import a plugin module (docs/plugins.md)."""
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        type=_plugin_module,
                        help="import this plugin module first (repeatable; found in the "
                             "current directory too; docs/plugins.md)")


def load_plugins(modules: list[str]) -> None:
    """Import the installed entry-point plugins and ``modules`` (for commands without an
    experiment file)."""
    from sparsedp.plugins import import_plugin, load_entry_points

    load_entry_points()
    for module in modules:
        import_plugin(module)


def _whole_number_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (a seed, a trial index)."""
    return _whole_number_at_least(text, 0)


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


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM unwinds like Ctrl-C (trials in flight dropped, stored ones kept)."""
    def raise_terminated(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
