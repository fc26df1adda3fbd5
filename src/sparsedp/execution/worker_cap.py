"""How many local workers a run starts: what it asks for, capped by the trials to run, the
CPUs and the memory (docs/engine.md, "How many workers").

A worker process beyond the trials to run would only load the data and wait; beyond the CPUs
(or memory) workers slow each other down (or the machine swaps and the kernel kills one), so
the run starts fewer and says so in one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WORKER_MEMORY_MIB = 700
"""Memory one local worker needs (MiB): the peak resident memory of a Simple-CNN MNIST worker
(`sparsedp plan` reports about 690 MiB: Python, torch, the memory-mapped data and the largest
batch); ``$SPARSEDP_WORKER_MEMORY_MIB`` sets another figure (e.g. ResNet-8 on CIFAR-10)."""


@dataclass(frozen=True)
class WorkerCap:
    """The workers asked for, the number started, and why fewer (``""``: not capped)."""

    requested: int
    used: int
    reason: str = ""

    @property
    def message(self) -> str:
        """One line for the user, e.g. ``workers: 4 asked, 1 used (1 trial to run)``."""
        return f"workers: {self.requested} asked, {self.used} used ({self.reason})"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def available_memory_mib(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    """Memory available to new processes (``MemAvailable``), or None where not known."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def worker_memory_mib() -> float:
    """The memory budgeted per worker: ``$SPARSEDP_WORKER_MEMORY_MIB`` or
    :data:`WORKER_MEMORY_MIB` (a bad value is ignored)."""
    text = os.environ.get("SPARSEDP_WORKER_MEMORY_MIB", "")
    try:
        value = float(text)
    except ValueError:
        return WORKER_MEMORY_MIB
    return value if value > 0 else WORKER_MEMORY_MIB


def worker_threads(threads: int | None, workers: int, cpus: int | None = None) -> int | None:
    """Torch threads per local worker process: ``threads`` when set; with several workers and
    none set, an equal share of the CPUs (at least 1), so that the workers together use each
    CPU once (torch's own default, every CPU in every process, oversubscribes them: threads
    wait on descheduled siblings); one worker keeps torch's default (None)."""
    if threads is not None or workers <= 1:
        return threads
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, cpus // workers)


def cap_workers(requested: int, trials: int, *, threads: int | None = None,
                local: bool = True, cpus: int | None = None,
                memory_mib: float | None = None, per_worker_mib: float | None = None
                ) -> WorkerCap:
    """``requested`` workers capped by the ``trials`` to run and, for local workers, by the
    CPUs (each worker uses ``threads`` of them, default 1) and the available memory
    (``per_worker_mib`` each). Ray workers are capped by the trials only: the cluster's
    scheduler places them by the CPUs and memory of its nodes. ``cpus`` and ``memory_mib``
    default to this machine's."""
    limits: list[tuple[int, str]] = [
        (max(1, trials), f"{trials} trial{'' if trials == 1 else 's'} to run")]
    if local:
        cpus = usable_cpus() if cpus is None else cpus
        per_cpu = max(1, threads or 1)
        thread_note = f" at {per_cpu} threads each" if per_cpu > 1 else ""
        limits.append((max(1, cpus // per_cpu), f"{cpus} CPU{'' if cpus == 1 else 's'}"
                                                 f"{thread_note}"))
        memory = available_memory_mib() if memory_mib is None else memory_mib
        if memory is not None:
            each = per_worker_mib or worker_memory_mib()
            limits.append((max(1, int(memory // each)),
                           f"{memory:,.0f} MiB of memory available at ~{each:,.0f} MiB per "
                           "worker"))
    used = min([requested, *(n for n, _ in limits)])
    if used >= requested:
        return WorkerCap(requested, requested)
    why = "; ".join(text for n, text in limits if n == used)
    return WorkerCap(requested, used, why)
