"""Early-exit validation checks: margin order against the earlier wrong-first order.

One real trial (real MNIST, pruned as the workload says) trains ``--steps`` steps; at every
check the same model is checked twice, side by side, by two evaluators that each keep their
own memory of past checks: the shipped one (examples in the order of their last margin) and the
order used before 2026-12-03 (the examples wrong at the last check first, then the natural
order). Both must give the same pass/fail answer at every check (the early exit is exact in
any order); the script prints the examples each looked at and their checking time, in total
and for the checks near the goal, with the ratios old / new.

    python benchmarks/early_exit_order.py --workload mnist-simplecnn-sgd --sparsity 0.9 \
        --batch-size 32 --lr 0.1778 --steps 3000 --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from micro_batch import default_data_dir  # the sibling script's (benchmarks/ is on sys.path)
from sparsedp.data.sources import load_dataset
from sparsedp.data.splits import prepare_splits
from sparsedp.training.evaluation import EvalResult, Evaluator
from sparsedp.training.trainer import EngineSettings, TrialRun
from sparsedp.training.trial_config import TrialConfig


class WrongFirstEvaluator(Evaluator):
    """The order before 2026-12-03: last check's wrong examples first, then natural order."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.previously_wrong = torch.zeros(self.total, dtype=torch.bool)

    @torch.inference_mode()
    def _check(self, model: torch.nn.Module) -> EvalResult:
        order = torch.argsort((~self.previously_wrong).to(torch.int8), stable=True)
        wrong_now = torch.zeros_like(self.previously_wrong)
        looked_at = torch.zeros_like(self.previously_wrong)
        errors = examined = 0
        for start in range(0, self.total, self.batch_size):
            rows = order[start : start + self.batch_size]
            wrong = model(self.x.index_select(0, rows)).argmax(dim=1) != self.y[rows]
            wrong_now[rows], looked_at[rows] = wrong, True
            errors += int(wrong.sum())
            examined += int(rows.shape[0])
            if errors > self.allowance:
                break
        self.previously_wrong = (self.previously_wrong & ~looked_at) | wrong_now
        return EvalResult(errors, examined, self.total)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist-simplecnn-sgd")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1778)
    parser.add_argument("--momentum", type=float, default=None)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eval-batch-size", type=int, default=100)
    parser.add_argument("--near", type=float, default=0.01,
                        help="a check is 'near the goal' when its full error is within this")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = prepare_splits(load_dataset("mnist", args.data_dir))
    config = TrialConfig(args.workload, args.sparsity, args.batch_size, args.lr,
                         momentum=args.momentum, max_steps=args.steps)
    run = TrialRun(config, data, engine=EngineSettings(eval_batch_size=args.eval_batch_size))
    x, y = data.validation()
    goal = config.resolved_goal_error
    new = Evaluator(x, y, goal, batch_size=args.eval_batch_size, early_exit=True)
    old = WrongFirstEvaluator(x, y, goal, batch_size=args.eval_batch_size, early_exit=True)
    full = Evaluator(x, y, goal, batch_size=1000)
    totals = {"all": [0, 0, 0.0, 0.0, 0], "near": [0, 0, 0.0, 0.0, 0]}
    checks = args.steps // config.resolved_eval_every
    for check in range(1, checks + 1):
        run.train_only(config.resolved_eval_every)
        answers = []
        timed = []
        for evaluator in (old, new):
            started = time.perf_counter()
            result = evaluator(run.model)
            timed.append(time.perf_counter() - started)
            answers.append(result)
        if (answers[0].errors <= old.allowance) != (answers[1].errors <= new.allowance):
            raise SystemExit(f"check {check}: the two orders disagree on pass/fail")
        truth = full(run.model).error
        for key in ("all", "near") if truth <= goal + args.near else ("all",):
            row = totals[key]
            row[0] += answers[0].examined
            row[1] += answers[1].examined
            row[2] += timed[0]
            row[3] += timed[1]
            row[4] += 1
        if answers[1].errors <= new.allowance:
            print(f"goal met at step {run.step}: both orders agree at every check")
            break
    print(f"{config.workload} s={args.sparsity:g} B={args.batch_size} lr={args.lr:g}, "
          f"{run.step} steps, eval batch {args.eval_batch_size}, {args.threads} thread(s)")
    print("checks            n   examined old   examined new   ratio   time old s   time new s"
          "   ratio")
    for key, (ex_old, ex_new, t_old, t_new, n) in totals.items():
        if n:
            print(f"{key + ' checks':<14} {n:>4} {ex_old:>14,} {ex_new:>14,} "
                  f"{ex_old / max(ex_new, 1):>7.2f} {t_old:>12.1f} {t_new:>12.1f} "
                  f"{t_old / max(t_new, 1e-9):>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
