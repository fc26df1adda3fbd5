"""Search spaces: how a point of the unit hypercube becomes a set of metaparameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from sparsedp.search.sobol import SEQUENCES, sobol_unit_points
from sparsedp.training.workloads import Workload, get_workload

SCALES = ("linear", "log", "reverse-log")
INTEGER_MAPPINGS = ("round", "truncate")
"""How an integer dimension's mapped value becomes a whole number: ``round`` to nearest
(halves up; the default) or ``truncate`` towards zero (Python's ``int()``, the authors')."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Dimension:
    """One searched metaparameter: a range and how the unit interval maps onto it.

    ``scale`` is ``"linear"``, ``"log"`` (uniform in ``log10``) or ``"reverse-log"``
    (``1 - m`` uniform in ``log10``, the authors' mapping for momentum: it spends as many
    points between 0.99 and 0.999 as between 0.9 and 0.99). ``integer`` rounds the mapped
    value to the nearest whole number (halves up).
    """

    name: str
    low: float
    high: float
    scale: str
    integer: bool = False

    def __post_init__(self) -> None:
        where = f"search dimension {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"search dimension name must be a non-empty string, got {self.name!r}")
        if self.scale not in SCALES:
            raise ValueError(
                f"{where}: unknown scale {self.scale!r}; use one of {', '.join(SCALES)}"
            )
        if not isinstance(self.integer, bool):
            raise ValueError(f"{where}: integer must be true or false, got {self.integer!r}")
        for label, value in (("low", self.low), ("high", self.high)):
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(f"{where}: {label} must be a finite number, got {value!r}")
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        if not self.low < self.high:
            raise ValueError(
                f"{where}: low ({self.low:g}) must be below high ({self.high:g}); swap them"
            )
        if self.scale == "log" and self.low <= 0:
            raise ValueError(
                f"{where}: a log scale needs low > 0, got low = {self.low:g}; "
                "use a positive lower bound or scale = 'linear'"
            )
        if self.scale == "reverse-log" and self.high >= 1:
            raise ValueError(
                f"{where}: a reverse-log scale needs high < 1 (it maps 1 - value "
                f"logarithmically), got high = {self.high:g}"
            )

    def from_unit(self, u: float, integer_mapping: str = "round") -> float | int:
        """The metaparameter value at ``u`` in [0, 1] (``u = 0`` gives ``low``, except for
        ``reverse-log``, where ``u = 0`` gives ``high`` and ``u = 1`` gives ``low``).
        ``integer_mapping`` (:data:`INTEGER_MAPPINGS`) applies to integer dimensions."""
        if integer_mapping not in INTEGER_MAPPINGS:
            raise ValueError(
                f"unknown integer mapping {integer_mapping!r}; use one of "
                f"{', '.join(INTEGER_MAPPINGS)}"
            )
        if not _is_number(u) or not 0.0 <= u <= 1.0:
            raise ValueError(f"search dimension {self.name!r}: u must be in [0, 1], got {u!r}")
        u = float(u)
        if self.scale == "linear":
            value = self.low + u * (self.high - self.low)
        elif self.scale == "log":
            lo, hi = math.log10(self.low), math.log10(self.high)
            value = 10.0 ** (u * (hi - lo) + lo)
        else:  # reverse-log: 1 - value is log-uniform between 1 - high and 1 - low
            lo, hi = math.log10(1.0 - self.low), math.log10(1.0 - self.high)
            value = 1.0 - 10.0 ** (u * (lo - hi) + hi)
        if self.integer:
            return int(value) if integer_mapping == "truncate" else math.floor(value + 0.5)
        return value

    def to_unit(self, value: float) -> float:
        """Where ``value`` sits in the unit interval: the inverse of :meth:`from_unit`
        (integer dimensions ignore the rounding). Values outside the range give a number
        outside [0, 1]; NaN where the scale cannot place it (e.g. ``value <= 0`` on a log
        scale)."""
        v = float(value)
        if self.scale == "linear":
            return (v - self.low) / (self.high - self.low)
        if self.scale == "log":
            if v <= 0:
                return math.nan
            lo, hi = math.log10(self.low), math.log10(self.high)
            return (math.log10(v) - lo) / (hi - lo)
        if v >= 1:  # reverse-log
            return math.nan
        lo, hi = math.log10(1.0 - self.low), math.log10(1.0 - self.high)
        return (math.log10(1.0 - v) - hi) / (lo - hi)


