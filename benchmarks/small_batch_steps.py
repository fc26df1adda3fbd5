"""Training steps per second of the current step versus the old one, side by side.

The *old* step is the trainer before issue 14: PyTorch's channels-first max pooling and one
``mul_`` per masked gradient through a dictionary of the model's parameters rebuilt every
step. The *new* step pools in channels-last layout and masks gradients with one ``foreach``
multiply (bit-identical results; see tests/test_fast_step.py). Both are timed in the same
process, alternating in rounds, so load from other processes hits both alike. Rates are
given per second of this process's CPU time (with one thread, the work a step costs, little
affected by other processes) and per second of wall time (what a user sees; noisy on a
shared machine).

    python benchmarks/small_batch_steps.py --batch-sizes 16 64 256 --rounds 5 --threads 1
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from sparsedp.data.sources import load_dataset
from sparsedp.data.splits import prepare_splits
from sparsedp.pruning.mask import Mask
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training.trainer import EngineSettings, TrialRun
from sparsedp.training.trial_config import TrialConfig


def default_data_dir() -> Path | None:
    """$SPARSEDP_TEST_DATA, else ../shared/data beside the clone, else None (default search)."""
    env = os.environ.get("SPARSEDP_TEST_DATA")
    candidate = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return candidate if (candidate / "mnist").is_dir() else None


def make_run(workload: str, batch_size: int, data, old: bool) -> TrialRun:
    config = TrialConfig(workload, 0.9, batch_size, lr=0.01, momentum=0.9, seed=0,
                         max_steps=10**6, eval_every=10**6,
                         pruning=PruneSettings(method="random"))
    run = TrialRun(config, data, engine=EngineSettings(early_exit=True))
    if old:
        run.model.channels_last_pool = False
        mask, model = run.mask, run.model
        run.mask.mask_gradients_ = lambda: Mask.mask_gradients_(mask, model)  # type: ignore[method-assign]
    return run


def time_steps(run: TrialRun, steps: int) -> tuple[float, float]:
    """(CPU, wall) seconds for ``steps`` training steps (no validation)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        run.step += 1
        run._train_step(run.step)
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--workload", default="mnist-simplecnn-momentum")
    parser.add_argument("--examples", type=int, default=4096,
                        help="examples per timed piece (steps = examples / batch size)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = prepare_splits(load_dataset("mnist", default_data_dir()))
    print(f"{args.workload}, sparsity 0.9, {args.threads} thread(s), "
          f"{args.rounds} alternating rounds of {args.examples} examples per path")
    print(f"{'batch':>6} {'old steps/cpu-s':>16} {'new steps/cpu-s':>16} {'new/old':>8}"
          f" {'old steps/s':>12} {'new steps/s':>12} {'new/old':>8}")
    for batch_size in args.batch_sizes:
        steps = max(4, args.examples // batch_size)
        runs = {old: make_run(args.workload, batch_size, data, old) for old in (True, False)}
        for run in runs.values():
            time_steps(run, 3)  # warm-up
        cpu = {True: 0.0, False: 0.0}
        wall = {True: 0.0, False: 0.0}
        for _ in range(args.rounds):
            for old, run in runs.items():
                c, w = time_steps(run, steps)
                cpu[old] += c
                wall[old] += w
        done = steps * args.rounds
        old_cpu, new_cpu = done / cpu[True], done / cpu[False]
        old_wall, new_wall = done / wall[True], done / wall[False]
        print(f"{batch_size:>6} {old_cpu:>16.1f} {new_cpu:>16.1f} {new_cpu / old_cpu:>7.2f}x"
              f" {old_wall:>12.1f} {new_wall:>12.1f} {new_wall / old_wall:>7.2f}x")


if __name__ == "__main__":
    main()
