"""Provenance of results: versions, git commit, host and device."""

from __future__ import annotations

import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

from sparsedp.version import __version__


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the sparsedp checkout, when run from one (with '+dirty' if modified)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def device_description(device: str) -> str:
    """Human description of the compute device."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


@lru_cache(maxsize=4)
def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name with its family, model and stepping numbers (``/proc/cpuinfo`` on
    Linux: a virtual machine's name can be generic, the numbers still tell generations
    apart), else what ``platform`` says."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():  # the first processor's block ends here
                break
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    numbers = [f"{label} {fields[key]}" for key, label in
               (("cpu family", "family"), ("model", "model"), ("stepping", "stepping"))
               if fields.get(key)]
    return f"{name}, {' '.join(numbers)}" if numbers else name


def cpu_capability() -> str | None:
    """The instruction set PyTorch's CPU kernels dispatch to (e.g. ``AVX512``, ``AVX2``)."""
    get = getattr(torch.backends.cpu, "get_cpu_capability", None)
    return get() if get is not None else None


def machine_description(device: str) -> str:
    """What computes a trial, as far as it decides FP32 rounding: the GPU's name, or the
    CPU's model with the instruction set PyTorch uses (two CPUs can round differently)."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return device_description(device)  # the GPU's name
    capability = cpu_capability()
    return f"{cpu_model()} ({capability})" if capability else cpu_model()


def provenance(device: str = "cpu") -> dict[str, str | None]:
    """Versions and machine facts stored with every trial."""
    return {
        "sparsedp": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "device": device_description(device),
        "cpu": cpu_model(),
        "cpu_capability": cpu_capability(),
    }
