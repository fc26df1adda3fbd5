"""``sparsedp plan``: measure, then print what an experiment file will cost before it runs."""

from __future__ import annotations

import argparse
import json
import math
import os
import time

from rich.console import Console

from sparsedp.api import Experiment
from sparsedp.api.stored import has_stored_results, read_store
from sparsedp.cli.common import (
    CliError,
    add_plugin_option,
    load,
    non_negative_int,
    positive_int,
    stderr_console,
)
from sparsedp.execution.backends.worker import WorkerContext
from sparsedp.execution.preflight import PreflightError, check_device
from sparsedp.execution.runner import pending_trials
from sparsedp.execution.tasks import TrialTask
from sparsedp.planning.estimate import (
    DAY,
    DEFAULT_CHECK_FRACTION,
    SPARSE_MEASURED_AT,
    ExperimentPlan,
    Speed,
    StepsEstimate,
    StudyPlan,
    extrapolate,
    kth_best_factor,
    least_check_fraction,
    measure_snip,
    measure_speed,
    plan_study,
    snip_groups,
)
from sparsedp.search.refine import REFINE_BASE
from sparsedp.specs import ExperimentSpec, StudySpec
from sparsedp.training.workloads import get_workload


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plan", help="measure speeds and estimate an experiment's compute before running it"
    )
    p.add_argument("experiment", help="experiment TOML file")
    add_plugin_option(p)
    p.add_argument("--steps", type=positive_int,
                   help="your guess of the best steps-to-result (studies with no other estimate)")
    p.add_argument("--pilot", action="store_true",
                   help="run trial 0 (or --pilot-trial N) of the smallest batch size of each "
                        "(workload, sparsity) to its end and extrapolate the rest of the row "
                        "from it (costs real trials)")
    p.add_argument("--pilot-trial", type=non_negative_int, default=0, metavar="N",
                   help="the search trial the pilot runs (default 0): pick one whose "
                        "metaparameters look likely to reach the goal")
    p.add_argument("--like", metavar="EXPERIMENT",
                   help="another experiment file whose stored bests, at the same sparsity and "
                        "batch size, estimate this one's (e.g. Nesterov from Momentum)")
    p.add_argument("--ignore-stored", action="store_true",
                   help="estimate as if nothing were stored (to check the model against a run)")
    p.add_argument("--measure-steps", type=positive_int, default=5,
                   help="training steps timed per (workload, batch size) (default 5)")
    p.set_defaults(handler=run)


# --------------------------------------------------------------------------- stored results


