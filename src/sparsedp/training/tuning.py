"""Speed settings chosen by measurement on the machine at hand (they never change results).

Measured on the 2-core CPU machines this project runs on (see benchmarks/): evaluating in
channels-last layout at batch 100–250 was about 3× faster than the default layout at batch
1,000, and a batch of 1,024 computed as 4 micro-batches of 256 trained 1.6× faster. The
evaluation choice is re-measured per machine, model and thread count and cached as JSON.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from sparsedp.data.splits import SplitData
from sparsedp.training.batched import BatchedTrials
from sparsedp.training.trainer import EngineSettings
from sparsedp.training.trial_config import TrialConfig

EVAL_BATCH_CANDIDATES = (100, 250, 500, 1000)
CPU_MICRO_BATCH = 256


def default_micro_batch(batch_size: int, device: str) -> int | None:
    """Micro-batch size for large batches: 256 on CPU above 256, none on GPUs."""
    if device.startswith("cuda") or batch_size <= CPU_MICRO_BATCH:
        return None
    return CPU_MICRO_BATCH


def _time_pass(model: nn.Module, x: torch.Tensor, batch_size: int) -> float:
    best = float("inf")
    with torch.inference_mode():
        for _ in range(2):
            started = time.perf_counter()
            for start in range(0, x.shape[0], batch_size):
                model(x[start : start + batch_size]).argmax(dim=1)
            if x.is_cuda:
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - started)
    return best


def measure_eval_settings(
    make_model: Callable[[], nn.Module],
    x: torch.Tensor,
    *,
    cache_file: Path | None = None,
    cache_key: str = "",
    sample: int = 2000,
) -> tuple[bool, int]:
    """(channels_last, eval batch size) with the fastest validation pass on this machine."""
    key = f"{cache_key}|{x.device}|threads={torch.get_num_threads()}|{tuple(x.shape[1:])}"
    cached = _read_cache(cache_file)
    if key in cached:
        return bool(cached[key][0]), int(cached[key][1])
    if x.is_cuda:
        choice = (False, int(x.shape[0]))
    else:
        subset = x[:sample]
        timings = {}
        for channels_last in (False, True):
            model = make_model()
            data = subset
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
                data = subset.contiguous(memory_format=torch.channels_last)
            for batch in EVAL_BATCH_CANDIDATES:
                timings[(channels_last, batch)] = _time_pass(model, data, batch)
        choice = min(timings, key=timings.__getitem__)
    if cache_file is not None:
        cached[key] = list(choice)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=1))
        os.replace(tmp, cache_file)
    return choice


def _read_cache(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


SLOT_CANDIDATES = (4, 8, 16, 32, 64, 128)
"""Group sizes tried when choosing how many trials of a study train at once on a GPU."""


def measure_slots(
    configs: Sequence[TrialConfig],
    data: SplitData,
    engine: EngineSettings,
    *,
    cache_file: Path | None = None,
    cache_key: str = "",
    steps: int = 3,
    candidates: Sequence[int] = SLOT_CANDIDATES,
) -> int:
    """How many of a study's trials to keep live at once: the group size with the most
    trial-steps per second, measured on this device (cached per model, batch size, device).

    Each candidate K (up to the study's trials) times ``steps`` training steps of K dense
    copies (a mask's sparsity does not change the work); it stops at the first K that runs
    out of memory or gains under 10% over the best so far. A smaller K within 5% wins.
    """
    sizes = sorted({k for k in candidates if k < len(configs)} | {len(configs)})
    device = torch.device(engine.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    key = (f"{cache_key}|B={configs[0].batch_size}|{name}|{engine.precision}"
           f"|micro={engine.micro_batch}|max={sizes[-1]}")
    cached = _read_cache(cache_file)
    if key in cached:
        return int(cached[key]["slots"])
    dense = [replace(c, sparsity=0.0) for c in configs[: sizes[-1]]]
    rates: dict[int, float] = {}
    best = sizes[0]
    for k in sizes:
        try:
            seconds = BatchedTrials(dense[:k], data, engine=engine, slots=k).time_steps(steps)
        except torch.OutOfMemoryError:
            break
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        rates[k] = k * steps / seconds
        if rates[k] > rates[best] * 1.05:
            best = k
        if k > best and rates[k] < rates[best] * 1.10:
            break
    if cache_file is not None:
        cached[key] = {"slots": best, "trial_steps_per_second": rates}
        _write_cache(cache_file, cached)
    return best


def _write_cache(path: Path, cached: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cached, indent=1))
    os.replace(tmp, path)
