"""``sparsedp import``: read results in Shallue et al.'s batch_science layout."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from sparsedp.cli.common import EXIT_BUSY, CliError, finite_float
from sparsedp.experiment.runlock import RunLock, RunLockBusy
from sparsedp.store import ResultStore
from sparsedp.store.batch_science import METRIC, BatchScienceError, import_batch_science
from sparsedp.store.check import StoreFileError, check_store


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
    name = args.name or re.sub(r"[^A-Za-z0-9._-]+", "-", Path(args.source).resolve().name)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name or ""):
        raise CliError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only")
    if args.goal is not None and not 0 < args.goal < 1:
        raise CliError(f"--goal {args.goal:g}: expected an error rate in (0, 1)")
    out = Path(args.out)
    try:
        check_store(out)
    except StoreFileError as exc:
        raise CliError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(out)
    try:
        lock.acquire()
    except RunLockBusy as exc:
        raise CliError(str(exc), EXIT_BUSY) from None
    try:
        with ResultStore(out) as store:
            counts = import_batch_science(args.source, store, name, goal=args.goal,
                                          metric=args.metric)
    except BatchScienceError as exc:
        raise CliError(str(exc)) from None
    finally:
        lock.release()
    print(f"imported {counts['trials']} trials of {counts['studies']} studies into {out} "
          f"as experiment {name}; `sparsedp report {out}` analyses them")
    return 0
