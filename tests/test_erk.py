"""random-erk: Erdős–Rényi-Kernel densities checked by hand, and the pruner's masks.

The tiny net: a 2×1×3×3 convolution (18 weights, raw density (2+1+3+3)/18 = 1/2), a 16×32
linear layer (512 weights, raw (16+32)/512 = 3/32) and a 10×16 linear layer (160 weights,
raw 26/160); raw density × size is the sum of the shape: 9, 48 and 26 (83 in all), N = 690.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sparsedp.models import build_model, prunable_parameters
from sparsedp.pruning import PruneSettings, keep_count, prune
from sparsedp.pruning.erk import erk_counts, erk_densities, raw_density

SHAPES = {"conv.weight": (2, 1, 3, 3), "fc1.weight": (16, 32), "fc2.weight": (10, 16)}


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)  # 6x6 input -> 2x4x4 = 32
        self.fc1 = nn.Linear(32, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(torch.relu(self.conv(x)).flatten(1))))


def tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return Tiny()


def test_raw_densities_by_hand():
    assert raw_density((2, 1, 3, 3)) == 0.5
    assert raw_density((16, 32)) == 0.09375
    assert raw_density((10, 16)) == 0.1625


def test_no_layer_dense_at_90_percent():
    # K = floor(690 * 0.1 + 0.5) = 69; eps = 69 / 83; density = raw * eps
    densities = erk_densities(SHAPES, 0.9)
    assert densities["conv.weight"] == pytest.approx(0.5 * 69 / 83)  # 0.41566
    assert densities["fc1.weight"] == pytest.approx(0.09375 * 69 / 83)  # 0.07794
    assert densities["fc2.weight"] == pytest.approx(0.1625 * 69 / 83)  # 0.13509
    # exact counts 9*69/83 = 7.482, 48*69/83 = 39.904, 26*69/83 = 21.614: floors 7, 39, 21
    # (67), the two left go to the largest remainders (.904, .614)
    assert erk_counts(SHAPES, 0.9) == {"conv.weight": 7, "fc1.weight": 40, "fc2.weight": 22}


def test_one_layer_dense_at_50_percent():
    # K = 345; eps = 345/83 = 4.157: the conv's 0.5 * 4.157 = 2.08 > 1, dense (18 kept);
    # then eps = (345 - 18) / (48 + 26) = 327/74 = 4.419: fc1 0.414, fc2 0.718, both < 1
    densities = erk_densities(SHAPES, 0.5)
    assert densities["conv.weight"] == 1.0
    assert densities["fc1.weight"] == pytest.approx(0.09375 * 327 / 74)  # 0.41427
    assert densities["fc2.weight"] == pytest.approx(0.1625 * 327 / 74)  # 0.71807
    # 48*327/74 = 212.11, 26*327/74 = 114.89: floors 212, 114, the one left to fc2
    assert erk_counts(SHAPES, 0.5) == {"conv.weight": 18, "fc1.weight": 212, "fc2.weight": 115}


def test_a_layer_pushed_over_one_by_the_rescale_turns_dense_in_a_second_round():
    # K = floor(690 * 0.7 + 0.5) = 483; round 1: eps = 483/83 = 5.819, conv 2.91 > 1 (dense),
    # fc2 0.1625 * 5.819 = 0.946 < 1; round 2: eps = 465/74 = 6.284, fc2 1.021 > 1 (dense);
    # round 3: eps = (483 - 18 - 160) / 48 = 305/48, fc1 0.5957
    densities = erk_densities(SHAPES, 0.3)
    assert densities == {"conv.weight": 1.0, "fc1.weight": pytest.approx(305 / 512),
                         "fc2.weight": 1.0}
    assert erk_counts(SHAPES, 0.3) == {"conv.weight": 18, "fc1.weight": 305, "fc2.weight": 160}


def _rigl_densities(shapes: dict, sparsity: float) -> dict:
    """RigL's sparse_utils.get_sparsities loop (erk_power_scale 1), ported as written there:
    each round makes dense only the layers of the largest raw density."""
    total = sum(math.prod(s) for s in shapes.values())
    target = keep_count(total, sparsity)
    dense: set = set()
    while True:
        divisor = rhs = 0.0
        raw = {}
        for name, shape in shapes.items():
            n = math.prod(shape)
            if name in dense:
                rhs -= n - n * target / total
            else:
                rhs += n * target / total
                raw[name] = sum(shape) / n
                divisor += raw[name] * n
        eps = rhs / divisor
        top = max(raw.values())
        if top * eps > 1:
            dense |= {name for name, p in raw.items() if p == top}
        else:
            return {name: 1.0 if name in dense else raw[name] * eps for name in shapes}


@pytest.mark.parametrize("model_name", ["simple-cnn", "resnet-8"])
@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9, 0.98])
def test_same_densities_as_rigls_loop_on_the_built_in_models(model_name, sparsity):
    channels, size = (1, 28) if model_name == "simple-cnn" else (3, 32)
    model = build_model(model_name, channels=channels, image_size=size, num_classes=10, seed=0)
    shapes = {k: tuple(p.shape) for k, p in prunable_parameters(model).items()}
    ours, rigl = erk_densities(shapes, sparsity), _rigl_densities(shapes, sparsity)
    assert ours == pytest.approx(rigl, rel=1e-12)
    counts = erk_counts(shapes, sparsity)
    assert sum(counts.values()) == keep_count(sum(math.prod(s) for s in shapes.values()),
                                              sparsity)
    for name, shape in shapes.items():  # within one entry of density x size
        assert abs(counts[name] - ours[name] * math.prod(shape)) < 1, name


@pytest.mark.parametrize(("sparsity", "expected"), [
    (0.9, {"conv.weight": 7, "fc1.weight": 40, "fc2.weight": 22}),
    (0.3, {"conv.weight": 18, "fc1.weight": 305, "fc2.weight": 160}),
])
def test_the_pruner_keeps_the_erk_counts_at_random_positions(sparsity, expected):
    masks = []
    for seed in (0, 0, 1):
        model = tiny()
        mask = prune(model, sparsity, PruneSettings("random-erk"), None, seed=seed,
                     input_shape=(1, 6, 6))
        assert {row.name: row.kept for row in mask.report()} == expected
        masks.append(mask)
    assert all(torch.equal(masks[0][k], masks[1][k]) for k in expected)  # same seed
    if sparsity == 0.9:  # another seed: other positions
        assert not torch.equal(masks[0]["fc1.weight"], masks[2]["fc1.weight"])


def test_prunable_biases_get_raw_density_one():
    model = tiny()
    shapes = {k: tuple(p.shape) for k, p in prunable_parameters(model, True).items()}
    assert raw_density(shapes["fc2.bias"]) == 1.0
    mask = prune(model, 0.9, PruneSettings("random-erk", prune_biases=True), None, seed=0,
                 input_shape=(1, 6, 6))
    assert {row.name: row.kept for row in mask.report()} == erk_counts(shapes, 0.9)
    assert mask.kept == keep_count(mask.total, 0.9)
