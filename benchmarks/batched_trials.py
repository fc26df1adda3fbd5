"""Training throughput of K trials run in lockstep versus the same K trials one after another.

For each batch size, K trials of one study (Simple-CNN on MNIST, sparsity 0.9, SNIP from one
batch) are trained for ``--steps`` steps each, once with :func:`run_trials_batched` and once
with :func:`run_trial` per trial. Only training time is counted (the trainers report it apart
from the single validation check at the last step, which is kept tiny: early exit after the
first 100 examples). Samples/s = trial-steps per second × batch size.

    python benchmarks/batched_trials.py --k 4 --steps 20 --threads 1
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import torch

from sparsedp.data.sources import load_dataset
from sparsedp.data.splits import SplitData, prepare_splits
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training.batched import run_trials_batched
from sparsedp.training.trainer import EngineSettings, TrialResult, run_trial
from sparsedp.training.trial_config import TrialConfig

WORKLOAD = "mnist-simplecnn-momentum"


def default_data_dir() -> Path | None:
    """$SPARSEDP_TEST_DATA, else ../shared/data beside the clone, else None (default search)."""
    env = os.environ.get("SPARSEDP_TEST_DATA")
    candidate = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return candidate if (candidate / "mnist").is_dir() else None


def study(k: int, batch_size: int, steps: int) -> list[TrialConfig]:
    """K trials of one study: different learning rates, momenta and seeds, none diverging."""
    return [
        TrialConfig(
            WORKLOAD, 0.9, batch_size, lr=0.005 * (1 + i % 4), momentum=0.8 + 0.05 * (i % 3),
            seed=i, goal_error=1e-4, max_steps=steps, eval_every=steps + 1,
            pruning=PruneSettings(snip_batches=1),
        )
        for i in range(k)
    ]


def samples_per_second(results: list[TrialResult], batch_size: int) -> float:
    """Trial-steps per second of training time, times the batch size."""
    steps = sum(r.steps_taken for r in results)
    return steps * batch_size / sum(r.train_time for r in results)


def measure(configs: list[TrialConfig], data: SplitData, engine: EngineSettings
            ) -> tuple[float, float]:
    """(sequential, batched) training samples per second for ``configs``."""
    batch_size = configs[0].batch_size
    batched = run_trials_batched(configs, data, engine=engine)
    sequential = [run_trial(config, data, engine=engine) for config in configs]
    for result in (*batched, *sequential):
        if result.steps_taken != configs[0].resolved_max_steps:
            raise RuntimeError(f"a trial ended early ({result.status}): {result.message}")
    return samples_per_second(sequential, batch_size), samples_per_second(batched, batch_size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=16, help="trials per group (default 16)")
    parser.add_argument("--steps", type=int, default=50, help="training steps per trial")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    data = prepare_splits(load_dataset("mnist", args.data_dir, cache_dir=args.cache_dir))
    engine = EngineSettings(early_exit=True, eval_batch_size=100, device=args.device)

    measure(study(2, args.batch_sizes[0], 2), data, engine)  # warm-up: kernels, allocator
    print(f"device {args.device} ({torch.get_num_threads()} CPU threads), {WORKLOAD}, "
          f"sparsity 0.9, K={args.k} trials × {args.steps} steps")
    print(f"{'batch':>6} {'sequential samples/s':>21} {'batched samples/s':>18} {'ratio':>7}")
    started = time.perf_counter()
    for batch_size in args.batch_sizes:
        sequential, batched = measure(study(args.k, batch_size, args.steps), data, engine)
        print(f"{batch_size:>6} {sequential:>21.0f} {batched:>18.0f} {batched / sequential:>6.2f}x",
              flush=True)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
