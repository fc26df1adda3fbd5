"""A study: one cell of the experiment grid, everything that affects its results, its key.

An *experiment* is a grid of *studies* (workload × sparsity × batch size); each study is a
quasi-random search of *trials*. :class:`StudySpec` holds everything that affects a study's
results (its :attr:`StudySpec.key` names it on disk); :class:`EngineOptions` holds how the
work is computed, which never changes a result; :class:`ExperimentSpec` ties both to a grid.
"""


from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sparsedp.config import config_hash
from sparsedp.pruning.prune import PruneSettings, check_sparsity
from sparsedp.search.space import DEFAULT_DIMENSIONS, Dimension, SearchSpace
from sparsedp.specs.values import is_int, is_number
from sparsedp.training.parts import study_parts
from sparsedp.training.precision import PRECISIONS
from sparsedp.training.trial_config import TrialConfig
from sparsedp.training.workloads import METAPARAMETERS, get_workload

SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class StudySpec:
    """Everything that affects one study's results: one cell of the experiment grid.

    ``goal_error``, ``max_steps`` and ``eval_every`` fall back to the workload's values when
    ``None``. ``search`` holds only the dimensions that differ from
    :data:`~sparsedp.search.DEFAULT_DIMENSIONS` (``None``: the default space); it is
    normalised on construction, so spelling out a default range never renames a study.
    ``sequence`` and ``integer_mapping`` (see :class:`SearchSpace`) fall back to their
    defaults where they cannot change the points (fewer than 3 searched dimensions, no
    integer dimension), so they rename only studies whose trials they change. ``parts`` is
    computed: the identity (definition, versions) of the study's parts that are not built in
    (:func:`~sparsedp.training.parts.study_parts`), empty for the paper's workloads.
    """

    workload: str
    sparsity: float
    batch_size: int
    goal_error: float | None = None
    max_steps: int | None = None
    eval_every: int | None = None
    hidden_units: int = 0
    pruning: PruneSettings = field(default_factory=PruneSettings)
    search: tuple[Dimension, ...] | None = None
    seed: int = 0
    data_seed: int = 0
    sequence: str = "joe-kuo"
    integer_mapping: str = "round"
    parts: tuple[tuple[str, str], ...] = ()
    precision: str = "fp32"  # "tf32"/"bf16" change numerics: a study of their own
    train_examples: int | None = None  # the first N of the training split; None: all of it

    def __post_init__(self) -> None:
        spec = get_workload(self.workload)
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use one of "
                             f"{', '.join(PRECISIONS)}")
        check_sparsity(self.sparsity)
        object.__setattr__(self, "sparsity", float(self.sparsity))
        if not is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"batch size must be a whole number >= 1, got {self.batch_size!r}")
        if self.goal_error is not None:
            if not is_number(self.goal_error) or not 0 < self.goal_error < 1:
                raise ValueError(f"goal error must be in (0, 1), got {self.goal_error!r}")
            object.__setattr__(self, "goal_error", float(self.goal_error))
        for label, value in (("max_steps", self.max_steps), ("eval_every", self.eval_every)):
            if value is not None and (not is_int(value) or value < 1):
                raise ValueError(f"{label} must be a whole number >= 1, got {value!r}")
        if not is_int(self.hidden_units) or self.hidden_units < 0:
            raise ValueError(f"hidden_units must be a whole number >= 0, got {self.hidden_units!r}")
        if self.hidden_units and spec.model != "simple-cnn":
            raise ValueError(f"hidden_units applies to simple-cnn only, not {spec.model}")
        for label, value in (("seed", self.seed), ("data_seed", self.data_seed)):
            if not is_int(value) or value < 0:
                raise ValueError(f"{label} must be a whole number >= 0, got {value!r}")
        if self.train_examples is not None and (not is_int(self.train_examples)
                                                or self.train_examples < 1):
            raise ValueError(f"train_examples must be a whole number >= 1, got "
                             f"{self.train_examples!r}")
        if not isinstance(self.pruning, PruneSettings):
            raise ValueError(f"pruning must be PruneSettings, got {type(self.pruning).__name__}")
        object.__setattr__(self, "parts", study_parts(self.workload, self.pruning.method))
        object.__setattr__(self, "search", self._normalised_search(spec.searched))
        space = SearchSpace.for_workload(
            self.workload, {d.name: d for d in self.search or ()}, self.sequence,
            self.integer_mapping,
        )  # validates both options
        if not space.uses_sequence:
            object.__setattr__(self, "sequence", "joe-kuo")
        if not space.uses_integer_mapping:
            object.__setattr__(self, "integer_mapping", "round")

    def _normalised_search(self, searched: tuple[str, ...]) -> tuple[Dimension, ...] | None:
        if self.search is None:
            return None
        dims = self.search.values() if isinstance(self.search, Mapping) else self.search
        overrides: dict[str, Dimension] = {}
        for dim in dims:
            if not isinstance(dim, Dimension):
                raise ValueError(f"search entries must be Dimension, got {dim!r}")
            if dim.name in overrides:
                raise ValueError(f"search overrides {dim.name!r} twice")
            overrides[dim.name] = dim
        SearchSpace.for_workload(self.workload, overrides)  # rejects unsearched names
        kept = tuple(
            overrides[name]
            for name in searched
            if name in overrides and overrides[name] != DEFAULT_DIMENSIONS[name]
        )
        return kept or None

    @property
    def key(self) -> str:
        """Content hash naming the study; fields at their defaults are left out, so options
        added later (with defaults) never rename existing studies."""
        return config_hash(self)

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``mnist-simplecnn-momentum s=0.9 B=128`` (with
        `` n=6000`` after the workload when it trains on the first 6,000 examples)."""
        size = f" n={self.train_examples}" if self.train_examples is not None else ""
        return f"{self.workload}{size} s={self.sparsity:g} B={self.batch_size}"

    def space(self) -> SearchSpace:
        """The study's search space: the workload's defaults with ``search`` applied."""
        overrides = {d.name: d for d in self.search or ()}
        return SearchSpace.for_workload(
            self.workload, overrides, self.sequence, self.integer_mapping
        )

    def trial_seed(self, index: int) -> int:
        """Seed of trial ``index``: ``seed * 1_000_003 + index``.

        Trial ``i``'s model initialisation, and so its SNIP mask saliency, come from this
        seed. It depends on neither sparsity nor batch size, so trial ``i`` of every study
        in a column (same workload and seed) starts from the same weights and saliency.
        """
        if not is_int(index) or index < 0:
            raise ValueError(f"trial index must be a whole number >= 0, got {index!r}")
        return self.seed * SEED_STRIDE + index

    def trial_config(self, index: int, point: Mapping[str, float | int]) -> TrialConfig:
        """Trial ``index`` at search ``point``: the point's metaparameters plus the study's
        options. Every trial of a study shares ``data_seed``, so sees the same batches."""
        unknown = sorted(set(point) - set(METAPARAMETERS))
        if unknown:
            raise ValueError(f"unknown metaparameters in search point: {', '.join(unknown)}")
        return TrialConfig(
            workload=self.workload,
            sparsity=self.sparsity,
            batch_size=self.batch_size,
            **dict(point),  # type: ignore[arg-type]
            seed=self.trial_seed(index),
            data_seed=self.data_seed,
            goal_error=self.goal_error,
            max_steps=self.max_steps,
            eval_every=self.eval_every,
            hidden_units=self.hidden_units,
            pruning=self.pruning,
            train_examples=self.train_examples,
        )

    def trial_configs(self, n: int) -> list[TrialConfig]:
        """The first ``n`` trials of the study, in index order."""
        return [self.trial_config(i, p) for i, p in enumerate(self.space().points(n))]

    def to_dict(self) -> dict[str, Any]:
        """All fields, defaults included, JSON-ready (``search`` as a list of dicts)."""
        out = dataclasses.asdict(self)
        out["search"] = (
            None if self.search is None else [dataclasses.asdict(d) for d in self.search]
        )
        return out
