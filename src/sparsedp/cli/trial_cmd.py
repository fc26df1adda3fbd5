"""``sparsedp trial``: prune, train and measure steps-to-result for one trial."""

from __future__ import annotations

import argparse
import json
import math
import warnings

import torch

from sparsedp.api import TrialEvent, TrialStarted, format_event, measure_trial_config
from sparsedp.cli.common import (
    CliError,
    add_plugin_option,
    finite_float,
    is_terminal,
    load_plugins,
    non_negative_int,
    positive_int,
    stderr_console,
)
from sparsedp.pruning import PruneSettings, pruner_names
from sparsedp.pruning.ablation import ABLATIONS
from sparsedp.training import TrialConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("trial", help="run one trial and report its steps-to-result")
    p.add_argument("--workload", required=True, help="see `sparsedp workloads`")
    p.add_argument("--sparsity", type=finite_float, required=True,
                   help="fraction of prunable weights removed, in [0, 1)")
    p.add_argument("--batch-size", type=positive_int, required=True)
    p.add_argument("--lr", type=finite_float, required=True, help="learning rate")
    p.add_argument("--momentum", type=finite_float)
    p.add_argument("--decay-steps", type=positive_int)
    p.add_argument("--end-lr-factor", type=finite_float)
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="model init / pruning seed (>= 0, as in experiment files)")
    p.add_argument("--data-seed", type=non_negative_int, default=0,
                   help="training batch order seed (>= 0)")
    p.add_argument("--data-dir", help="directory holding the data set's files")
    p.add_argument("--goal-error", type=finite_float)
    p.add_argument("--max-steps", type=positive_int)
    p.add_argument("--eval-every", type=positive_int)
    p.add_argument("--hidden-units", type=int, default=0,
                   help="simple-cnn only: add a hidden FC layer (1024 = Shallue et al.'s wide "
                        "variant, without dropout)")
    p.add_argument("--pruner", default="snip",
                   help=f"a registered pruner: {', '.join(pruner_names())}, or a plugin's "
                        "(checked against the registry once plugins are loaded; "
                        "see docs/pruners.md)")
    p.add_argument("--prune-biases", action="store_true",
                   help="also prune biases (the authors' code did; they start at zero)")
    p.add_argument("--snip-batches", type=positive_int,
                   help="SNIP on this many mini-batches of 100 (default: whole training split)")
    p.add_argument("--grasp-temperature", type=finite_float,
                   help="grasp: logits divided by this (default 200, the paper's)")
    p.add_argument("--grasp-examples-per-class", type=positive_int,
                   help="grasp: training examples per class in its sample (default 25)")
    p.add_argument("--synflow-iterations", type=positive_int,
                   help="synflow: pruning rounds of the exponential schedule (default 100)")
    p.add_argument("--ablation", choices=ABLATIONS, default="none",
                   help="with any pruner: shuffle (each layer's kept count at random "
                        "positions), reinit (same mask, fresh weights from seed + 2^31), "
                        "invert (keep the lowest scores); see docs/pruners.md")
    p.add_argument("--full-eval", action="store_true",
                   help="evaluate the whole validation split at every check (default: exact "
                        "early exit, which gives the same outcome sooner)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--save-mask-report", help="write the sparsity report as JSON here")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    add_plugin_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console = stderr_console()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_plugins(args.plugin)
    try:
        config = _config(args)
    except ValueError as exc:  # the arguments did not validate
        raise CliError(str(exc)) from None
    eval_every = [1]  # the workload's, once the trial has started

    def on_event(event: TrialEvent) -> None:
        if isinstance(event, TrialStarted):
            eval_every[0] = event.eval_every
        elif not is_terminal() and event.step % (eval_every[0] * 25):
            return  # not a terminal: every 25th check only
        console.print(format_event(event), markup=False)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = measure_trial_config(config, data_dir=args.data_dir, device=args.device,
                                 full_eval=args.full_eval, on_event=on_event)
    for warning in caught:
        console.print(f"[yellow]warning:[/] {warning.message}")
    console.print("sparsity report (prunable parameters):")
    console.print(_format_report(m.mask_report), markup=False)
    if "health" in m.mask_report:
        console.print(format_health(m.mask_report["health"]), markup=False)
    if args.save_mask_report:
        with open(args.save_mask_report, "w") as f:
            json.dump(m.mask_report, f, indent=2)
    if args.json:
        print(json.dumps(m.to_dict(), indent=2))
        return 0
    result = m.result
    error = "n/a" if m.final_val_error is None else f"{m.final_val_error:.4f}"
    if m.final_val_error is not None and not m.final_error_exact:
        error = (f">= {error} (a lower bound: the last check stopped once the goal was out "
                 "of reach; use --full-eval for exact errors)")
    print(f"status: {m.status}")
    print(f"steps-to-result: {m.steps_to_result if m.steps_to_result else '-'}"
          f" (steps taken {m.steps_taken})")
    print(f"final validation error: {error}")
    print(f"wall time: {m.wall_time:.1f} s (training {result.train_time:.1f} s, "
          f"evaluation {result.eval_time:.1f} s, pruning {result.prune_time:.1f} s)")
    if m.message:
        print(m.message)
    return 0


