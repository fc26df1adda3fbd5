"""``sparsedp report``: an HTML page and a JSON summary of an experiment's scaling results."""

from __future__ import annotations

import argparse
from pathlib import Path

from sparsedp.api import report_results
from sparsedp.api.batch_science import FIGURE_FORMATS
from sparsedp.cli.common import CliError, add_plugin_option, load, positive_int, stderr_console


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write an HTML report and summary.json")
    p.add_argument("experiment", help="experiment TOML file, or a results directory (e.g. "
                                      "one `sparsedp import` wrote)")
    p.add_argument("--name", help="with a results directory holding several experiments: "
                                  "which one")
    add_plugin_option(p)
    p.add_argument("--out", help="output directory (default: <results>/report)")
    p.add_argument("--bootstrap", type=positive_int, default=200,
                   help="bootstrap resamples for confidence intervals (default 200)")
    p.add_argument("--formats", default="png,svg",
                   help="figure files written beside the page (png, svg, pdf)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = set(formats) - set(FIGURE_FORMATS)
    if unknown:
        raise CliError(f"--formats: unknown format(s) {', '.join(sorted(unknown))}; "
                       "use png, svg or pdf")
    if Path(args.experiment).is_dir():  # a results directory, e.g. imported results
        print(report_results(args.experiment, args.out, name=args.name,
                             bootstrap=args.bootstrap, formats=formats))
        return 0
    experiment = load(args)
    frame = experiment.trials()  # the experiment as the file configures it now
    if not frame.empty:
        stderr_console().print(f"analysing {len(frame)} trials of {experiment.name} …",
                               markup=False)
    print(experiment.report(args.out, bootstrap=args.bootstrap, formats=formats, trials=frame))
    return 0