class _Stored:
    """What the results database already holds, per study key (empty when there is none)."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.done: dict[str, set[int]] = {}
        self.best: dict[str, int | None] = {}
        self.completed: dict[str, list[int]] = {}  # complete steps-to-result, lowest first
        self.pending: dict[str, int] = {}  # trials the runner would run: search and refine
        self.actual_s: dict[str, float] = {}
        self.examined = {"margin": 0, "earlier": 0}  # by early-exit order (docs/engine.md)
        self.checks = {"margin": 0, "earlier": 0}
        if not has_stored_results(spec.results_dir):  # a damaged file raises (api/stored.py)
            return
        with read_store(spec.results_dir, f"no results for {spec.name}") as store:
            for study in spec.studies():
                self.done[study.key] = set(store.finished_trials(study.key))
                found = store.best_steps(study.key)
                self.best[study.key] = found[0] if found else None
                self.completed[study.key] = store.completed_steps(study.key)
                todo = pending_trials(spec, store, study)
                refine = 0
                if spec.refine is not None:
                    refine = spec.refine.trials - sum(1 for i in self.done[study.key]
                                                      if i >= REFINE_BASE)
                self.pending[study.key] = len(todo) + refine
            for row in store.trial_rows(spec.name):
                key = row["study_key"]
                self.actual_s[key] = self.actual_s.get(key, 0.0) + float(row["wall_time"] or 0)
                engine = json.loads(row["engine_json"] or "{}")
                order = "margin" if engine.get("early_exit_order") == "margin" else "earlier"
                self.examined[order] += int(row["eval_examples"] or 0)
                self.checks[order] += len(json.loads(row["curve_json"] or "[]"))


# --------------------------------------------------------------------------- estimates


def _estimates(spec: ExperimentSpec, stored: _Stored, args: argparse.Namespace,
               context: WorkerContext, console: Console) -> dict[str, StepsEstimate]:
    """Best steps-to-result per study: stored, pilot, neighbour, guess, in that order."""
    out: dict[str, StepsEstimate] = {}
    studies = spec.studies()
    for study in studies:
        if args.ignore_stored or study.key not in stored.best:
            continue
        best = stored.best[study.key]
        if best is not None:
            out[study.key] = StepsEstimate(best, "stored")
        elif len(stored.done.get(study.key, ())) >= spec.trials:
            out[study.key] = StepsEstimate(None, "no trial reached the goal")
    rows: dict[tuple[str, float], list[StudySpec]] = {}
    for study in studies:
        rows.setdefault((study.workload, study.sparsity), []).append(study)
    for row in rows.values():
        known = {s.batch_size: out[s.key].steps for s in row
                 if s.key in out and out[s.key].steps is not None}
        if args.pilot:
            missing = sorted((s for s in row if s.key not in out), key=lambda s: s.batch_size)
            if missing:
                pilot = _pilot(missing[0], args.pilot_trial, context, console)
                out[missing[0].key] = pilot
                if pilot.steps is not None:
                    known[missing[0].batch_size] = pilot.steps
        like = _like_bests(args, row[0].sparsity)
        for study in row:
            if study.key not in out and study.batch_size in like:
                out[study.key] = StepsEstimate(like[study.batch_size][0],
                                               like[study.batch_size][1])
                known.setdefault(study.batch_size, like[study.batch_size][0])
        for study in row:
            if study.key in out:
                continue
            guess = extrapolate(study.batch_size, known)  # type: ignore[arg-type]
            if guess is None and args.steps:
                guess = StepsEstimate(args.steps, "guess")
            out[study.key] = guess or StepsEstimate(None, "none")
    return out


def _like_bests(args: argparse.Namespace, sparsity: float) -> dict[int, tuple[int, str]]:
    """Batch size → (stored best, label) of ``--like``'s studies at ``sparsity``."""
    other = getattr(args, "like_spec", None)
    if other is None:
        return {}
    out: dict[int, tuple[int, str]] = {}
    with read_store(other.results_dir, f"--like: no results for {other.name}") as store:
        for study in other.studies():
            found = store.best_steps(study.key)
            if found and math.isclose(study.sparsity, sparsity, abs_tol=1e-9):
                out.setdefault(study.batch_size, (found[0], f"like {other.name}"))
    return out


def _pilot(study: StudySpec, index: int, context: WorkerContext,
           console: Console) -> StepsEstimate:
    """Run search trial ``index`` of ``study`` to its end: its steps-to-result is the row's
    estimate."""
    point = study.space().points(index + 1)[index]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in point.items())
    console.print(f"pilot: trial {index} of {study.label} ({shown}) …")
    started = time.perf_counter()
    outcome = context.run(TrialTask(study, index, point))
    seconds = time.perf_counter() - started
    steps = getattr(outcome, "steps_to_result", None)
    status = getattr(outcome, "status", "failed")
    console.print(f"pilot: {study.label}: {status}, steps {steps or '-'} ({seconds:.0f} s)")
    if steps is None:
        return StepsEstimate(None, "pilot missed the goal")
    return StepsEstimate(int(steps), "pilot")


# --------------------------------------------------------------------------- output


def format_seconds(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.4 h``, ``2.1 d``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY:.1f} d"


