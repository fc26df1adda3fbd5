"""Local execution layout: 1 process × 2 threads vs 2 processes × 1 thread (and more).

Runs the same small set of trials (fixed work: a goal that is never reached, so every trial
trains for the whole budget and is evaluated every 16 steps) under each layout and prints
wall time and throughput side by side. The default `workers`/`threads` of the experiment
runner were chosen from this measurement (see docs/decisions.md).

    python benchmarks/workers_threads.py [--trials 4] [--max-steps 200] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from sparsedp.execution.runner import run_experiment
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore


def run_layout(directory: Path, args: argparse.Namespace, workers: int, threads: int) -> float:
    """Wall seconds to run the trials with ``workers`` processes of ``threads`` threads."""
    path = directory / f"w{workers}t{threads}.toml"
    path.write_text(
        f'name = "layout"\nworkloads = ["mnist-simplecnn-momentum"]\nsparsities = [0.9]\n'
        f"batch_sizes = [{args.batch_size}]\ntrials = {args.trials}\n"
        f'results = "{directory / f"w{workers}t{threads}"}"\nworkers = {workers}\n'
        f"max_steps = {args.max_steps}\ngoal_error = 0.001\n[pruning]\nsnip_batches = 10\n"
        f"[engine]\nthreads = {threads}\nstop_hopeless = false\neval_batch_size = 250\n"
    )
    spec = load_experiment(path)
    started = time.perf_counter()
    with ResultStore(spec.results_dir) as store:
        run_experiment(spec, store)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    layouts = [(1, cores), (cores, 1)] if cores > 1 else [(1, 1)]
    with tempfile.TemporaryDirectory(prefix="sparsedp-layout-") as tmp:
        os.environ.setdefault("SPARSEDP_CACHE_DIR", str(Path(tmp) / "cache"))
        run_layout(Path(tmp), argparse.Namespace(trials=1, max_steps=16,
                                                 batch_size=args.batch_size), 1, 1)  # warm cache
        times = {layout: run_layout(Path(tmp), args, *layout) for layout in layouts}
    base = times[layouts[0]]
    print(f"{args.trials} trials × {args.max_steps} steps at batch {args.batch_size}, "
          f"{cores} cores")
    for (workers, threads), seconds in times.items():
        print(f"  {workers} process(es) × {threads} thread(s): {seconds:7.1f} s  "
              f"({base / seconds:.2f}× the first layout)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
