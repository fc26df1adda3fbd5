"""``sparsedp import``: read results in Shallue et al.'s batch_science layout."""

from __future__ import annotations

import argparse

from sparsedp.api import import_batch_science
from sparsedp.api.batch_science import METRIC
from sparsedp.cli.common import finite_float


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import", help="read a batch_science layout (Shallue et al.'s data) into a results "
                       "directory; then `sparsedp report RESULTS`")
    p.add_argument("source", help="folder holding <dataset>/<model>/<optimizer>/<batch_size>/"
                                  "study.json")
    p.add_argument("--out", required=True, help="results directory to write (sparsedp.sqlite)")
    p.add_argument("--name", help="name of the new experiment in the results (default: the "
                                  "folder's name); an existing one is never replaced")
    p.add_argument("--goal", type=finite_float,
                   help="target of --metric for studies whose study.json names none "
                        "(Shallue et al.'s files name none), e.g. 0.01")
    p.add_argument("--metric", default=METRIC,
                   help=f"measurements.csv column the goal applies to (default {METRIC})")
    p.set_defaults(handler=run)


SHOWN = 10
"""Skipped entries named one by one in the note; the rest are counted."""


def skipped_note(skipped: tuple[str, ...]) -> str | None:
    """``note: skipped N entries ...: a, b, …`` naming what the import left out, or None."""
    if not skipped:
        return None
    names = ", ".join(skipped[:SHOWN])
    more = f" and {len(skipped) - SHOWN} more" if len(skipped) > SHOWN else ""
    return (f"note: skipped {len(skipped)} entries of the source that are not part of the "
            f"layout (not study.json, a trial folder or its two files): {names}{more}")


def run(args: argparse.Namespace) -> int:
    result = import_batch_science(args.source, args.out, name=args.name, goal=args.goal,
                                  metric=args.metric)
    note = skipped_note(result.skipped)
    if note:
        print(note)
    print(f"{result.describe()}; `sparsedp report {result.results_dir}` analyses them")
    return 0
