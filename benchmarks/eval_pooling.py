"""Validation-check speed on CPU with the three ways Simple-CNN's pooling has worked, side by side.

A check evaluates the validation split without gradients. Its pooling was PyTorch's
channels-first ``max_pool2d`` (*plain*), then the channels-last kernel with the layout
converted there and back (*channels-last*, before 2026-11-22), and is now the elementwise
maximum of the four strided window corners (*corners*). All three give the same logits
(tests/test_fast_step.py). They are timed in one process, alternating in rounds, so load from
other processes hits all alike; rates are per second of this process's CPU time and of wall
time.

    python benchmarks/eval_pooling.py --rounds 5 --threads 1
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from sparsedp.data.sources import load_dataset
from sparsedp.data.splits import prepare_splits
from sparsedp.models import simple_cnn
from sparsedp.models.simple_cnn import SimpleCNN


def default_data_dir() -> Path | None:
    """$SPARSEDP_TEST_DATA, else ../shared/data beside the clone, else None (default search)."""
    env = os.environ.get("SPARSEDP_TEST_DATA")
    candidate = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return candidate if (candidate / "mnist").is_dir() else None


def channels_last_pool(x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """The no-gradient pooling before 2026-11-22: convert, pool channels-last, convert back."""
    return F.max_pool2d(x.contiguous(memory_format=torch.channels_last), 2, 2).contiguous()


def check_seconds(model: SimpleCNN, images: torch.Tensor, batch: int) -> tuple[float, float]:
    """(CPU, wall) seconds of one pass over ``images`` in batches of ``batch``."""
    cpu, wall = time.process_time(), time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(images), batch):
            model(images[start:start + batch])
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-batch-size", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = prepare_splits(load_dataset("mnist", default_data_dir()))
    images = splits.validation()[0]
    model = SimpleCNN().eval()
    corners = simple_cnn.pool2x2
    ways = {
        "plain": (False, corners),
        "channels-last": (True, channels_last_pool),
        "corners": (True, corners),
    }
    cpu = dict.fromkeys(ways, 0.0)
    wall = dict.fromkeys(ways, 0.0)
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for name, (flag, pool) in ways.items():
            model.channels_last_pool = flag
            simple_cnn.pool2x2 = pool
            try:
                c, w = check_seconds(model, images, args.eval_batch_size)
            finally:
                simple_cnn.pool2x2 = corners
            if round_:
                cpu[name] += c
                wall[name] += w
    print(f"validation check: {len(images)} MNIST images, batches of {args.eval_batch_size}, "
          f"{args.threads} thread(s), {args.rounds} alternating rounds")
    print(f"{'pooling':>14} {'checks/cpu-s':>13} {'checks/s':>9} {'corners faster':>15}")
    for name in ways:
        print(f"{name:>14} {args.rounds / cpu[name]:>13.2f} {args.rounds / wall[name]:>9.2f} "
              f"{cpu[name] / cpu['corners']:>14.2f}x")


if __name__ == "__main__":
    main()
