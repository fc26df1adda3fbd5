"""Search space: Sobol points and the per-dimension mappings."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from sparsedp.search import DEFAULT_DIMENSIONS, Dimension, SearchSpace, sobol_unit_points
from sparsedp.training.workloads import WORKLOADS


def test_sobol_unit_points_drop_the_zero_corner() -> None:
    np.testing.assert_array_equal(
        sobol_unit_points(2, 4), [[0.5, 0.5], [0.75, 0.25], [0.25, 0.75], [0.375, 0.375]]
    )
    np.testing.assert_array_equal(sobol_unit_points(1, 3).ravel(), [0.5, 0.75, 0.25])
    assert sobol_unit_points(3, 0).shape == (0, 3)


def test_sobol_points_are_prefixes_and_emit_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # n + 1 = 100 is not a power of two
        many = sobol_unit_points(4, 99)
    np.testing.assert_array_equal(sobol_unit_points(4, 10), many[:10])


def test_sobol_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="dimension"):
        sobol_unit_points(0, 3)
    with pytest.raises(ValueError, match=">= 0"):
        sobol_unit_points(2, -1)


def test_log_mapping() -> None:
    lr = DEFAULT_DIMENSIONS["lr"]
    assert lr.from_unit(0.0) == pytest.approx(1e-4)
    assert lr.from_unit(0.5) == pytest.approx(1e-2)
    assert lr.from_unit(1.0) == pytest.approx(1.0)
    assert lr.from_unit(0.75) == pytest.approx(0.1)


def test_reverse_log_mapping() -> None:
    momentum = DEFAULT_DIMENSIONS["momentum"]
    assert momentum.from_unit(0.0) == pytest.approx(0.9999, abs=1e-12)
    assert momentum.from_unit(1.0) == pytest.approx(0.9, abs=1e-12)
    assert momentum.from_unit(0.5) == pytest.approx(1 - 10**-2.5, abs=1e-12)
    assert momentum.from_unit(0.5) == pytest.approx(0.9968377223398316)


def test_linear_and_integer_mapping() -> None:
    linear = Dimension("x", -1.0, 3.0, "linear")
    assert [linear.from_unit(u) for u in (0.0, 0.5, 1.0)] == [-1.0, 1.0, 3.0]
    steps = DEFAULT_DIMENSIONS["decay_steps"]
    assert steps.from_unit(0.0) == 30_000
    assert steps.from_unit(0.5) == 45_000
    assert steps.from_unit(1.0) == 60_000
    value = steps.from_unit(1 / 3)
    assert isinstance(value, int) and value == 40_000
    rounding = Dimension("k", 0, 10, "linear", integer=True)
    assert rounding.from_unit(0.04) == 0  # 0.4 → 0
    assert rounding.from_unit(0.06) == 1  # 0.6 → 1
    assert rounding.from_unit(0.25) == 3  # 2.5 → 3 (halves up)
    end = DEFAULT_DIMENSIONS["end_lr_factor"]
    assert end.from_unit(0.0) == pytest.approx(1e-4)
    assert end.from_unit(1.0) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("lr", 1.0, 1.0, "log"), "below high"),
        (("lr", 1.0, 0.1, "linear"), "below high"),
        (("lr", 0.0, 1.0, "log"), "low > 0"),
        (("lr", -1.0, 1.0, "log"), "low > 0"),
        (("momentum", 0.9, 1.0, "reverse-log"), "high < 1"),
        (("lr", 0.1, 1.0, "cubic"), "unknown scale"),
        (("lr", math.nan, 1.0, "linear"), "finite"),
    ],
)
def test_dimension_validation_names_the_dimension(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        Dimension(*args)
    assert repr(args[0]) in str(info.value)


def test_from_unit_rejects_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DEFAULT_DIMENSIONS["lr"].from_unit(1.5)


def test_space_for_each_workload_follows_its_searched_order() -> None:
    for workload in WORKLOADS.values():
        space = SearchSpace.for_workload(workload)
        assert space.names == workload.searched
    space = SearchSpace.for_workload("cifar10-resnet8-nesterov")
    assert space.names == ("lr", "momentum", "decay_steps", "end_lr_factor")


def test_first_points_of_w2_and_w1() -> None:
    w2 = SearchSpace.for_workload(WORKLOADS["mnist-simplecnn-momentum"]).points(3)
    assert w2[0]["lr"] == pytest.approx(0.01)
    assert w2[0]["momentum"] == pytest.approx(1 - 10**-2.5)
    assert w2[0]["momentum"] == pytest.approx(0.99684, abs=1e-5)
    assert w2[1]["lr"] == pytest.approx(0.1)  # u = (0.75, 0.25)
    assert w2[1]["momentum"] == pytest.approx(1 - 10**-3.25)
    w1 = SearchSpace.for_workload("mnist-simplecnn-sgd").points(3)
    assert [p["lr"] for p in w1] == pytest.approx([0.01, 0.1, 0.001])
    assert all(set(p) == {"lr"} for p in w1)


def test_points_are_deterministic_and_prefix_stable() -> None:
    space = SearchSpace.for_workload("cifar10-resnet8-nesterov")
    hundred = space.points(100)
    assert hundred == SearchSpace.for_workload("cifar10-resnet8-nesterov").points(100)
    assert space.points(7) == hundred[:7]
    assert len(hundred) == 100
    assert all(isinstance(p["decay_steps"], int) for p in hundred)
    assert len({p["lr"] for p in hundred}) == 100


def test_overrides_replace_defaults() -> None:
    narrow = Dimension("lr", 1e-3, 1.0, "log")
    space = SearchSpace.for_workload("mnist-simplecnn-momentum", {"lr": narrow})
    assert space.dimensions == (narrow, DEFAULT_DIMENSIONS["momentum"])
    assert space.points(1)[0]["lr"] == pytest.approx(10**-1.5)


def test_override_for_unsearched_metaparameter_is_an_error() -> None:
    with pytest.raises(ValueError, match="momentum"):
        SearchSpace.for_workload(
            "mnist-simplecnn-sgd", {"momentum": DEFAULT_DIMENSIONS["momentum"]}
        )


def test_space_rejects_duplicates_and_empty() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        SearchSpace((DEFAULT_DIMENSIONS["lr"], DEFAULT_DIMENSIONS["lr"]))
    with pytest.raises(ValueError, match="at least one"):
        SearchSpace(())
