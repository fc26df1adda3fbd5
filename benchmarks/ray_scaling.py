"""Trials per hour for one slice: the local backend versus Ray with 1 and 2 workers.

    python benchmarks/ray_scaling.py --data-dir /path/to/data/mnist [--trials 4]

Runs the same small real-MNIST slice (stopping off, so every trial trains to its own end)
with the local in-process backend and with a private Ray instance on 127.0.0.1 (``num_cpus``
= the most workers asked for) at each worker count, checks that every run found the same
bests (rows are identical at equal torch thread counts), and prints trials per hour and the
ratio to the local backend. Ray's own start-up (``ray.init``) is outside the timing, as a
cluster outlives one run; starting the worker actors (each imports torch and loads the data)
is inside it.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import torch

from sparsedp.execution.runner import run_experiment
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore

SLICE = """
name = "ray-scaling"
workloads = ["mnist-simplecnn-momentum"]
sparsities = [0.0]
batch_sizes = [32, 128]
trials = {trials}
workers = {workers}
results = "{results}"
data_dir = "{data}"
goal_error = 0.05
max_steps = {max_steps}
[engine]
eval_batch_size = 1000
{threads}stop_hopeless = false
backend = "{backend}"
"""


def run(directory: Path, name: str, data: Path, backend: str, workers: int, trials: int,
        max_steps: int, threads: int | None = None) -> tuple[float, list[tuple]]:
    path = directory / f"{name}.toml"
    path.write_text(SLICE.format(results=directory / name, data=data, backend=backend,
                                 workers=workers, trials=trials, max_steps=max_steps,
                                 threads=f"threads = {threads}\n" if threads else ""))
    spec = load_experiment(path)
    started = time.perf_counter()
    with ResultStore(spec.results_dir) as store:
        summary = run_experiment(spec, store)
    seconds = time.perf_counter() - started
    assert summary.failed_attempts == 0, "a trial failed"
    with sqlite3.connect(spec.results_dir / "sparsedp.sqlite") as db:
        rows = db.execute("SELECT study_key, trial_index, status, steps_to_result, steps_taken, "
                          "final_val_error FROM trials ORDER BY study_key, trial_index"
                          ).fetchall()
    return seconds, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="directory with MNIST")
    parser.add_argument("--trials", type=int, default=4, help="trials per study (2 studies)")
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--ray-workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep Ray on 127.0.0.1
    import ray

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        os.environ.setdefault("SPARSEDP_CACHE_DIR", str(directory / "cache"))
        total = 2 * args.trials
        threads = torch.get_num_threads()  # the local backend's default
        from sparsedp.data.sources import load_dataset

        load_dataset("mnist", args.data_dir)  # decode into the shared cache before timing
        results: list[tuple[str, float]] = []
        identical: list[bool] = []
        local, reference = run(directory, "local", args.data_dir, "local", 1, args.trials,
                               args.max_steps)
        results.append((f"local backend (1 process, {threads} threads)", local))
        seconds, one_thread = run(directory, "local1", args.data_dir, "local", 1, args.trials,
                                  args.max_steps, threads=1)
        results.append(("local backend (1 process, 1 thread)", seconds))
        ray.init(num_cpus=max(args.ray_workers), _node_ip_address="127.0.0.1",
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            for workers in args.ray_workers:
                seconds, rows = run(directory, f"ray{workers}", args.data_dir, "ray", workers,
                                    args.trials, args.max_steps)
                identical.append(rows == one_thread)
                if _bests(rows) != _bests(reference):
                    print(f"Ray with {workers} workers found other bests", file=sys.stderr)
                results.append((f"Ray, {workers} worker{'s' if workers > 1 else ''}", seconds))
        finally:
            ray.shutdown()
    print(f"slice: MNIST Simple-CNN, 2 studies x {args.trials} trials, {args.max_steps} steps "
          f"each, stopping off; {os.cpu_count()} CPUs")
    print(f"{'backend':<40} {'seconds':>8} {'trials/hour':>12} {'vs local':>9}")
    for label, seconds in results:
        print(f"{label:<40} {seconds:8.1f} {total * 3600 / seconds:12.0f} "
              f"{local / seconds:8.2f}x")
    print(f"Ray rows identical to the 1-thread local run: {'yes' if all(identical) else 'no'}; "
          f"to the {threads}-thread one: "
          f"{'yes' if one_thread == reference else 'no'} (thread counts change float rounding)")
    return 0


def _bests(rows: list[tuple]) -> dict[str, int]:
    best: dict[str, int] = {}
    for key, _, status, steps, *_ in rows:
        if status == "complete":
            best[key] = min(steps, best.get(key, steps))
    return best


if __name__ == "__main__":
    sys.exit(main())