def _print(plan: ExperimentPlan, speeds: dict[tuple[str, int], Speed], stored: _Stored,
           spec: ExperimentSpec) -> None:
    stopping = spec.engine.stop_hopeless
    show_actual = bool(stored.actual_s)
    header = (f"{'study':<38} {'trials':>9} {'est. steps':>18} {'trial':>6} {'step ms':>8} "
              f"{'check s':>8} "
              f"{'expected':>10} {'upper':>10} {'remaining':>10}")
    if show_actual:
        header += f" {'stored':>10}"
    print(header)
    for p in plan.studies:
        speed = speeds[(p.study.workload, p.study.batch_size)]
        steps = f"{p.estimate.steps} {p.estimate.source}" if p.estimate.steps else p.estimate.source
        line = (f"{p.label:<38} {f'{p.trials - p.pending}+{p.pending}':>9} {steps:>18} "
                f"{p.trial_steps or '-':>6} {speed.step_seconds * 1e3:>8.2f} "
                f"{speed.check_seconds:>8.3f} "
                f"{format_seconds(p.expected_s):>10} {format_seconds(p.upper_s):>10} "
                f"{format_seconds(p.remaining_s):>10}")
        if show_actual:
            line += f" {format_seconds(stored.actual_s.get(p.study.key, 0.0)):>10}"
        print(line)
    if plan.snip_s:
        print(f"{'SNIP saliencies':<38} {'':>9} {'':>18} {'':>6} {'':>8} {'':>8} "
              f"{format_seconds(plan.snip_s):>10} {format_seconds(plan.snip_s):>10} "
              f"{format_seconds(plan.snip_remaining_s):>10}")
    print(f"{'total':<38} {plan.trials:>9} {'':>18} {'':>6} {'':>8} {'':>8} "
          f"{format_seconds(plan.expected_s):>10} {format_seconds(plan.upper_s):>10} "
          f"{format_seconds(plan.remaining_s):>10}")
    print()
    print(f"compute of one worker on {spec.engine.device} (with {spec.workers} workers the wall "
          f"time is at best 1/{spec.workers} of it, given the cores); memory per worker: "
          f"{plan.memory_mb:.0f} MiB (peak of the measuring process)")
    print("trials: stored+pending; expected: " + (
        "stopping on, every trial runs about the study's stopping limit, its K-th best "
        f"steps-to-result (keep_complete = {spec.engine.keep_complete}; column 'trial': the "
        "stored K-th best, else the estimated best (column 'est. steps') times "
        f"{kth_best_factor(spec.engine.keep_complete):.2f} dense, "
        f"{kth_best_factor(spec.engine.keep_complete, SPARSE_MEASURED_AT):.2f} at sparsity "
        f"{SPARSE_MEASURED_AT:g} and above, linear between (measured at K = 1 and 3, dense "
        "also at 5; docs/engine.md); in studies without an estimate every trial runs its "
        "budget)" if stopping else
        "stopping off, so every trial is counted to its budget (most miss the goal)"))
    print(f"checks: early-exit checks examine {plan.check_fraction:.0%} of the validation split "
          f"on average ({plan.check_fraction_source}); upper bound: every check a full pass, "
          "every trial to its budget")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if spec.engine.device == "cpu" and load > cores:
        print(f"note: load average {load:.1f} on {cores} cores while measuring: the times include "
              "other processes' load (with several threads per worker, each step waits for "
              "descheduled threads; consider [engine] threads = 1)")
    unknown = sum(1 for p in plan.studies if p.estimate.steps is None)
    if unknown:
        print(f"{unknown} studies have no steps estimate (expected: every trial to its "
              "budget): pass --steps N, --pilot, or run some trials first")
    if plan.over_a_day:
        print(f"warning: the total exceeds a day ({format_seconds(plan.expected_s)} expected, "
              f"{format_seconds(plan.upper_s)} at most); consider fewer trials, batch sizes or "
              "a faster device")


# --------------------------------------------------------------------------- command


