"""Experiment specifications: the grid of studies, what each study computes, and the TOML file.

An *experiment* is a grid of *studies* (workload × sparsity × batch size); each study is a
quasi-random search of *trials*. :class:`StudySpec` holds everything that affects a study's
results (its :attr:`StudySpec.key` names it on disk); :class:`EngineOptions` holds how the
work is computed, which never changes a result; :class:`ExperimentSpec` ties both to a grid.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from sparsedp.config import config_hash
from sparsedp.data.splits import OFFICIAL_TRAIN_SIZES, train_split_size
from sparsedp.experiment.spec_parts import PartsSections
from sparsedp.plugins import PluginSet
from sparsedp.pruning.prune import PruneSettings, check_sparsity
from sparsedp.pruning.registry import pruner_names
from sparsedp.search.sobol import SEQUENCES
from sparsedp.search.space import (
    DEFAULT_DIMENSIONS,
    INTEGER_MAPPINGS,
    SCALES,
    Dimension,
    SearchSpace,
)
from sparsedp.training.parts import study_parts
from sparsedp.training.precision import PRECISIONS, check_precision
from sparsedp.training.trial_config import TrialConfig
from sparsedp.training.workloads import METAPARAMETERS, get_workload

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SEED_STRIDE = 1_000_003
ORDERS = ("neighbour", "index")
BACKENDS = ("local", "ray")
DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?")
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
_RANGE_PATTERN = re.compile(r"2\s*\^\s*(\d+)\s*\.\.\s*2\s*\^\s*(\d+)")
_MAX_EXPONENT = 40


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- study


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

    def __post_init__(self) -> None:
        spec = get_workload(self.workload)
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; use one of "
                             f"{', '.join(PRECISIONS)}")
        check_sparsity(self.sparsity)
        object.__setattr__(self, "sparsity", float(self.sparsity))
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"batch size must be a whole number >= 1, got {self.batch_size!r}")
        if self.goal_error is not None:
            if not _is_number(self.goal_error) or not 0 < self.goal_error < 1:
                raise ValueError(f"goal error must be in (0, 1), got {self.goal_error!r}")
            object.__setattr__(self, "goal_error", float(self.goal_error))
        for label, value in (("max_steps", self.max_steps), ("eval_every", self.eval_every)):
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"{label} must be a whole number >= 1, got {value!r}")
        if not _is_int(self.hidden_units) or self.hidden_units < 0:
            raise ValueError(f"hidden_units must be a whole number >= 0, got {self.hidden_units!r}")
        if self.hidden_units and spec.model != "simple-cnn":
            raise ValueError(f"hidden_units applies to simple-cnn only, not {spec.model}")
        for label, value in (("seed", self.seed), ("data_seed", self.data_seed)):
            if not _is_int(value) or value < 0:
                raise ValueError(f"{label} must be a whole number >= 0, got {value!r}")
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
        """Human-readable name, e.g. ``mnist-simplecnn-momentum s=0.9 B=128``."""
        return f"{self.workload} s={self.sparsity:g} B={self.batch_size}"

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
        if not _is_int(index) or index < 0:
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


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class EngineOptions:
    """How to compute an experiment, never what: none of these changes a study's results.

    ``stop_hopeless`` stops trials that can no longer beat the study's best;
    ``order`` is ``"neighbour"`` (run studies next to finished ones first) or ``"index"``;
    ``micro_batch``/``eval_batch_size``/``threads`` left ``None`` are measured or chosen
    automatically; ``backend`` is ``"local"`` or ``"ray"``.
    """

    early_exit: bool = True
    stop_hopeless: bool = True
    order: str = "neighbour"
    micro_batch: int | None = None
    eval_batch_size: int | None = None
    threads: int | None = None
    device: str = "cpu"
    backend: str = "local"
    max_retries: int = 2
    batched_trials: int | None = None  # None: measured on CUDA, 1 (off) on CPU (slower there)
    interleave: int | None = None  # None: 16 when stopping hopeless trials, else 1 (off)
    precision: str = "fp32"  # the one engine option that changes numerics (in study keys)

    def resolved_batched_trials(self) -> int:
        """How many trials of a study run in lockstep (1 = one at a time)."""
        if self.batched_trials is not None:
            return self.batched_trials
        return 16 if self.device.startswith("cuda") else 1

    def resolved_interleave(self) -> int:
        """How many trials one local process advances in turn (1 = one after another).

        Interleaving only pays off through the stopping rule, so without it trials run one
        after another.
        """
        if not self.stop_hopeless:
            return 1
        return 16 if self.interleave is None else self.interleave

    def __post_init__(self) -> None:
        for label in ("early_exit", "stop_hopeless"):
            if not isinstance(getattr(self, label), bool):
                raise ValueError(f"{label} must be true or false, got {getattr(self, label)!r}")
        if self.order not in ORDERS:
            raise ValueError(f"unknown order {self.order!r}; use one of {', '.join(ORDERS)}")
        try:
            check_precision(self.precision, self.device)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}")
        if not isinstance(self.device, str) or not DEVICE_PATTERN.fullmatch(self.device):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        for label in ("micro_batch", "eval_batch_size", "threads", "batched_trials", "interleave"):
            value = getattr(self, label)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"{label} must be a whole number >= 1, got {value!r}")
        if not _is_int(self.max_retries) or self.max_retries < 0:
            raise ValueError(f"max_retries must be a whole number >= 0, got {self.max_retries!r}")


# --------------------------------------------------------------------------- experiment


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

    def __post_init__(self) -> None:
        path = Path(self.path)
        base = path.parent
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "workloads", tuple(self.workloads))
        object.__setattr__(self, "sparsities", tuple(float(s) for s in self.sparsities))
        object.__setattr__(self, "batch_sizes", tuple(self.batch_sizes))
        results = self.results_dir if self.results_dir is not None else Path("results") / self.name
        object.__setattr__(self, "results_dir", _resolve_against(base, results))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", _resolve_against(base, self.data_dir))
        if not (self.workloads and self.sparsities and self.batch_sizes):
            raise ValueError("an experiment needs at least one workload, sparsity and batch size")
        if not _is_int(self.trials) or self.trials < 1:
            raise ValueError(f"trials must be a whole number >= 1, got {self.trials!r}")
        if not _is_int(self.workers) or self.workers < 1:
            raise ValueError(f"workers must be a whole number >= 1, got {self.workers!r}")

    def studies(self) -> list[StudySpec]:
        """Every study of the grid, ordered workloads × sparsities × batch sizes."""
        d = self.study_defaults
        out = []
        for workload in self.workloads:
            searched = get_workload(workload).searched
            overrides = tuple(dim for name, dim in d.search.items() if name in searched)
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
        p = self.plugins
        if p.modules or p.workloads or p.datasets:
            out["plugins"] = {
                "modules": list(p.modules),
                "workloads": {w.name: w.definition() for w in p.workloads},
                "datasets": {d.name: {"loader": repr(d.loader), "version": d.version}
                             for d in p.datasets},
            }
        return out


def _resolve_against(base: Path, value: str | Path) -> Path:
    path = Path(value).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


# --------------------------------------------------------------------------- batch sizes


class _Problem(ValueError):
    """A validation failure: what is wrong and how to fix it (str: ``what; fix``)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix


