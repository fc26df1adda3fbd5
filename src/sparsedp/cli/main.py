"""Entry point of the ``sparsedp`` command."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from sparsedp import __version__
from sparsedp.cli import experiment_cmds, plan_cmd, report_cmd, trial_cmd, workloads_cmd
from sparsedp.cli.common import CliError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"sparsedp: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sparsedp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sparsedp {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in _COMMANDS:
        module.add_parser(subparsers)
    experiment_cmds.add_parsers(subparsers)
    return parser


_COMMANDS = [workloads_cmd, trial_cmd, report_cmd, plan_cmd]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("sparsedp: interrupted", file=sys.stderr)
        return 130
    except sqlite3.Error as exc:
        if os.environ.get("SPARSEDP_DEBUG"):
            raise
        print(f"sparsedp: error: results database: {exc}", file=sys.stderr)
        return 2
    except (CliError, ValueError, OSError, KeyError) as exc:
        if os.environ.get("SPARSEDP_DEBUG"):
            raise
        message = str(exc) if not isinstance(exc, KeyError) else f"missing {exc}"
        print(f"sparsedp: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
