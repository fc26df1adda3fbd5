"""``sparsedp probe``: gradient noise scale and Lipschitz smoothness along best trials."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from sparsedp.api.probe import ProbeEvent, ProbeSettings
from sparsedp.cli.common import add_plugin_option, load, positive_int, stderr_console
from sparsedp.probing.run import DEFAULT_CHECKPOINTS, DEFAULT_LIPSCHITZ_POINTS
from sparsedp.report.format import number
from sparsedp.specs import ExperimentSpec


def _non_negative(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def _sparsities(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}"
                                         ) from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "probe", help="measure the gradient noise scale (B_simple) and Lipschitz smoothness "
                      "along each sparsity's best trial (docs/probes.md)")
    p.add_argument("experiment", help="experiment TOML file (its trials must be stored)")
    p.add_argument("--show", action="store_true",
                   help="print the stored probe results without measuring anything")
    p.add_argument("--batch-size", type=positive_int,
                   help="probe the studies at this batch size (default: the smallest with a "
                        "result)")
    p.add_argument("--sparsities", type=_sparsities, help="only these, e.g. 0,0.9")
    p.add_argument("--checkpoints", type=_non_negative, default=DEFAULT_CHECKPOINTS,
                   help=f"noise-scale checkpoints from initialisation to the result "
                        f"(default {DEFAULT_CHECKPOINTS}; 0: no noise scale)")
    p.add_argument("--micro-batch", type=positive_int,
                   help="B_small: examples per micro-batch gradient (default: the trial's "
                        "batch size)")
    p.add_argument("--examples", type=positive_int, default=8192,
                   help="B_big: examples per noise-scale measurement (default 8192)")
    p.add_argument("--groups", type=positive_int, default=32,
                   help="micro-batch groups (the bootstrap's unit; default 32)")
    p.add_argument("--bootstrap", type=positive_int, default=1000,
                   help="bootstrap resamples for B_simple's 95%% interval (default 1000)")
    p.add_argument("--lipschitz-points", type=_non_negative, default=DEFAULT_LIPSCHITZ_POINTS,
                   help=f"about this many L measurements along the trial (default "
                        f"{DEFAULT_LIPSCHITZ_POINTS}; 0: none)")
    p.add_argument("--lipschitz-every", type=positive_int,
                   help="measure L along every N-th step instead")
    p.add_argument("--lipschitz-examples", type=positive_int,
                   help="training examples per full gradient (default: the whole training "
                        "split, as the authors did)")
    p.add_argument("--seed", type=int, default=0, help="draws of micro-batches and subsets")
    p.add_argument("--device", help="cpu or cuda (default: the experiment's engine device)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    add_plugin_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    experiment = load(args)
    if args.show:
        experiment._require_results()
        _print_tables(experiment.spec, experiment.probe_results(), Console(highlight=False))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    console = stderr_console()

    def show(event: ProbeEvent) -> None:
        prefix = {"note": "[yellow]note:[/] ", "warning": "[yellow]warning:[/] "}
        console.print(prefix.get(event.kind, "") + event.text, highlight=False)

    settings = ProbeSettings(micro_batch=args.micro_batch, examples=args.examples,
                             groups=args.groups, resamples=args.bootstrap,
                             lipschitz_every=args.lipschitz_every or 0,
                             lipschitz_examples=args.lipschitz_examples, seed=args.seed)
    rows = experiment.probe(
        batch_size=args.batch_size, sparsities=args.sparsities, checkpoints=args.checkpoints,
        lipschitz_points=None if args.lipschitz_every else args.lipschitz_points,
        settings=settings, device=args.device, on_event=show)
    _print_tables(experiment.spec, rows, Console(highlight=False))
    return 0


def _print_tables(spec: ExperimentSpec, rows: Sequence[Mapping[str, Any]],
                  console: Console) -> None:
    """One table per probed trial: B_simple with its interval and L, by step."""
    if not rows:
        console.print(f"{spec.name}: no probe results stored yet (run `sparsedp probe`)")
        return
    studies = {s.key: s for s in spec.studies()}
    trials: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for row in rows:
        trials.setdefault((row["study_key"], row["trial_index"]), []).append(row)
    ordered = sorted(trials, key=lambda k: (studies[k[0]].workload, studies[k[0]].sparsity,
                                            studies[k[0]].batch_size, k[1]))
    for key in ordered:
        study = studies[key[0]]
        table = Table(title=f"{study.label}, trial {key[1]}", title_justify="left")
        for column in ("step", "B_simple", "95% interval", "|G|²", "tr Σ", "L"):
            table.add_column(column, justify="right")
        by_step: dict[int, dict[str, Mapping[str, Any]]] = {}
        for row in trials[key]:
            by_step.setdefault(row["step"], {})[row["kind"]] = row
        for step in sorted(by_step):
            noise, lip = by_step[step].get("noise_scale"), by_step[step].get("lipschitz")
            table.add_row(
                str(step),
                _value(noise) if noise else "",
                _interval(noise) if noise else "",
                number(noise["detail"].get("g2")) if noise else "",
                number(noise["detail"].get("trace")) if noise else "",
                _value(lip) if lip else "",
            )
        console.print(table)


def _value(row: Mapping[str, Any]) -> str:
    """The stored value; ``∞`` for a B_simple whose |G|² estimate was not positive."""
    return "∞" if row["value"] is None and row["detail"].get("infinite") else number(row["value"])


def _interval(row: Mapping[str, Any]) -> str:
    if row["low"] is None and not row["detail"].get("unbounded_above"):
        return "—"
    high = "∞" if row["high"] is None and row["detail"].get("unbounded_above") else \
        number(row["high"])
    return f"[{number(row['low'])}, {high}]"