def _config(args: argparse.Namespace) -> TrialConfig:
    """The trial the arguments describe (ValueError: they do not validate)."""
    options = {}
    for key, method in (("grasp_temperature", "grasp"), ("grasp_examples_per_class", "grasp"),
                        ("synflow_iterations", "synflow")):
        if getattr(args, key) is not None:
            if args.pruner != method:
                flag = "--" + key.replace("_", "-")
                raise ValueError(f"{flag} applies to --pruner {method} only; remove it or "
                                 f"add --pruner {method}")
            options[key] = getattr(args, key)
    pruning = PruneSettings(args.pruner, args.prune_biases, snip_batches=args.snip_batches,
                            ablation=args.ablation, **options)
    return TrialConfig(
        workload=args.workload,
        sparsity=args.sparsity,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        decay_steps=args.decay_steps,
        end_lr_factor=args.end_lr_factor,
        seed=args.seed,
        data_seed=args.data_seed,
        goal_error=args.goal_error,
        max_steps=args.max_steps,
        eval_every=args.eval_every,
        hidden_units=args.hidden_units,
        pruning=pruning,
    )


def _format_report(report: dict) -> str:
    lines = [f"  {'parameter':<16} {'kept':>8} {'total':>8} {'sparsity':>9}"]
    for layer in report["layers"]:
        lines.append(f"  {layer['name']:<16} {layer['kept']:>8} {layer['total']:>8} "
                     f"{layer['sparsity']:>8.2%}")
    lines.append(f"  {'all':<16} {report['kept']:>8} {report['total']:>8} "
                 f"{report['sparsity']:>8.2%}")
    return "\n".join(lines)


def format_health(health: dict) -> str:
    """The mask health (docs/pruners.md) in three lines."""
    classes = health.get("num_classes")
    cut = (f"units cut off: {health['classes_cut_off']} output classes, "
           f"{health['filters_cut_off']} conv filters, "
           f"{health['hidden_units_cut_off']} hidden units")
    lines = [f"mask health ({health['sample']}):"]
    if "initial_loss" in health:
        loss = health["initial_loss"]
        loss_text = "not finite" if loss is None else f"{loss:.4g}"
        bound = f" (ln {classes} = {math.log(classes):.4g})" if classes else ""
        lines.append(f"  initial loss {loss_text}{bound}, logit std {_num(health['logit_std'])}, "
                     f"max |logit| {_num(health['logit_max_abs'])}, classes predicted "
                     f"{health['classes_predicted']} of {classes}")
    lines.append(f"  {cut}")
    lines.append("  unhealthy: " + "; ".join(health["unhealthy"]) if health["unhealthy"]
                 else "  healthy")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "not finite" if value is None else f"{value:.4g}"
