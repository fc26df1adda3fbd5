"""Straightforward vs fast trial engine on the same study slice, side by side in one run.

Slice (issue "Fast trial engine"): MNIST, Simple-CNN, Momentum, sparsity 0.9, batch 128,
16 trials, step budget 3,000, goal 2% validation error. Each engine runs in its own child
process (so peak memory is its own) with its own empty results and saliency cache:

- plain:    full validation pass every 16 steps (default layout, batch 1,000), no stopping,
            trials in index order;
- fast-off: the fast engine with stopping of hopeless trials switched off (per-trial outcomes
            must equal plain's exactly);
- fast:     the fast engine as shipped (exact early-exit evaluation, measured evaluation
            settings, stopping of hopeless trials).

Before the first engine, an untimed child process fills the shared data cache and the page
cache, so every engine starts equally warm (the decoded data set is read from the same cache
by all three; each engine still computes its own SNIP saliencies).

- k1, k3, k5: the fast engine with ``keep_complete`` = 1, 3, 5 (the stopping rule keeps the
            K best trials of the study running to their result; k1 is ``fast``).

It checks that the best steps-to-result is identical across engines (and per-trial outcomes
for fast-off), then prints wall times, ratios, evaluation share and peak memory. The check
fails (exit 1) when there is nothing to compare: fewer than two engines ran, or no trial of
any engine reached the goal (every best is ``None``). ``--sparsities`` runs every engine on
one slice per sparsity (e.g. dense and 90% sparse), each slice with its own comparison.

    python benchmarks/study_speed.py                 # the full slice (about 1-2 h on 2 cores)
    python benchmarks/study_speed.py --trials 4 --max-steps 1000   # a quick look
    python benchmarks/study_speed.py --engines k1,k3,k5 --sparsities 0,0.9   # keep_complete
    python benchmarks/study_speed.py --engines k1,k3,k5 --sparsities 0.9 --batch-size 256 \
        --momentum 0.9,0.99 --prune-biases --max-steps 1200 --threads 1   # as measured

With ``--momentum`` the slice searches that momentum range: the CPU reproduction's [0.9, 0.99]
holds settings that reach the goal at large batches, where the first 16 points of the
workload's full range hold none at B = 256 (every trial of the 90%-sparse slice ran to its
budget). With ``--prune-biases`` too, the slice's 16 trials are the first 16 of
reproduction/w2-momentum-refine-cpu's study at that batch size and sparsity.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINES = {
    "plain": {"early_exit": False, "stop_hopeless": False, "order": "index",
              "eval_batch_size": 1000},
    "fast-off": {"stop_hopeless": False},
    "fast": {},
    "k1": {"keep_complete": 1},
    "k3": {"keep_complete": 3},
    "k5": {"keep_complete": 5},
}


def _experiment_file(directory: Path, args: argparse.Namespace, engine: dict) -> Path:
    lines = [
        'name = "study-speed"',
        f'workloads = ["{args.workload}"]',
        f"sparsities = [{args.sparsity}]",  # one slice: main() sets it per slice
        f"batch_sizes = [{args.batch_size}]",
        f"trials = {args.trials}",
        f'results = "{directory / "results"}"',
        f"max_steps = {args.max_steps}",
        f"goal_error = {args.goal_error}",
    ]
    if args.data_dir:
        lines.append(f'data_dir = "{args.data_dir}"')
    if args.momentum:
        low, high = (float(x) for x in args.momentum.split(","))
        lines += ["[search.momentum]", f"low = {low}", f"high = {high}",
                  'scale = "reverse-log"']
    if args.prune_biases:
        lines += ["[pruning]", "prune_biases = true"]
    lines.append("[engine]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in engine.items()]
    if args.threads:
        lines.append(f"threads = {args.threads}")
    path = directory / "experiment.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _child(path: str) -> None:
    """Run one engine (in a child process) and print its measurements as JSON."""
    import resource

    from sparsedp.execution.runner import run_experiment
    from sparsedp.specs import load_experiment
    from sparsedp.store import ResultStore, trials_frame

    spec = load_experiment(path)
    started = time.perf_counter()
    with ResultStore(spec.results_dir) as store:
        run_experiment(spec, store)
        frame = trials_frame(store, spec.name)
    wall = time.perf_counter() - started
    complete = frame[frame.status == "complete"]
    best = None
    if len(complete):
        row = complete.sort_values(["steps_to_result", "trial_index"]).iloc[0]
        best = [int(row.steps_to_result), int(row.trial_index)]
    print(json.dumps({
        "wall": wall,
        "best": best,
        "eval_share": float(frame.eval_share.mul(frame.wall_time).sum() / frame.wall_time.sum()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trials": [[int(r.trial_index), r.status, None if r.steps_to_result != r.steps_to_result
                    else int(r.steps_to_result), int(r.steps_taken)]
                   for r in frame.itertuples()],
        "statuses": frame.status.value_counts().to_dict(),
    }))


def _warm(workload: str, data_dir: str | None) -> None:
    """Load the data set once (untimed) so the cache exists before any engine runs."""
    from sparsedp.data import load_dataset, prepare_splits
    from sparsedp.training.workloads import get_workload

    splits = prepare_splits(load_dataset(get_workload(workload).dataset, data_dir))
    x, _ = splits.validation()
    print(json.dumps({"warm": int(x.shape[0])}))


def identity_verdict(bests: dict[str, list[int] | None]) -> tuple[bool, str]:
    """Whether the engines' best (steps, trial) agree, and a line saying so. Fails when
    fewer than two engines ran or none found a best: identical ``None``s prove nothing."""
    if len(bests) < 2:
        return False, ("best steps-to-result identical across engines: NOT CHECKED (only "
                       f"{', '.join(bests) or 'no engine'} ran; nothing to compare) -> FAIL")
    if all(b is None for b in bests.values()):
        return False, ("best steps-to-result identical across engines: NOT CHECKED (no trial "
                       "of any engine reached the goal; nothing to compare) -> FAIL")
    same = len({json.dumps(b) for b in bests.values()}) == 1
    return same, f"best steps-to-result identical across engines: {'yes' if same else 'NO'}"


def _run_slice(args: argparse.Namespace, names: list[str], root: Path,
               env: dict[str, str]) -> dict[str, dict] | None:
    """Every engine on one slice, each in its own child process; None when one failed."""
    results = {}
    for name in names:
        directory = root / name
        directory.mkdir(parents=True)
        path = _experiment_file(directory, args, ENGINES[name])
        print(f"running {name} (sparsity {args.sparsity:g}) ...", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--child", str(path)], env=env,
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return None
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"  {name}: {r['wall']:.0f} s, best {r['best']}, {r['statuses']}",
              file=sys.stderr, flush=True)
    return results


def _print_slice(args: argparse.Namespace, results: dict[str, dict]) -> bool:
    """The slice's table and checks; False when a check failed."""
    print(f"\nslice: {args.workload}, sparsity {args.sparsity:g}, batch {args.batch_size}, "
          f"{args.trials} trials, budget {args.max_steps} steps, goal {args.goal_error}")
    print(f"{'engine':<10} {'wall s':>9} {'ratio':>7} {'eval share':>11} {'peak MiB':>9}  best "
          "(steps, trial)")
    base = results.get("plain") or results.get("k1") or results.get("fast")
    for name, r in results.items():
        ratio = base["wall"] / r["wall"] if base else float("nan")
        print(f"{name:<10} {r['wall']:>9.1f} {ratio:>6.2f}x {r['eval_share']:>10.1%} "
              f"{r['peak_rss_mb']:>9.0f}  {r['best']}")
    for name, r in results.items():
        steps = sum(t[3] for t in r["trials"])
        complete = sorted(t[2] for t in r["trials"] if t[1] == "complete")
        print(f"  {name}: {steps:,} training steps in all; statuses {r['statuses']}; "
              f"complete steps {complete}")
    ok, verdict = identity_verdict({name: r["best"] for name, r in results.items()})
    print(verdict)
    base = results.get("plain")
    for name in ("fast-off", "fast"):
        # Without stopping (or when it stopped nothing) every trial has its own outcome.
        if base is None or name not in results or (
            name == "fast" and results[name]["statuses"].get("stopped")
        ):
            continue
        same_trials = results[name]["trials"] == base["trials"]
        print(f"per-trial outcomes identical (plain vs {name}): "
              f"{'yes' if same_trials else 'NO'}")
        ok = ok and same_trials
    for name, r in results.items():
        keep = ENGINES[name].get("keep_complete")
        if keep and r["statuses"].get("stopped"):  # stopping kept the K best running
            kept = sum(1 for t in r["trials"] if t[1] == "complete") >= keep
            print(f"  {name}: at least {keep} complete trials: {'yes' if kept else 'NO'}")
            ok = ok and kept
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist-simplecnn-momentum")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--sparsities", help="comma-separated: one slice per sparsity")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--goal-error", type=float, default=0.02)
    parser.add_argument("--threads", type=int, help="torch threads per engine process")
    parser.add_argument("--data-dir", help="directory with the MNIST files")
    parser.add_argument("--prune-biases", action="store_true",
                        help="SNIP ranks biases too, as the authors' code and the reproductions")
    parser.add_argument("--momentum", metavar="LOW,HIGH",
                        help="momentum search range (reverse-log), e.g. 0.9,0.99 as the CPU "
                             "reproduction; default: the workload's")
    parser.add_argument("--engines", default="plain,fast-off,fast")
    parser.add_argument("--keep", help="keep each engine's results under this directory")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return 0
    if args.warm:
        _warm(args.workload, args.data_dir)
        return 0

    names = [n for n in args.engines.split(",") if n]
    sparsities = ([float(x) for x in args.sparsities.split(",")] if args.sparsities
                  else [args.sparsity])
    ok = True
    with tempfile.TemporaryDirectory(prefix="sparsedp-bench-") as scratch:
        tmp = args.keep or scratch
        env = {**os.environ, "SPARSEDP_CACHE_DIR": str(Path(tmp) / "data-cache")}
        warm = [sys.executable, __file__, "--warm", "--workload", args.workload]
        if args.data_dir:
            warm += ["--data-dir", args.data_dir]
        print("warming the data cache (untimed) ...", file=sys.stderr, flush=True)
        subprocess.run(warm, env=env, check=True, capture_output=True, text=True)
        for sparsity in sparsities:
            args.sparsity = sparsity
            results = _run_slice(args, names, Path(tmp) / f"s{sparsity:g}", env)
            if results is None:
                return 1
            ok = _print_slice(args, results) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
