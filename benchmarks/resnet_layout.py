"""ResNet-8 on CPU: explicit SAME padding (before 2026-12-03) vs padding inside the stride-1
convolutions (now) vs channels-last training (``[engine] channels_last = true``).

Three real W3 trials (CIFAR-10 JPEG copy, SNIP-pruned as the workload says, one set of
metaparameters) are built alike and trained side by side, in turns of ``--steps`` steps so
that the machine's load falls on all three alike; then each makes full validation passes.
Prints the median time of a step and of a check, with the ratios against "before", and
whether "before" and "now" trained bit for bit alike (they must: the padding is the same).

    python benchmarks/resnet_layout.py --sparsity 0.9 --batch-size 64 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from micro_batch import default_data_dir  # the sibling script's (benchmarks/ is on sys.path)
from sparsedp.data.sources import load_dataset
from sparsedp.data.splits import prepare_splits
from sparsedp.models.resnet import SameConv2d, _same_padding
from sparsedp.training.evaluation import Evaluator
from sparsedp.training.trainer import EngineSettings, TrialRun
from sparsedp.training.trial_config import TrialConfig


def explicit_padding(conv: SameConv2d):
    """The forward of SameConv2d before 2026-12-03: pad by hand, then convolve unpadded."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        pad_h = _same_padding(x.shape[-2], 3, conv.stride[0])
        pad_w = _same_padding(x.shape[-1], 3, conv.stride[1])
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return F.conv2d(x, conv.weight, conv.bias, conv.stride)

    return forward


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="steps per turn")
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--checks", type=int, default=3, help="full validation passes each")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir("cifar10-jpeg"))
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("no CIFAR-10 copy found: give --data-dir")
    torch.set_num_threads(args.threads)
    data = prepare_splits(load_dataset("cifar10", args.data_dir))
    # trial 2 of the W3 search (the pilot in reproduction/w3-resnet8-cpu.plan.txt)
    config = TrialConfig("cifar10-resnet8-nesterov", args.sparsity, args.batch_size, 0.001,
                         momentum=0.9822, decay_steps=37500, end_lr_factor=0.01778)
    plain = EngineSettings(eval_batch_size=1000)
    runs = {
        "before": TrialRun(config, data, engine=plain),
        "now": TrialRun(config, data, engine=plain),
        "channels-last": TrialRun(config, data, engine=EngineSettings(
            eval_batch_size=1000, channels_last=True, train_channels_last=True)),
    }
    for conv in runs["before"].model.modules():
        if isinstance(conv, SameConv2d):
            conv.forward = explicit_padding(conv)
    step_times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up
        run.train_only(2)
    for _ in range(args.turns):
        for name, run in runs.items():
            started = time.perf_counter()
            run.train_only(args.steps)
            step_times[name].append((time.perf_counter() - started) / args.steps)
    x, y = data.validation()
    check_times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.checks):
        for name, run in runs.items():
            evaluator = Evaluator(x, y, 0.4, batch_size=1000, channels_last=run.channels_last)
            started = time.perf_counter()
            evaluator(run.model)
            check_times[name].append(time.perf_counter() - started)
    steps = 2 + args.turns * args.steps
    print(f"ResNet-8, sparsity {args.sparsity:g}, B = {args.batch_size}, {args.threads} "
          f"thread(s), {steps} steps each; check = full pass over {len(y):,} examples")
    print(f"{'engine':<15}{'step ms':>9}{'x before':>10}{'check s':>9}{'x before':>10}")
    base_step = statistics.median(step_times["before"])
    base_check = min(check_times["before"])
    for name in runs:
        step, check = statistics.median(step_times[name]), min(check_times[name])
        print(f"{name:<15}{step * 1e3:>9.1f}{base_step / step:>10.2f}{check:>9.2f}"
              f"{base_check / check:>10.2f}")
    pairs = list(zip(runs["before"].model.parameters(), runs["now"].model.parameters(),
                     strict=True))
    same = all(torch.equal(a, b) for a, b in pairs)
    print(f"before vs now after {steps} steps: {'bit-identical' if same else 'DIFFERENT'}")
    gap = max(float((a - b).detach().abs().max()) for a, b in zip(
        runs["now"].model.parameters(), runs["channels-last"].model.parameters(), strict=True))
    print(f"channels-last vs now after {steps} steps: largest weight difference {gap:.1e}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
