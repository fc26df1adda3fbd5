"""Bratley-Fox Sobol points (the authors' i4_sobol) and the truncating integer mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sparsedp.search import Dimension, SearchSpace, sobol_unit_points
from sparsedp.search.bratley_fox import bratley_fox_points, direction_integers
from sparsedp.specs import ExperimentFileError, StudySpec, load_experiment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Derived by hand from Bratley & Fox (1988), table 1 (ACM TOMS algorithm 659):
#   dim 1: degree 0, m_k = 1            -> v = 8, 4, 2, 1 (sixteenths)
#   dim 2: x + 1,   m_1 = 1             -> m = 1, 3, 5, 15     -> v = 8, 12, 10, 15
#   dim 3: x^2+x+1, m = 1, 1            -> m_3 = 2·1 ⊕ 4·1 ⊕ 1 = 7, m_4 = 2·7 ⊕ 4·1 ⊕ 1 = 11
#                                          -> v = 8, 4, 14, 11
#   dim 4: x^3+x+1, m = 1, 3, 7         -> m_4 = 4·3 ⊕ 8·1 ⊕ 1 = 5 -> v = 8, 12, 14, 5
# Element k is the XOR of v_j over the set bits j of gray(k) = k ⊕ (k >> 1); in sixteenths:
HAND_POINTS_16THS = [
    [8, 8, 8, 8],  # k = 1, gray 0001: v1
    [12, 4, 12, 4],  # k = 2, gray 0011: v1 ⊕ v2
    [4, 12, 4, 12],  # k = 3, gray 0010: v2
    [6, 6, 10, 2],  # k = 4, gray 0110: v2 ⊕ v3
    [14, 14, 2, 10],  # k = 5, gray 0111
    [10, 2, 6, 6],  # k = 6, gray 0101
    [2, 10, 14, 14],  # k = 7, gray 0100: v3
    [3, 5, 5, 11],  # k = 8, gray 1100: v3 ⊕ v4
    [11, 13, 13, 3],  # k = 9, gray 1101
    [15, 1, 9, 15],  # k = 10, gray 1111
    [7, 9, 1, 7],  # k = 11, gray 1110
    [5, 3, 15, 9],  # k = 12, gray 1010
    [13, 11, 7, 1],  # k = 13, gray 1011
    [9, 7, 3, 13],  # k = 14, gray 1001
    [1, 15, 11, 5],  # k = 15, gray 1000: v4
]


def test_points_match_hand_derivation_from_the_published_table() -> None:
    points = bratley_fox_points(4, 15)
    assert np.array_equal(points, np.array(HAND_POINTS_16THS) / 16.0)
    assert np.array_equal(sobol_unit_points(4, 15, "bratley-fox"), points)


def test_direction_integers_follow_the_recurrence() -> None:
    assert direction_integers(7, (1, 1), bits=4) == [1, 1, 7, 11]
    assert direction_integers(11, (1, 3, 7), bits=4) == [1, 3, 7, 5]
    assert direction_integers(1, (1,), bits=3) == [1, 1, 1]
    with pytest.raises(ValueError, match="degree"):
        direction_integers(11, (1, 3))


def test_first_two_dimensions_agree_with_joe_kuo_later_ones_do_not() -> None:
    bf = sobol_unit_points(4, 1000, "bratley-fox")
    jk = sobol_unit_points(4, 1000)
    assert np.array_equal(bf[:, :2], jk[:, :2])
    # The issue's count: 97 of W3's 100 trials differ in dimension 3 or 4.
    assert ((bf[:100, 2] != jk[:100, 2]) | (bf[:100, 3] != jk[:100, 3])).sum() == 97


def test_unknown_sequence_and_too_many_dimensions() -> None:
    with pytest.raises(ValueError, match="unknown Sobol sequence"):
        sobol_unit_points(2, 3, "halton")
    with pytest.raises(ValueError, match="1 to 40"):
        bratley_fox_points(41, 1)


def test_truncating_integer_mapping() -> None:
    dim = Dimension("decay_steps", 30_000, 60_000, "linear", integer=True)
    u = 0.75 / 30_000  # value 30000.75
    assert dim.from_unit(u) == 30_001
    assert dim.from_unit(u, "truncate") == 30_000
    assert dim.from_unit(0.5, "truncate") == 45_000
    with pytest.raises(ValueError, match="integer mapping"):
        dim.from_unit(0.5, "floor")


def test_w3_space_with_authors_options() -> None:
    space = SearchSpace.for_workload(
        "cifar10-resnet8-nesterov", sequence="bratley-fox", integer_mapping="truncate"
    )
    points = space.points(8)
    # decay_steps is the third dimension: u = 8/16, 12/16, 4/16, 10/16, … of [30000, 60000]
    assert [p["decay_steps"] for p in points[:4]] == [45_000, 52_500, 37_500, 48_750]
    assert points[0]["lr"] == pytest.approx(0.01)
    rounded = SearchSpace.for_workload("cifar10-resnet8-nesterov", sequence="bratley-fox")
    pairs = zip(space.points(100), rounded.points(100), strict=True)
    # The count: int() and rounding disagree on 53 of the 100 decay_steps.
    assert sum(a["decay_steps"] != b["decay_steps"] for a, b in pairs) == 53


def test_options_rename_only_studies_they_change() -> None:
    w2 = StudySpec("mnist-simplecnn-momentum", 0.9, 128)
    w2_bf = StudySpec(
        "mnist-simplecnn-momentum", 0.9, 128, sequence="bratley-fox", integer_mapping="truncate"
    )
    assert w2_bf.key == w2.key == "0965bf6cfe61ec76"
    assert (w2_bf.sequence, w2_bf.integer_mapping) == ("joe-kuo", "round")
    w3 = StudySpec("cifar10-resnet8-nesterov", 0.9, 128)
    keys = {
        w3.key,
        StudySpec("cifar10-resnet8-nesterov", 0.9, 128, sequence="bratley-fox").key,
        StudySpec("cifar10-resnet8-nesterov", 0.9, 128, integer_mapping="truncate").key,
    }
    assert len(keys) == 3
    with pytest.raises(ValueError, match="unknown Sobol sequence"):
        StudySpec("cifar10-resnet8-nesterov", 0.9, 128, sequence="sobol")


def test_paper_w3_uses_authors_points() -> None:
    spec = load_experiment(EXAMPLES / "paper-w3.toml")
    assert spec.study_defaults.sequence == "bratley-fox"
    assert spec.study_defaults.integer_mapping == "truncate"
    assert spec.study_defaults.pruning.prune_biases
    study = spec.studies()[0]
    assert [c.decay_steps for c in study.trial_configs(3)] == [45_000, 52_500, 37_500]


@pytest.mark.parametrize("name", ["paper-w1", "paper-w2"])
def test_paper_w1_w2_prune_biases(name: str) -> None:
    assert load_experiment(EXAMPLES / f"{name}.toml").study_defaults.pruning.prune_biases


BASE = """\
name = "t"
workloads = ["cifar10-resnet8-nesterov"]
sparsities = [0.9]
batch_sizes = [64]
"""


def test_file_options_load(tmp_path: Path) -> None:
    path = tmp_path / "e.toml"
    path.write_text(
        BASE + '[search]\nsequence = "bratley-fox"\ninteger_mapping = "truncate"\n'
        "[search.lr]\nlow = 1e-3\n"
    )
    spec = load_experiment(path)
    study = spec.studies()[0]
    assert (study.sequence, study.integer_mapping) == ("bratley-fox", "truncate")
    assert study.space().dimensions[0].low == 1e-3


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('[search]\nsequence = "sobol"\n', "search.sequence: unknown value 'sobol'"),
        ("[search]\nsequence = 3\n", "search.sequence: expected a string"),
        ('[search]\ninteger_mapping = "floor"\n', "search.integer_mapping: unknown value"),
        ('[search]\nsequense = "bratley-fox"\n', "did you mean 'sequence'?"),
    ],
)
def test_bad_options_give_one_line(tmp_path: Path, extra: str, fragment: str) -> None:
    path = tmp_path / "e.toml"
    path.write_text(BASE + extra)
    with pytest.raises(ExperimentFileError) as info:
        load_experiment(path)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert message.startswith(f"{path}:")
