"""``sparsedp workloads``: list the registered workloads (built in and plugins') and their
defaults."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from sparsedp.cli.common import add_plugin_option, is_terminal, load_plugins
from sparsedp.training.workloads import WORKLOADS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("workloads", help="list workloads and their defaults")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_plugin_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    load_plugins(args.plugin)
    if args.json:
        rows = [
            {
                "name": w.name,
                "paper": w.paper,
                "dataset": w.dataset,
                "model": w.model,
                "optimizer": w.optimizer,
                "schedule": w.schedule,
                "searched": list(w.searched),
                "goal_error": w.goal_error,
                "eval_every": w.eval_every,
                "max_steps": w.max_steps,
                "description": w.description,
            }
            for w in WORKLOADS.values()
        ]
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="sparsedp workloads")
    for column in ("workload", "paper", "data", "model", "optimizer", "schedule", "searched",
                   "goal", "eval every", "step budget"):
        table.add_column(column)
    for w in WORKLOADS.values():
        table.add_row(w.name, w.paper, w.dataset, w.model, w.optimizer, w.schedule,
                      ", ".join(w.searched), f"{w.goal_error:g}", str(w.eval_every),
                      f"{w.max_steps:,}")
    # piped output: wide enough that no name is cut (a terminal keeps its own width)
    Console(soft_wrap=True, width=None if is_terminal() else 200).print(table)
    return 0