def build_plan(spec: ExperimentSpec, args: argparse.Namespace, console: Console) -> tuple[
        ExperimentPlan, dict[tuple[str, int], Speed], _Stored]:
    """Measure, read what is stored, estimate, and cost every study."""
    stored = _Stored(spec)
    context = WorkerContext(spec.engine, str(spec.data_dir) if spec.data_dir else None,
                            None, {})
    studies = spec.studies()
    speeds: dict[tuple[str, int], Speed] = {}
    for study in studies:
        key = (study.workload, study.batch_size)
        if key not in speeds:
            console.print(f"measuring {study.workload} B={study.batch_size} …")
            speeds[key] = measure_speed(study, context, steps=args.measure_steps)
    estimates = _estimates(spec, stored, args, context, console)

    order = "margin" if stored.checks["margin"] else "earlier"
    val_total = context.data(get_workload(studies[0].workload).dataset).num_val
    if stored.checks[order] and not args.ignore_stored:
        checks = stored.checks[order]
        fraction = min(1.0, stored.examined[order] / (checks * val_total))
        source = f"measured on the {checks} stored checks"
        if order == "earlier":  # checks made before the margin order: they read 5-9x more
            source += (" of the earlier wrong-first early-exit order, which read 5–9× more "
                       "examples than today's: an overestimate")
    else:
        fraction, source = DEFAULT_CHECK_FRACTION, "default, measured on W2 at the 2% goal"
        goal = min(s.goal_error or get_workload(s.workload).goal_error for s in studies)
        least = least_check_fraction(goal, val_total)
        if least > fraction:  # a high goal: a failing check reads more than the default
            fraction = least
            source = (f"at least: a check that misses the {goal:.0%} goal stops only once "
                      f"it has found more errors than that share of the {val_total:,} "
                      "examples; above the default 25%, measured at W2's 2% goal")
    if not spec.engine.early_exit:
        fraction, source = 1.0, "early exit off"

    plans: list[StudyPlan] = []
    for study in studies:
        refine = spec.refine.trials if spec.refine is not None else 0
        total = spec.trials + refine
        pending = total if args.ignore_stored else stored.pending.get(study.key, total)
        keep = spec.engine.keep_complete
        completed = [] if args.ignore_stored else stored.completed.get(study.key, [])
        plans.append(plan_study(study, total, pending,
                                speeds[(study.workload, study.batch_size)],
                                estimates[study.key], stopping=spec.engine.stop_hopeless,
                                check_fraction=fraction, keep_complete=keep,
                                stored_kth=completed[keep - 1] if len(completed) >= keep
                                else None))

    snip_total = snip_left = 0.0
    for group in snip_groups(spec).values():
        console.print(f"measuring SNIP for {group[0].workload} …")
        per = measure_snip(group[0], context)
        snip_total += per * spec.trials
        computed = set() if args.ignore_stored else set().union(
            *(stored.done.get(s.key, set()) for s in group))
        snip_left += per * sum(1 for i in range(spec.trials) if i not in computed)
    memory = max(s.memory_mb for s in speeds.values())
    plan = ExperimentPlan(plans, snip_total, snip_left, memory, fraction, source)
    return plan, speeds, stored


def run(args: argparse.Namespace) -> int:
    spec = load(args).spec
    console = stderr_console()
    args.like_spec = None
    if getattr(args, "like", None):
        other = Experiment.from_file(args.like, plugins=getattr(args, "plugin", ())).spec
        if not has_stored_results(other.results_dir):
            raise CliError(f"--like {args.like}: no results stored for {other.name} in "
                           f"{other.results_dir}; run it first or drop --like")
        args.like_spec = other
    if args.ignore_stored and args.pilot is False and args.steps is None:
        console.print("note: --ignore-stored without --pilot or --steps leaves no estimate")
    try:
        check_device(spec.engine.device)  # plan measures on the device the file names
    except PreflightError as exc:
        raise CliError(f"{args.experiment}: {exc} (plan times trials on that device)") from None
    try:
        plan, speeds, stored = build_plan(spec, args, console)
    except FileNotFoundError as exc:
        raise CliError(f"{exc}; check data_dir in {args.experiment}") from None
    print(f"experiment {spec.name}: {len(spec.studies())} studies × {spec.trials} trials")
    _print(plan, speeds, stored, spec)
    return 0
