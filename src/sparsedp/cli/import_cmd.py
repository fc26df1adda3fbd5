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
    p.add_argument("--name", help="experiment name in the results (default: the folder's name)")
    p.add_argument("--goal", type=finite_float,
                   help="target of --metric for studies whose study.json names none "
                        "(Shallue et al.'s files name none), e.g. 0.01")
    p.add_argument("--metric", default=METRIC,
                   help=f"measurements.csv column the goal applies to (default {METRIC})")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = import_batch_science(args.source, args.out, name=args.name, goal=args.goal,
                                  metric=args.metric)
    print(f"{result.describe()}; `sparsedp report {result.results_dir}` analyses them")
    return 0