def resolve_batch_sizes(value: str | Sequence[int]) -> tuple[int, ...]:
    """Batch sizes from a list of whole numbers or a range ``"2^a..2^b"`` (powers of two
    from ``2^a`` to ``2^b`` inclusive). Raises ``ValueError`` with a fix when malformed."""
    if isinstance(value, str):
        match = _RANGE_PATTERN.fullmatch(value.strip())
        if not match:
            raise _Problem(
                f"malformed range {value!r}",
                "write powers of two as '2^a..2^b', e.g. '2^4..2^13', or give a list",
            )
        start, end = int(match[1]), int(match[2])
        if start > end:
            raise _Problem(
                f"range {value!r} is inverted (2^{start} > 2^{end})",
                f"write '2^{end}..2^{start}'",
            )
        if end > _MAX_EXPONENT:
            raise _Problem(f"range {value!r} goes past 2^{_MAX_EXPONENT}", "use smaller powers")
        return tuple(2**k for k in range(start, end + 1))
    if not isinstance(value, (list, tuple)):
        raise _Problem(
            f"expected a list of whole numbers or a range string, got {value!r}",
            "write e.g. [64, 256] or '2^4..2^13'",
        )
    if not value:
        raise _Problem("the list is empty", "give at least one batch size")
    for i, item in enumerate(value):
        if not _is_int(item):
            raise _Problem(f"entry {i} ({item!r}) is not a whole number", "use integers")
        if item < 1:
            raise _Problem(f"entry {i} is {item}, below 1", "batch sizes must be >= 1")
    duplicates = sorted({b for b in value if list(value).count(b) > 1})
    if duplicates:
        raise _Problem(
            f"duplicate batch sizes {', '.join(map(str, duplicates))}", "list each size once"
        )
    return tuple(value)


