"""GPU training throughput: trials one at a time versus a batched group of K trials.

For Simple-CNN (MNIST) and ResNet-8 (CIFAR-10), sparsity 0 and 0.9, batch sizes 16 … 8192,
it times training steps (no validation checks) of

- ``sequential``: one trial at a time (:class:`TrialRun`: batches gathered on the host, the
  loss read every step), the engine sparsedp used before issue 13;
- ``seq-cl`` (with ``--channels-last``): the same, trained in the channels-last layout
  (``[engine] channels_last``; on CPU 1.22x a ResNet-8 step, docs/engine.md);
- ``K=…``: K trials of one study as one batched group (:class:`BatchedTrials`: data and
  batch order on the GPU, no host reads between checks), K = 1, 4, 16, 64, 128;

and prints trial-steps/s, training samples/s (trial-steps/s × batch size), the ratio of each
to sequential, the fraction of time the GPU was busy (NVML's utilisation, sampled every
20 ms over the timed window) and, per row, the training FLOP rate: FLOPs counted by
``torch.utils.flop_counter`` for one example's forward and backward pass (convolutions and
matrix products; the counter's own count), times samples/s. The FP32 peak it is compared
with is measured here: an 8192³ FP32 matrix product with TF32 off. Masks are magnitude masks
(the work is the same for any mask: pruned weights are multiplied by zero, not skipped).

A configuration whose step would exceed ``--max-step-tflop`` of work is skipped (printed
as such) to keep the whole run inside a few minutes.

    python benchmarks/gpu_throughput.py --data-dir ../shared/data --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import torch

from sparsedp.data.sources import load_dataset
from sparsedp.data.splits import SplitData, prepare_splits
from sparsedp.models import build_model
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training.batched import BatchedTrials
from sparsedp.training.trainer import EngineSettings, TrialRun
from sparsedp.training.trial_config import TrialConfig

MODELS = {"simple-cnn": ("mnist-simplecnn-momentum", "mnist"),
          "resnet-8": ("cifar10-resnet8-nesterov", "cifar10")}
BATCH_SIZES = (16, 64, 256, 1024, 8192)
GROUPS = (1, 4, 16, 64, 128)
SPARSITIES = (0.0, 0.9)


class BusySampler:
    """Mean NVML GPU utilisation over a window (None where NVML is not available)."""

    def __init__(self, device: int = 0) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device)
            self._read = lambda: pynvml.nvmlDeviceGetUtilizationRates(self._handle).gpu
        except Exception:  # no NVML: report n/a
            self._read = None
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BusySampler:
        if self._read is not None:
            self._samples, self._stop = [], threading.Event()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._samples.append(self._read())

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    @property
    def busy(self) -> float | None:
        return statistics.fmean(self._samples) / 100 if self._samples else None


def configs(workload: str, sparsity: float, batch_size: int, k: int) -> list[TrialConfig]:
    """K trials of one study with different learning rates, momenta and seeds (and, for a
    workload with linear decay, decay over 10,000 steps to a tenth)."""
    decay = {"decay_steps": 10_000, "end_lr_factor": 0.1}
    return [TrialConfig(workload, sparsity, batch_size, lr=0.002 * (1 + i % 4),
                        momentum=0.8 + 0.05 * (i % 3), seed=i, max_steps=10**6,
                        pruning=PruneSettings(method="magnitude"), **decay) for i in range(k)]


def train_flops_per_example(workload: str, data: SplitData) -> float:
    """FLOPs of one example's forward and backward pass, as torch's flop counter counts."""
    from torch.utils.flop_counter import FlopCounterMode

    config = configs(workload, 0.0, 1, 1)[0]
    channels, size, _ = data.image_shape
    model = build_model(config.spec.model, channels=channels, image_size=size,
                        num_classes=data.num_classes, seed=0, **dict(config.spec.model_options))
    x = torch.randn(64, channels, size, size)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(64, dtype=torch.long)).backward()
    return counter.get_total_flops() / 64


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def fp32_peak(device: str) -> float:
    """FLOP/s of an 8192³ FP32 matrix product, TF32 off (median of 10 after warm-up;
    1024³ for a CPU dry run)."""
    n = 8192 if device.startswith("cuda") else 1024
    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    times = []
    for _ in range(10):
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def timed(step_fn, target_seconds: float) -> tuple[float, int, float | None]:
    """(seconds, steps, busy) of a window of about ``target_seconds`` of ``step_fn(n)``."""
    one = step_fn(1)  # warm-up and a first estimate (step_fn returns its own seconds)
    steps = max(2, min(200, int(target_seconds / max(one, 1e-4))))
    with BusySampler() as sampler:
        seconds = step_fn(steps)
    return seconds, steps, sampler.busy


def sequential_step_fn(config: TrialConfig, data: SplitData, engine: EngineSettings):
    run = TrialRun(config, data, engine=engine)

    def step(n: int) -> float:
        sync(engine.device)
        start = time.perf_counter()
        run.train_only(n)
        sync(engine.device)
        return time.perf_counter() - start

    return step


def batched_step_fn(group: list[TrialConfig], data: SplitData, engine: EngineSettings):
    run = BatchedTrials(group, data, engine=engine, slots=len(group))
    return run.time_steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(BATCH_SIZES))
    parser.add_argument("--groups", nargs="+", type=int, default=list(GROUPS))
    parser.add_argument("--sparsities", nargs="+", type=float, default=list(SPARSITIES))
    parser.add_argument("--seconds", type=float, default=0.4, help="timed window per row")
    parser.add_argument("--max-step-tflop", type=float, default=40.0)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "bf16"))
    parser.add_argument("--channels-last", action="store_true",
                        help="also time one trial at a time in the channels-last layout")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script")
    args = parser.parse_args()
    device = args.device
    if args.data_dir:
        os.environ["SPARSEDP_DATA_DIR"] = str(args.data_dir)  # a folder holding the data sets
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device: this benchmark measures a GPU (--device cpu for a dry "
              "run)", file=sys.stderr)
        return 2
    engine = EngineSettings(device=device, precision=args.precision)
    peak = fp32_peak(device)
    device_name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    print(f"device: {device_name}  torch {torch.__version__}  "
          f"precision {args.precision}  FP32 peak (8192³ matmul, TF32 off): {peak / 1e12:.1f} "
          "TFLOP/s", flush=True)
    rows = []
    header = (f"{'model':<10} {'s':>3} {'B':>5} {'engine':>10} {'trial-steps/s':>13} "
              f"{'samples/s':>11} {'× seq':>7} {'busy':>5} {'TFLOP/s':>8} {'peak/x':>7}")
    for name in args.models:
        workload, dataset = MODELS[name]
        started = time.perf_counter()
        data = prepare_splits(load_dataset(dataset))  # found under SPARSEDP_DATA_DIR
        flops = train_flops_per_example(workload, data)
        print(f"\n{name}: {flops / 1e6:.2f} MFLOP per example (forward + backward); data "
              f"loaded in {time.perf_counter() - started:.1f} s", flush=True)
        print(header, flush=True)
        for sparsity in args.sparsities:
            for batch_size in args.batch_sizes:
                base = configs(workload, sparsity, batch_size, max(args.groups))
                seq_rate = None
                labels = ["sequential", *(["seq-cl"] if args.channels_last else []),
                          *[f"K={k}" for k in args.groups]]
                for label in labels:
                    k = int(label[2:]) if label.startswith("K=") else 1
                    step_tflop = k * batch_size * flops / 1e12
                    if step_tflop > args.max_step_tflop:
                        print(f"{name:<10} {sparsity:>3g} {batch_size:>5} {label:>10} "
                              f"skipped: {step_tflop:.0f} TFLOP a step", flush=True)
                        continue
                    try:
                        if label == "sequential":
                            step_fn = sequential_step_fn(base[0], data, engine)
                        elif label == "seq-cl":
                            step_fn = sequential_step_fn(base[0], data, replace(
                                engine, channels_last=True, train_channels_last=True))
                        else:
                            step_fn = batched_step_fn(base[:k], data, engine)
                        seconds, steps, busy = timed(step_fn, args.seconds)
                    except torch.OutOfMemoryError:
                        print(f"{name:<10} {sparsity:>3g} {batch_size:>5} {label:>10} "
                              "out of memory", flush=True)
                        continue
                    finally:
                        step_fn = None
                        if device.startswith("cuda"):
                            torch.cuda.empty_cache()
                    rate = k * steps / seconds
                    if label == "sequential":
                        seq_rate = rate
                    ratio = rate / seq_rate if seq_rate else float("nan")
                    achieved = rate * batch_size * flops
                    row = {"model": name, "sparsity": sparsity, "batch_size": batch_size,
                           "engine": label, "trials": k, "steps": steps, "seconds": seconds,
                           "trial_steps_per_second": rate,
                           "samples_per_second": rate * batch_size,
                           "ratio_to_sequential": ratio, "gpu_busy": busy,
                           "train_flop_per_second": achieved, "fp32_peak": peak,
                           "flops_per_example": flops}
                    rows.append(row)
                    busy_text = f"{busy:5.2f}" if busy is not None else "  n/a"
                    print(f"{name:<10} {sparsity:>3g} {batch_size:>5} {label:>10} "
                          f"{rate:13.1f} {rate * batch_size:11.0f} {ratio:7.1f} {busy_text} "
                          f"{achieved / 1e12:8.2f} {peak / achieved:7.2f}", flush=True)
        del data
    if args.json:
        args.json.write_text(json.dumps({"device": device_name,
                                         "torch": torch.__version__, "fp32_peak": peak,
                                         "precision": args.precision, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