DEFAULT_DIMENSIONS: Mapping[str, Dimension] = MappingProxyType(
    {
        "lr": Dimension("lr", 1e-4, 1.0, "log"),
        "momentum": Dimension("momentum", 0.9, 0.9999, "reverse-log"),
        "decay_steps": Dimension("decay_steps", 30_000, 60_000, "linear", integer=True),
        "end_lr_factor": Dimension("end_lr_factor", 1e-4, 0.1, "log"),
    }
)
"""The default range of every metaparameter a workload may search, by name."""


@dataclass(frozen=True)
class SearchSpace:
    """The searched dimensions of one study, in order (the order fixes the Sobol axes).

    ``sequence`` picks the Sobol direction numbers (:data:`~sparsedp.search.sobol.SEQUENCES`)
    and ``integer_mapping`` how integer dimensions are made whole (:data:`INTEGER_MAPPINGS`).
    """

    dimensions: tuple[Dimension, ...]
    sequence: str = "joe-kuo"
    integer_mapping: str = "round"

    def __post_init__(self) -> None:
        if self.sequence not in SEQUENCES:
            raise ValueError(
                f"unknown Sobol sequence {self.sequence!r}; use one of {', '.join(SEQUENCES)}"
            )
        if self.integer_mapping not in INTEGER_MAPPINGS:
            raise ValueError(
                f"unknown integer mapping {self.integer_mapping!r}; use one of "
                f"{', '.join(INTEGER_MAPPINGS)}"
            )
        dims = tuple(self.dimensions)
        object.__setattr__(self, "dimensions", dims)
        if not dims:
            raise ValueError("a search space needs at least one dimension")
        names = [d.name for d in dims]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"search space has duplicate dimensions: {', '.join(duplicates)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    @classmethod
    def for_workload(
        cls,
        workload: Workload | str,
        overrides: Mapping[str, Dimension] | None = None,
        sequence: str = "joe-kuo",
        integer_mapping: str = "round",
    ) -> SearchSpace:
        """The workload's searched metaparameters (in ``workload.searched`` order), each
        from ``DEFAULT_DIMENSIONS`` unless ``overrides`` replaces it.

        An override for a metaparameter the workload does not search is an error.
        """
        spec = get_workload(workload) if isinstance(workload, str) else workload
        overrides = dict(overrides or {})
        for name, dim in overrides.items():
            if name not in spec.searched:
                raise ValueError(
                    f"workload {spec.name} does not search {name!r} "
                    f"(it searches {', '.join(spec.searched)}); remove that override"
                )
            if dim.name != name:
                raise ValueError(f"override for {name!r} is a dimension named {dim.name!r}")
        dims = tuple(overrides.get(name, DEFAULT_DIMENSIONS[name]) for name in spec.searched)
        return cls(dims, sequence, integer_mapping)

    @property
    def uses_sequence(self) -> bool:
        """Whether ``sequence`` matters here: the sequences differ from dimension 3 on."""
        return len(self.dimensions) >= 3

    @property
    def uses_integer_mapping(self) -> bool:
        """Whether ``integer_mapping`` matters here: some dimension is an integer one."""
        return any(d.integer for d in self.dimensions)

    def units(self, n: int) -> np.ndarray:
        """The first ``n`` Sobol points in the unit cube (elements ``1..n``), ``n × dims``."""
        return sobol_unit_points(len(self.dimensions), n, self.sequence)

    def points(self, n: int) -> list[dict[str, float | int]]:
        """The first ``n`` search points: point ``i`` is Sobol element ``i + 1`` mapped
        through each dimension. Deterministic, so every study gets the same points."""
        return [
            {
                d.name: d.from_unit(float(u), self.integer_mapping)
                for d, u in zip(self.dimensions, row, strict=True)
            }
            for row in self.units(n)
        ]