# --------------------------------------------------------------------------- TOML loading


class ExperimentFileError(ValueError):
    """A problem in an experiment file, shown as one line:
    ``<file>:<line>: <key>: <what is wrong>; <how to fix>`` (``:<line>`` when known)."""

    def __init__(
        self,
        file: str | Path,
        key: str | None,
        problem: str,
        fix: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        self.fix = fix
        self.line = line
        where = self.file if line is None else f"{self.file}:{line}"
        text = f"{where}: {key}: {problem}" if key else f"{where}: {problem}"
        if fix:
            text += f"; {fix}"
        super().__init__(" ".join(text.split()))


_TOP_KEYS = (
    "name",
    "workloads",
    "sparsities",
    "batch_sizes",
    "trials",
    "results",
    "workers",
    "data_dir",
    "seed",
    "data_seed",
    "goal_error",
    "max_steps",
    "eval_every",
    "hidden_units",
    "pruning",
    "search",
    "engine",
    "plugins",
    "datasets",
)
_REQUIRED = {
    "name": 'name = "my-experiment"',
    "workloads": 'workloads = ["mnist-simplecnn-momentum"]',
    "sparsities": "sparsities = [0.0, 0.9]",
    "batch_sizes": 'batch_sizes = [64, 256] or "2^4..2^13"',
}
_PRUNING_KEYS = tuple(f.name for f in dataclasses.fields(PruneSettings))
_DIMENSION_KEYS = ("low", "high", "scale", "integer")
_SEARCH_OPTIONS = ("sequence", "integer_mapping")
_ENGINE_KEYS = tuple(f.name for f in dataclasses.fields(EngineOptions))
_KEY_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")
_HEADER_LINE = re.compile(r"^\s*\[\[?\s*([^\[\]]*?)\s*\]\]?")
_KEY_LINE = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)"""
    r"\s*="
)
_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "a list",
    dict: "a table",
}


def _key_parts(text: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _KEY_PART.findall(text))


def _locate(lines: Sequence[str], path: tuple[str, ...]) -> int | None:
    """1-based line defining ``path`` (a key or a ``[table]``), or of its nearest parent."""
    while path:
        table: tuple[str, ...] = ()
        for number, line in enumerate(lines, start=1):
            header = _HEADER_LINE.match(line)
            if header:
                table = _key_parts(header[1])
                if table == path:
                    return number
                continue
            key = _KEY_LINE.match(line)
            if key and table + _key_parts(key[1])[: len(path) - len(table)] == path:
                return number
        path = path[:-1]
    return None


def _describe(value: object) -> str:
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    return f"{shown} ({_TYPE_NAMES.get(type(value), type(value).__name__)})"


def _suggest(word: str, valid: Sequence[str], what: str = "valid keys") -> str:
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{what}: {', '.join(valid)}"


class _Loader(PartsSections):
    """Validates a parsed experiment file; every failure is an ExperimentFileError."""

    def __init__(self, path: Path, shown: str, text: str, plugins: Sequence[str] = ()) -> None:
        self.path = path
        self.shown = shown
        self.lines = text.splitlines()
        self.extra_plugins = tuple(plugins)

    def fail(self, key: tuple[str | int, ...], problem: str, fix: str | None = None) -> NoReturn:
        names = tuple(k for k in key if isinstance(k, str))
        label = ""
        for part in key:
            label += f"[{part}]" if isinstance(part, int) else (f".{part}" if label else part)
        raise ExperimentFileError(self.shown, label, problem, fix, _locate(self.lines, names))

    # helpers for the parts sections (spec_parts) --------------------------------------

    describe = staticmethod(_describe)
    suggest = staticmethod(_suggest)

    def resolve(self, path: str) -> Path:
        return _resolve_against(self.path.parent, path)

    # typed getters ---------------------------------------------------------------------

    def keys(self, table: Mapping[str, Any], valid: Sequence[str], where: tuple[str, ...]) -> None:
        for name in table:
            if name not in valid:
                self.fail((*where, name), "unknown key", _suggest(name, valid))

    def table(self, value: object, key: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(
                key, f"expected a table, got {_describe(value)}", f"write it as [{'.'.join(key)}]"
            )
        return value  # type: ignore[return-value]

    def integer(self, value: object, key: tuple[str | int, ...], minimum: int) -> int:
        if not _is_int(value):
            self.fail(
                key,
                f"expected a whole number, got {_describe(value)}",
                f"write e.g. {max(minimum, 1)}",
            )
        if value < minimum:  # type: ignore[operator]
            self.fail(key, f"must be >= {minimum}, got {value}", f"use a value >= {minimum}")
        return value  # type: ignore[return-value]

    def number(self, value: object, key: tuple[str | int, ...]) -> float:
        if not _is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
            self.fail(key, f"expected a finite number, got {_describe(value)}", "write e.g. 0.5")
        return float(value)  # type: ignore[arg-type]

    def string(self, value: object, key: tuple[str | int, ...]) -> str:
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_describe(value)}", "put the value in quotes")
        return value  # type: ignore[return-value]

    def boolean(self, value: object, key: tuple[str | int, ...]) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_describe(value)}", "write true or false")
        return value  # type: ignore[return-value]

    def choice(self, value: object, key: tuple[str | int, ...], options: Sequence[str]) -> str:
        text = self.string(value, key)
        if text not in options:
            self.fail(key, f"unknown value {text!r}", _suggest(text, options, "use one of"))
        return text

    def nonempty_list(self, value: object, key: tuple[str, ...], example: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(key, f"expected a list, got {_describe(value)}", f"write e.g. {example}")
        if not value:
            self.fail(key, "the list is empty", f"give at least one value, e.g. {example}")
        return value  # type: ignore[return-value]

    # sections --------------------------------------------------------------------------

    def load(self, doc: dict[str, Any]) -> ExperimentSpec:
        self.keys(doc, _TOP_KEYS, ())
        for name, example in _REQUIRED.items():
            if name not in doc:
                self.fail((name,), "missing required key", f"add e.g. {example}")

        name = self.string(doc["name"], ("name",))
        if not NAME_PATTERN.fullmatch(name):
            self.fail(
                ("name",),
                f"{name!r} has characters other than letters, digits, '.', '_', '-'",
                'it names the results directory; e.g. name = "quick-mnist"',
            )

        modules = self.plugins(doc.get("plugins", []))
        datasets = self.datasets(doc.get("datasets", {}))
        workloads, defined = self.workloads(doc["workloads"])
        plugin_set = PluginSet(modules, (str(self.path.parent),), defined, datasets)
        sparsities = self.sparsities(doc["sparsities"])
        batch_sizes = self.batch_sizes(doc["batch_sizes"], workloads)

        trials = self.integer(doc.get("trials", 100), ("trials",), 1)
        workers = self.integer(doc.get("workers", 1), ("workers",), 1)
        results = self.string(doc["results"], ("results",)) if "results" in doc else None
        data_dir = self.string(doc["data_dir"], ("data_dir",)) if "data_dir" in doc else None
        for key in ("results", "data_dir"):
            if key in doc and not doc[key].strip():
                self.fail((key,), "empty path", "give a directory or leave the key out")

        defaults = self.study_defaults(doc, workloads)
        engine = self.engine(doc.get("engine", {}))
        base = self.path.parent
        return ExperimentSpec(
            name=name,
            path=self.path,
            workloads=workloads,
            sparsities=sparsities,
            batch_sizes=batch_sizes,
            trials=trials,
            results_dir=_resolve_against(base, results) if results else None,  # type: ignore[arg-type]
            workers=workers,
            data_dir=_resolve_against(base, data_dir) if data_dir else None,
            study_defaults=defaults,
            engine=engine,
            plugins=plugin_set,
        )

    def sparsities(self, value: object) -> tuple[float, ...]:
        items = self.nonempty_list(value, ("sparsities",), "[0.0, 0.9]")
        out: list[float] = []
        for i, item in enumerate(items):
            sparsity = self.number(item, ("sparsities", i))
            if not 0.0 <= sparsity < 1.0:
                self.fail(
                    ("sparsities", i),
                    f"{item} is outside [0, 1)",
                    "a sparsity is the fraction of weights removed, e.g. 0.9",
                )
            if sparsity in out:
                self.fail(("sparsities", i), f"duplicate sparsity {item}", "list each once")
            out.append(sparsity)
        return tuple(out)

    def batch_sizes(self, value: object, workloads: tuple[str, ...]) -> tuple[int, ...]:
        try:
            sizes = resolve_batch_sizes(value)  # type: ignore[arg-type]
        except _Problem as error:
            self.fail(("batch_sizes",), error.problem, error.fix)
        known = [get_workload(w).dataset for w in workloads]  # plugin data: checked in preflight
        known = [d for d in known if d in OFFICIAL_TRAIN_SIZES]
        if not known:
            return sizes
        limit, dataset = min((train_split_size(d), d) for d in known)
        too_big = [b for b in sizes if b > limit]
        if too_big:
            self.fail(
                ("batch_sizes",),
                f"batch size {too_big[0]} is larger than the {dataset} training split "
                f"({limit:,} examples)",
                f"use batch sizes <= {limit}",
            )
        return sizes

    def study_defaults(self, doc: dict[str, Any], workloads: tuple[str, ...]) -> StudyDefaults:
        goal_error = None
        if "goal_error" in doc:
            goal_error = self.number(doc["goal_error"], ("goal_error",))
            if not 0.0 < goal_error < 1.0:
                self.fail(
                    ("goal_error",),
                    f"{doc['goal_error']} is outside (0, 1)",
                    "it is a validation error rate, e.g. 0.02",
                )
        max_steps = (
            self.integer(doc["max_steps"], ("max_steps",), 1) if "max_steps" in doc else None
        )
        eval_every = (
            self.integer(doc["eval_every"], ("eval_every",), 1) if "eval_every" in doc else None
        )
        hidden_units = self.integer(doc.get("hidden_units", 0), ("hidden_units",), 0)
        if hidden_units:
            others = [w for w in workloads if get_workload(w).model != "simple-cnn"]
            if others:
                self.fail(
                    ("hidden_units",),
                    f"applies to simple-cnn only, not {others[0]}",
                    "remove it or run that workload in another experiment",
                )
        return StudyDefaults(
            goal_error=goal_error,
            max_steps=max_steps,
            eval_every=eval_every,
            hidden_units=hidden_units,
            pruning=self.pruning(doc.get("pruning", {})),
            search=self.search(doc.get("search", {}), workloads),
            seed=self.integer(doc.get("seed", 0), ("seed",), 0),
            data_seed=self.integer(doc.get("data_seed", 0), ("data_seed",), 0),
            **self.search_options(doc.get("search", {})),
        )

    def pruning(self, value: object, where: tuple[str, ...] = ("pruning",)) -> PruneSettings:
        table = self.table(value, where)
        self.keys(table, _PRUNING_KEYS, where)
        options: dict[str, Any] = {}
        if "method" in table:
            options["method"] = self.choice(table["method"], (*where, "method"),
                                            pruner_names())
        if "prune_biases" in table:
            options["prune_biases"] = self.boolean(
                table["prune_biases"], (*where, "prune_biases")
            )
        for key in ("snip_batches", "snip_batch_size", "grasp_examples_per_class",
                    "synflow_iterations"):
            if key in table:
                options[key] = self.integer(table[key], (*where, key), 1)
        if "grasp_temperature" in table:
            temperature = self.number(table["grasp_temperature"], (*where, "grasp_temperature"))
            if temperature <= 0:
                self.fail((*where, "grasp_temperature"), f"must be > 0, got {temperature}",
                          "GraSP divides the logits by it; the paper uses 200")
            options["grasp_temperature"] = temperature
        method = options.get("method", "snip")
        for key, owner in (("grasp_temperature", "grasp"), ("grasp_examples_per_class", "grasp"),
                           ("synflow_iterations", "synflow")):
            if key in table and method != owner:
                self.fail((*where, key), f"applies to method {owner!r} only, not {method!r}",
                          f'remove it or set method = "{owner}"')
        return PruneSettings(**options)

    def search_options(self, value: object) -> dict[str, str]:
        """``sequence`` and ``integer_mapping`` of the ``[search]`` table, where given."""
        table = self.table(value, ("search",))
        out: dict[str, str] = {}
        if "sequence" in table:
            out["sequence"] = self.choice(table["sequence"], ("search", "sequence"), SEQUENCES)
        if "integer_mapping" in table:
            out["integer_mapping"] = self.choice(
                table["integer_mapping"], ("search", "integer_mapping"), INTEGER_MAPPINGS
            )
        return out

    def search(self, value: object, workloads: tuple[str, ...]) -> dict[str, Dimension]:
        table = self.table(value, ("search",))
        self.keys(table, (*_SEARCH_OPTIONS, *METAPARAMETERS), ("search",))
        searched = {name for w in workloads for name in get_workload(w).searched}
        out: dict[str, Dimension] = {}
        for name, entry in table.items():
            if name in _SEARCH_OPTIONS:
                continue
            key = ("search", name)
            if name not in searched:
                self.fail(
                    key,
                    f"none of the workloads searches {name!r}",
                    f"remove [search.{name}] (searched: {', '.join(sorted(searched))})",
                )
            entry = self.table(entry, key)
            self.keys(entry, _DIMENSION_KEYS, key)
            default = DEFAULT_DIMENSIONS[name]
            low = self.number(entry["low"], (*key, "low")) if "low" in entry else default.low
            high = self.number(entry["high"], (*key, "high")) if "high" in entry else default.high
            scale = (
                self.choice(entry["scale"], (*key, "scale"), SCALES)
                if "scale" in entry
                else default.scale
            )
            integer = (
                self.boolean(entry["integer"], (*key, "integer"))
                if "integer" in entry
                else default.integer
            )
            if not low < high:
                self.fail(key, f"low ({low:g}) must be below high ({high:g})", "swap low and high")
            if scale == "log" and low <= 0:
                self.fail(
                    (*key, "low") if "low" in entry else key,
                    f"a log scale needs low > 0, got {low:g}",
                    'use a positive bound or scale = "linear"',
                )
            if scale == "reverse-log" and high >= 1:
                self.fail(
                    (*key, "high") if "high" in entry else key,
                    f"a reverse-log scale needs high < 1, got {high:g}",
                    "use a bound below 1, e.g. 0.9999",
                )
            out[name] = Dimension(name, low, high, scale, integer)
        return out

    def engine(self, value: object) -> EngineOptions:
        table = self.table(value, ("engine",))
        self.keys(table, _ENGINE_KEYS, ("engine",))
        options: dict[str, Any] = {}
        for key in ("early_exit", "stop_hopeless"):
            if key in table:
                options[key] = self.boolean(table[key], ("engine", key))
        if "order" in table:
            options["order"] = self.choice(table["order"], ("engine", "order"), ORDERS)
        if "backend" in table:
            options["backend"] = self.choice(table["backend"], ("engine", "backend"), BACKENDS)
        if "precision" in table:
            options["precision"] = self.choice(table["precision"], ("engine", "precision"),
                                               PRECISIONS)
            if options["precision"] == "tf32" and not str(
                    table.get("device", "cpu")).startswith("cuda"):
                self.fail(("engine", "precision"), 'precision "tf32" needs a CUDA device',
                          'set device = "cuda" in [engine], or use "fp32"')
        if "device" in table:
            device = self.string(table["device"], ("engine", "device"))
            if not DEVICE_PATTERN.fullmatch(device):
                self.fail(
                    ("engine", "device"),
                    f"unknown device {device!r}",
                    'use "cpu", "cuda" or "cuda:N"',
                )
            options["device"] = device
        for key in ("micro_batch", "eval_batch_size", "threads", "batched_trials", "interleave"):
            if key in table:
                options[key] = self.integer(table[key], ("engine", key), 1)
        if "max_retries" in table:
            options["max_retries"] = self.integer(
                table["max_retries"], ("engine", "max_retries"), 0
            )
        return EngineOptions(**options)


_SYNTAX_POSITION = re.compile(r"at line (\d+), column (\d+)")


def load_experiment(path: str | Path, *, plugins: Sequence[str] = ()) -> ExperimentSpec:
    """Read and validate an experiment TOML file, importing its plugins and ``plugins``.

    Every problem (syntax, unknown or missing keys, wrong types, values out of range)
    raises :class:`ExperimentFileError` with a one-line message naming the key; a plugin
    given in ``plugins`` that fails raises :class:`~sparsedp.plugins.PluginError`.
    """
    shown = str(path)
    resolved = Path(path).expanduser().resolve()
    try:
        text = resolved.read_text(encoding="utf-8")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ExperimentFileError(
            shown, None, f"cannot read the experiment file ({reason})", "check the path"
        ) from None
    except UnicodeDecodeError:
        raise ExperimentFileError(
            shown, None, "the file is not UTF-8 text", "save it as UTF-8"
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _SYNTAX_POSITION.search(message)
        line = int(position[1]) if position else None
        raise ExperimentFileError(
            shown,
            "TOML syntax",
            message,
            "fix the syntax (strings need quotes; see https://toml.io)",
            line,
        ) from None
    return _Loader(resolved, shown, text, plugins).load(doc)
