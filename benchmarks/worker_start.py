"""A local worker's start-up imports: the light CLI entry module against the earlier one.

``sparsedp run`` starts its workers with multiprocessing's spawn, which first runs the main
module again in the new process (the ``sparsedp`` console script, as ``__mp_main__``), then
imports the worker's own code. Since 2026-12-03 ``sparsedp.cli.main`` imports nothing heavier
than argparse at the top; before, it imported every command module (and so pandas, scipy,
matplotlib, rich, the report and the API). Each round, side by side in fresh interpreters:

- *now*: the console script run as ``__mp_main__``, then the worker module;
- *before*: the same, plus every command module (building the parser imports exactly the
  modules the earlier top level imported).

Prints the median wall time of each over ``--rounds`` and the ratio before / now.

    python benchmarks/worker_start.py --rounds 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

_NOW = """
import runpy, sys
runpy.run_path({script!r}, run_name="__mp_main__")
import sparsedp.execution.backends.worker
"""
_BEFORE = _NOW + """
import sparsedp.cli.main
sparsedp.cli.main.build_parser()
"""


def _seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    script = shutil.which("sparsedp")
    if script is None:
        sys.exit("the `sparsedp` console script is not on PATH: install the package first")
    now_code, before_code = _NOW.format(script=script), _BEFORE.format(script=script)
    _seconds(now_code)  # warm the file cache once
    now, before = [], []
    for _ in range(args.rounds):  # alternate, so load changes hit both alike
        now.append(_seconds(now_code))
        before.append(_seconds(before_code))
    a, b = statistics.median(now), statistics.median(before)
    print(f"worker start-up imports, median of {args.rounds}: now {a:.2f} s, "
          f"before {b:.2f} s, before / now {b / a:.2f}x")


if __name__ == "__main__":
    main()
