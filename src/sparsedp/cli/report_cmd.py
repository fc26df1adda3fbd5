"""``sparsedp report``: an HTML page and a JSON summary of an experiment's scaling results."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from sparsedp.cli.common import CliError, positive_int, stderr_console
from sparsedp.experiment import load_experiment
from sparsedp.experiment.provenance import provenance as current_provenance
from sparsedp.report import write_report
from sparsedp.store import ResultStore, repeats_frame, trials_frame
from sparsedp.store.batch_science import search_space_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write an HTML report and summary.json")
    p.add_argument("experiment", help="experiment TOML file, or a results directory (e.g. "
                                      "one `sparsedp import` wrote)")
    p.add_argument("--name", help="with a results directory holding several experiments: "
                                  "which one")
    p.add_argument("--out", help="output directory (default: <results>/report)")
    p.add_argument("--bootstrap", type=positive_int, default=200,
                   help="bootstrap resamples for confidence intervals (default 200)")
    p.add_argument("--formats", default="png,svg",
                   help="figure files written beside the page (png, svg, pdf)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if Path(args.experiment).is_dir():
        return _run_on_results(args)
    spec = load_experiment(args.experiment)
    if not (spec.results_dir / ResultStore.FILENAME).exists():
        raise CliError(f"no results yet for {spec.name} in {spec.results_dir}: "
                       f"run `sparsedp run {args.experiment}` first")
    formats = _formats(args)
    # The experiment as the file configures it now: trials of studies an earlier
    # configuration linked (another goal, budget, pruning, seed) stay out of the analysis.
    keys = {study.key for study in spec.studies()}
    with ResultStore(spec.results_dir, read_only=True) as store:
        frame = trials_frame(store, spec.name, study_keys=keys)
        repeats = repeats_frame(store, spec.name, study_keys=keys)
        rows = [r for r in store.trial_rows(spec.name, all_studies=True)
                if r["study_key"] in keys]
    if frame.empty:
        raise CliError(f"{spec.name} has no finished trials yet in {spec.results_dir}")
    stored = [json.loads(r["provenance_json"]) for r in rows if r["provenance_json"]]
    provenance = {
        "report generated with": current_provenance(spec.engine.device),
        "trials measured with": _distinct(stored),
    }
    config = spec.to_dict()
    config["expected_studies"] = [
        {"workload": s.workload, "sparsity": s.sparsity, "batch_size": s.batch_size}
        for s in spec.studies()
    ]
    engines = _distinct([json.loads(r["engine_json"]) for r in rows if r["engine_json"]])
    # What produced the stored trials (the stopping sentence reads each trial's own
    # setting from the frame), then the file's settings, which apply to the next run only.
    notes = {"trial engine settings": engines,
             "experiment file's engine settings (next run)": asdict(spec.engine)}
    out = Path(args.out) if args.out else spec.results_dir / "report"
    console = stderr_console()
    console.print(f"analysing {len(frame)} trials of {spec.name} …")
    path = write_report(frame, out, experiment_config=config, provenance=provenance,
                        engine_notes=notes, analysis_options={"n_resamples": args.bootstrap},
                        formats=formats, repeats=repeats,
                        search_spaces={s.key: s.space() for s in spec.studies()})
    print(path)
    return 0


def _distinct(items: list[dict]) -> list[dict] | dict:
    """The distinct dicts among ``items`` (one dict when they all agree)."""
    seen: list[dict] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen[0] if len(seen) == 1 else seen


def _formats(args: argparse.Namespace) -> tuple[str, ...]:
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = set(formats) - {"png", "svg", "pdf"}
    if unknown:
        raise CliError(f"--formats: unknown format(s) {', '.join(sorted(unknown))}; "
                       "use png, svg or pdf")
    return formats


def _run_on_results(args: argparse.Namespace) -> int:
    """Report on a results directory without its experiment file (e.g. imported results):
    the experiment's current studies as the store registered them last."""
    directory = Path(args.experiment)
    if not (directory / ResultStore.FILENAME).exists():
        raise CliError(f"{directory} holds no {ResultStore.FILENAME}; give an experiment file "
                       "or a results directory")
    formats = _formats(args)
    with ResultStore(directory, read_only=True) as store:
        names = store.experiment_names()
        name = args.name or (names[0] if len(names) == 1 else None)
        if name not in names:
            raise CliError(f"{directory} holds the experiments {', '.join(names) or 'none'}; "
                           "choose one with --name")
        frame = trials_frame(store, name)
        repeats = repeats_frame(store, name)
        config = store.experiment_config(name) or {"name": name}
        spaces = {}
        for row in store.study_rows(name):
            space = search_space_of(json.loads(row["spec_json"]))
            if space is not None:
                spaces[row["key"]] = space
    if frame.empty:
        raise CliError(f"{name} has no trials in {directory}")
    out = Path(args.out) if args.out else directory / "report"
    stderr_console().print(f"analysing {len(frame)} trials of {name} …")
    path = write_report(frame, out, experiment_config=config,
                        provenance={"report generated with": current_provenance("cpu")},
                        engine_notes={}, analysis_options={"n_resamples": args.bootstrap},
                        formats=formats, repeats=repeats, search_spaces=spaces)
    print(path)
    return 0
