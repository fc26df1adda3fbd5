"""Training time of a large batch computed whole versus as accumulated micro-batches.

One dense Simple-CNN trial on real MNIST (Momentum, lr 0.01) trains ``--steps`` steps at
``--batch-size``, once with ``micro_batch`` ≥ the batch (whole) and once with ``--micro``
(accumulated pieces), alternating ``--repeats`` times. Only training time counts (the trainer
reports it apart from the single validation check at the last step, early exit on). Prints
the median training time of each and their ratio (whole / micro: > 1 means micro-batching
is faster), and checks that both trained to the same validation error.

    python benchmarks/micro_batch.py --batch-size 1024 --micro 256 --steps 20 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

from sparsedp.data.sources import load_dataset
from sparsedp.data.splits import prepare_splits
from sparsedp.training.trainer import EngineSettings, run_trial
from sparsedp.training.trial_config import TrialConfig


def default_data_dir(name: str = "mnist") -> Path | None:
    """$SPARSEDP_TEST_DATA/NAME, else ../shared/data/NAME beside the clone, else None."""
    env = os.environ.get("SPARSEDP_TEST_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / name if (base / name).is_dir() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--micro", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--data-dir", help="directory with the MNIST files")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = prepare_splits(load_dataset("mnist", args.data_dir or default_data_dir()))
    config = TrialConfig("mnist-simplecnn-momentum", 0.0, args.batch_size, 0.01, momentum=0.9,
                         goal_error=0.01, max_steps=args.steps, eval_every=args.steps)
    variants = {"whole": args.batch_size, f"micro {args.micro}": args.micro}
    times: dict[str, list[float]] = {name: [] for name in variants}
    errors: dict[str, set[float | None]] = {name: set() for name in variants}
    run_trial(config, data, engine=EngineSettings(early_exit=True))  # warm-up, untimed
    for _ in range(args.repeats):
        for name, micro in variants.items():
            result = run_trial(config, data,
                               engine=EngineSettings(early_exit=True, micro_batch=micro))
            times[name].append(result.train_time)
            errors[name].add(result.curve[-1][1])
    print(f"batch {args.batch_size}, {args.steps} steps, {torch.get_num_threads()} threads, "
          f"{args.repeats} repeats (median training time)")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        spread = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"  {name:<12} {median:7.2f} s  ({spread})")
    whole, micro = medians.values()
    print(f"ratio whole / micro: {whole / micro:.2f}x")
    print(f"last checked validation error: {sorted(errors['whole'])} vs "
          f"{sorted(errors[f'micro {args.micro}'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
