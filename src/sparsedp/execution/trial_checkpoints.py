"""Unfinished trials saved now and then, so that a stopped run continues them where they were.

A worker saves each trial it advances in pieces (:class:`~sparsedp.training.TrialRun`, through
a :class:`~sparsedp.execution.backends.trial_pool.TrialPool`) at most every
``[engine] checkpoint_every`` seconds, between two validation checks, to
``<results>/cache/inflight/`` (written to a temporary file, then renamed: a kill leaves the
last whole save). When a later run starts that trial again, it continues from the save if the
save is of the same trial (study key, trial index, metaparameters, seed) computed the same way
(PyTorch version, device, thread count, precision, layout); otherwise the trial starts
afresh and the save is dropped. A trial's save is deleted when the trial ends. The continued
trial computes exactly what it would have computed without the stop
(:meth:`TrialRun.load_state_dict`); its record lists the steps it was continued from
(``engine.resumed_at``).

Batched trial groups (CUDA) are not saved: they are short, and a stop loses only the group.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sparsedp.execution.provenance import machine_description
from sparsedp.execution.tasks import TrialTask
from sparsedp.training import TrialRun

FORMAT = 1
INFLIGHT = "inflight"  # under a results directory's cache/


@dataclass(frozen=True)
class SavedTrial:
    """An unfinished trial saved mid-run: the next run continues it from ``step``."""

    study_key: str
    trial_index: int
    step: int


def saved_trials(directory: Path) -> list[SavedTrial]:
    """The readable saves under ``directory`` (``<results>/cache/inflight``), in key order."""
    found = []
    for path in sorted(directory.glob("*.pt")) if directory.is_dir() else []:
        try:
            saved = torch.load(path, weights_only=True)
            identity = saved["identity"]
            found.append(SavedTrial(identity["study_key"], int(identity["trial_index"]),
                                    int(saved["state"]["step"])))
        except Exception:  # damaged or half-written by another tool: not a usable save
            continue
    return sorted(found, key=lambda t: (t.study_key, t.trial_index))


def _key(task: TrialTask) -> tuple[str, int]:
    return task.study.key, task.index


class TrialCheckpoints:
    """Saves of this worker's unfinished trials under ``directory`` (None: never saved)."""

    def __init__(self, directory: Path | None, every: float, precision: str = "fp32",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory if every > 0 else None
        self.every = every
        self.precision = precision
        self.clock = clock
        self._last: dict[tuple[str, int], float] = {}
        self._resumed: dict[tuple[str, int], list[int]] = {}
        self._machines: dict[tuple[str, int], list[str]] = {}  # of the segments before those

    def path(self, task: TrialTask) -> Path:
        assert self.directory is not None
        name = hashlib.sha256(f"{task.study.key}|{task.index}".encode()).hexdigest()[:24]
        return self.directory / f"{name}.pt"

    def identity(self, task: TrialTask, run: TrialRun) -> dict[str, Any]:
        """What a save must match to be continued."""
        return {
            "format": FORMAT,
            "study_key": task.study.key,
            "trial_index": task.index,
            "metaparameters": json.dumps(task.point, sort_keys=True),
            "seed": run.config.seed,
            "torch": str(torch.__version__),
            "device": str(run.device),
            "threads": torch.get_num_threads(),
            "precision": self.precision,
            **({"layout": "channels_last"} if run.channels_last else {}),
        }

    def resume(self, task: TrialTask, run: TrialRun) -> int | None:
        """Continue ``run`` from its save, if there is a usable one; the step it continues
        from (None: it starts afresh)."""
        key = _key(task)
        self._last[key] = self.clock()
        self._resumed[key] = []
        self._machines[key] = []
        if self.directory is None or not (path := self.path(task)).exists():
            return None
        try:
            saved = torch.load(path, weights_only=True)
            if saved.get("identity") != self.identity(task, run):
                raise ValueError("a save of another trial or of another way of computing it")
            run.load_state_dict(saved["state"])
        except Exception:  # damaged, foreign or unloadable: this trial starts afresh
            path.unlink(missing_ok=True)
            return None
        self._resumed[key] = [*saved.get("resumed_at", []), run.step]
        machines = [str(m) for m in saved.get("machines", [])]  # none in saves before them
        self._machines[key] = (machines if len(machines) == len(self._resumed[key])
                               else ["not recorded"] * len(self._resumed[key]))
        return run.step

    def resumed_at(self, task: TrialTask) -> list[int]:
        """The steps this trial was continued from (none when it ran in one go)."""
        return list(self._resumed.get(_key(task), []))

    def resumed_on(self, task: TrialTask) -> list[str]:
        """The machine each stretch before a continuation ran on (one per ``resumed_at``
        step; :func:`~sparsedp.execution.provenance.machine_description`): a trial continued
        on another CPU model or instruction set may round differently from one run in one go."""
        return list(self._machines.get(_key(task), []))

    def save_if_due(self, task: TrialTask, run: TrialRun) -> bool:
        """Save the unfinished ``run`` if ``every`` seconds passed since its last save (or
        its start here); True when saved."""
        key = _key(task)
        now = self.clock()
        if self.directory is None or run.done or now - self._last.get(key, now) < self.every:
            return False
        self.save(task, run)
        self._last[key] = now
        return True

    def save(self, task: TrialTask, run: TrialRun) -> None:
        """Write ``run``'s state now (atomically: a kill leaves the previous save)."""
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(task)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"identity": self.identity(task, run), "state": run.state_dict(),
                    "resumed_at": self.resumed_at(task),
                    "machines": [*self.resumed_on(task), machine_description(str(run.device))]},
                   tmp)
        os.replace(tmp, path)

    def discard(self, task: TrialTask) -> None:
        """Forget the trial (it ended): its save is deleted."""
        key = _key(task)
        self._last.pop(key, None)
        self._resumed.pop(key, None)
        self._machines.pop(key, None)
        if self.directory is not None:
            self.path(task).unlink(missing_ok=True)
