"""Entry point of the ``sparsedp`` command."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from sparsedp.version import __version__

# Nothing heavier than argparse at import: a worker process started by ``sparsedp run``
# imports this module again (multiprocessing's spawn re-imports the main module), and needs
# none of the commands' imports (pandas, scipy, matplotlib, rich, the report): they load when
# the parser is built or a command runs (tests/test_cli_imports.py).


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"sparsedp: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from sparsedp.cli import (
        experiment_cmds,
        import_cmd,
        plan_cmd,
        probe_cmd,
        repeat_cmd,
        report_cmd,
        trial_cmd,
        workloads_cmd,
    )

    parser = _Parser(prog="sparsedp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sparsedp {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (workloads_cmd, trial_cmd, report_cmd, plan_cmd, probe_cmd, repeat_cmd,
                   import_cmd):
        module.add_parser(subparsers)
    experiment_cmds.add_parsers(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sparsedp.cli.common import (
        EXIT_BAD_INPUT,
        EXIT_INTERNAL,
        EXIT_SIGINT,
        EXIT_SIGTERM,
        SparsedpError,
        Terminated,
    )
    from sparsedp.data import DataError
    from sparsedp.plugins import PluginError
    from sparsedp.specs import ExperimentFileError

    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(os.environ.get("SPARSEDP_DEBUG"))
    try:
        return int(args.handler(args) or 0)
    except SparsedpError as exc:  # the API's and the CLI's one-line errors
        if debug:
            raise
        label = "" if exc.exit_code in (EXIT_SIGINT, EXIT_SIGTERM) else "error: "
        print(f"sparsedp: {label}{exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"sparsedp: interrupted by {'SIGTERM' if terminated else 'Ctrl-C'}",
              file=sys.stderr)
        return EXIT_SIGTERM if terminated else EXIT_SIGINT
    except sqlite3.Error as exc:
        if debug:
            raise
        print(f"sparsedp: error: results database: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ExperimentFileError, PluginError, DataError, OSError) as exc:  # bad input/environment
        if debug:
            raise
        print(f"sparsedp: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # anything else is a bug: say so, and how to see it
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"sparsedp: internal error: {type(exc).__name__}"
              f"{': ' + first if first else ''} (a bug in sparsedp; rerun with "
              "SPARSEDP_DEBUG=1 for the traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
