"""``sparsedp repeat``: train each study's best metaparameters again with more seeds."""

from __future__ import annotations

import argparse

from sparsedp.api import format_repeat_event
from sparsedp.cli.common import (
    EXIT_OK,
    CliError,
    add_plugin_option,
    load,
    positive_int,
    sigterm_as_interrupt,
    stderr_console,
)
from sparsedp.execution.preflight import preflight


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "repeat", help="re-run each study's best trial with more seeds (after `run`)")
    p.add_argument("experiment", help="experiment TOML file")
    p.add_argument("--seeds", type=positive_int, default=5,
                   help="repeats per study, new initialisation and batch order each "
                        "(default 5; more later adds only the missing ones)")
    p.add_argument("--workers", type=positive_int, help="override the file's workers")
    p.set_defaults(handler=run)
    add_plugin_option(p)


def run(args: argparse.Namespace) -> int:
    experiment = load(args)
    console = stderr_console()

    def on_event(event) -> None:
        line = format_repeat_event(event)
        if line is not None:
            console.print(line, markup=False)

    with sigterm_as_interrupt():
        result = experiment.repeat(args.seeds, workers=args.workers, on_event=on_event,
                                   _checks=preflight)
    console.print(result.describe(), markup=False)
    if result.unfinished:
        raise CliError(f"{len(result.unfinished)} studies still have search trials to run "
                       f"(e.g. {result.unfinished[0]}); finish them with `sparsedp run "
                       f"{args.experiment}`, then repeat again", result.exit_code)
    if result.statuses.get("failed"):
        raise CliError(f"{result.statuses['failed']} repeats failed (see the failures "
                       "table); fix the cause and rerun", result.exit_code)
    return EXIT_OK
