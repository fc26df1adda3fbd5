"""An experiment: the grid of studies (workloads × sparsities × batch sizes) and its settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsedp.plugins import PluginSet
from sparsedp.pruning.prune import PruneSettings
from sparsedp.search.refine import REFINE_BASE
from sparsedp.search.space import Dimension
from sparsedp.specs.engine import EngineOptions
from sparsedp.specs.refine import RefineOptions
from sparsedp.specs.study import StudySpec
from sparsedp.specs.values import is_int, resolve_against
from sparsedp.training.workloads import get_workload


@dataclass(frozen=True)
class StudyDefaults:
    """The per-study options an experiment file sets for all of its studies.

    ``search`` maps a metaparameter name to the :class:`Dimension` replacing its default
    range; each study keeps the overrides its workload searches.
    """

    goal_error: float | None = None
    max_steps: int | None = None
    eval_every: int | None = None
    hidden_units: int = 0
    pruning: PruneSettings = field(default_factory=PruneSettings)
    search: Mapping[str, Dimension] = field(default_factory=dict, hash=False)
    seed: int = 0
    data_seed: int = 0
    sequence: str = "joe-kuo"
    integer_mapping: str = "round"


@dataclass(frozen=True)
class ExperimentSpec:
    """A grid of studies (workloads × sparsities × batch sizes) and how to run it.

    ``results_dir`` defaults to ``<TOML dir>/results/<name>``; relative ``results_dir`` and
    ``data_dir`` resolve against the TOML file's directory.
    """

    name: str
    path: Path
    workloads: tuple[str, ...]
    sparsities: tuple[float, ...]
    batch_sizes: tuple[int, ...]
    trials: int = 100
    results_dir: Path = None  # type: ignore[assignment]  # set in __post_init__
    workers: int = 1
    data_dir: Path | None = None
    study_defaults: StudyDefaults = field(default_factory=StudyDefaults)
    engine: EngineOptions = field(default_factory=EngineOptions)
    plugins: PluginSet = field(default_factory=PluginSet)
    refine: RefineOptions | None = None  # a refinement stage after each study's search
    train_examples: tuple[int | None, ...] = (None,)  # training-set sizes (None: all)

    def __post_init__(self) -> None:
        path = Path(self.path)
        base = path.parent
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "workloads", tuple(self.workloads))
        object.__setattr__(self, "sparsities", tuple(float(s) for s in self.sparsities))
        object.__setattr__(self, "batch_sizes", tuple(self.batch_sizes))
        object.__setattr__(self, "train_examples", tuple(self.train_examples) or (None,))
        results = self.results_dir if self.results_dir is not None else Path("results") / self.name
        object.__setattr__(self, "results_dir", resolve_against(base, results))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", resolve_against(base, self.data_dir))
        if not (self.workloads and self.sparsities and self.batch_sizes):
            raise ValueError("an experiment needs at least one workload, sparsity and batch size")
        if not is_int(self.trials) or self.trials < 1:
            raise ValueError(f"trials must be a whole number >= 1, got {self.trials!r}")
        if not is_int(self.workers) or self.workers < 1:
            raise ValueError(f"workers must be a whole number >= 1, got {self.workers!r}")
        if self.trials >= REFINE_BASE:
            raise ValueError(f"trials must be below {REFINE_BASE}, got {self.trials}")
        if self.refine is not None and self.engine.stop_hopeless and \
                self.refine.around > self.engine.keep_complete:
            raise ValueError(f"[refine] around = {self.refine.around} needs [engine] "
                             f"keep_complete >= {self.refine.around}: the trials it centres on "
                             "must run to their result")

    def studies(self) -> list[StudySpec]:
        """Every study of the grid, ordered workloads × training-set sizes × sparsities ×
        batch sizes."""
        d = self.study_defaults
        out = []
        for workload in self.workloads:
            searched = get_workload(workload).searched
            overrides = tuple(dim for name, dim in d.search.items() if name in searched)
            for size in self.train_examples:
                for sparsity in self.sparsities:
                    for batch_size in self.batch_sizes:
                        out.append(
                            StudySpec(
                                workload=workload,
                                sparsity=sparsity,
                                batch_size=batch_size,
                                goal_error=d.goal_error,
                                max_steps=d.max_steps,
                                eval_every=d.eval_every,
                                hidden_units=d.hidden_units,
                                pruning=get_workload(workload).pruning or d.pruning,
                                search=overrides or None,
                                seed=d.seed,
                                data_seed=d.data_seed,
                                sequence=d.sequence,
                                integer_mapping=d.integer_mapping,
                                precision=self.engine.precision,
                                train_examples=size,
                            )
                        )
        return out

    def to_dict(self) -> dict[str, Any]:
        """All settings, JSON-ready (paths as strings), for display and storage."""
        d = self.study_defaults
        defaults = {
            "goal_error": d.goal_error,
            "max_steps": d.max_steps,
            "eval_every": d.eval_every,
            "hidden_units": d.hidden_units,
            "pruning": dataclasses.asdict(d.pruning),
            "search": {name: dataclasses.asdict(dim) for name, dim in d.search.items()},
            "seed": d.seed,
            "data_seed": d.data_seed,
            "sequence": d.sequence,
            "integer_mapping": d.integer_mapping,
        }
        out = {
            "name": self.name,
            "path": str(self.path),
            "workloads": list(self.workloads),
            "sparsities": list(self.sparsities),
            "batch_sizes": list(self.batch_sizes),
            "trials": self.trials,
            "results_dir": str(self.results_dir),
            "workers": self.workers,
            "data_dir": None if self.data_dir is None else str(self.data_dir),
            "study_defaults": defaults,
            "engine": dataclasses.asdict(self.engine),
        }
        if self.refine is not None:
            out["refine"] = dataclasses.asdict(self.refine)
        if self.train_examples != (None,):
            out["train_examples"] = list(self.train_examples)
        p = self.plugins
        if p.modules or p.workloads or p.datasets:
            out["plugins"] = {
                "modules": list(p.modules),
                "workloads": {w.name: w.definition() for w in p.workloads},
                "datasets": {d.name: {"loader": repr(d.loader), "version": d.version}
                             for d in p.datasets},
            }
        return out

