"""The pruner contract (docs/pruners.md), checked for every registered pruner, and the registry.

Each pruner is run on a small CNN (two 3x3 convolutions and a linear layer, 3,204 weights)
and 256 real MNIST training examples, so the whole suite takes a few seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from sparsedp.data.splits import SplitData
from sparsedp.pruning import (
    PruneData,
    Pruner,
    PruneSettings,
    compute_saliency,
    get_pruner,
    keep_count,
    prunable_parameters,
    prune,
    pruner_names,
    register_pruner,
    registry,
)

SPARSITY = 0.8
FAST = {"synflow": {"synflow_iterations": 10}, "grasp": {"grasp_examples_per_class": 5}}


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, stride=2)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.fc(x.flatten(1))


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TinyCNN()


@pytest.fixture(scope="module")
def small(mnist) -> SplitData:
    return SplitData(mnist.dataset, mnist.train_index[:256], mnist.val_index[:100],
                     mnist.mean, mnist.std)


def settings_for(name: str, prune_biases: bool = False) -> PruneSettings:
    return PruneSettings(name, prune_biases, **FAST.get(name, {}))


def scores_of(name: str, data: SplitData | None, seed: int = 3, **kw) -> dict:
    model = tiny_model()
    return compute_saliency(model, settings_for(name), data, seed, sparsity=SPARSITY,
                            input_shape=(1, 28, 28), **kw)


@pytest.mark.parametrize("name", pruner_names())
def test_scores_cover_the_prunable_parameters_with_finite_values(name, small):
    model = tiny_model()
    for biases in (False, True):
        parameters = prunable_parameters(model, biases)
        scores = compute_saliency(model, settings_for(name, biases), small, 3, sparsity=SPARSITY)
        assert list(scores) == list(parameters)
        for key, p in parameters.items():
            assert scores[key].shape == p.shape, key
            assert bool(torch.isfinite(scores[key]).all()), key


@pytest.mark.parametrize("name", pruner_names())
def test_same_seed_same_scores(name, small):
    first, second = scores_of(name, small), scores_of(name, small)
    for key in first:
        assert torch.equal(first[key], second[key]), key


@pytest.mark.parametrize("name", pruner_names())
def test_prune_honours_the_sparsity_and_zeroes_exactly(name, small):
    for biases in (False, True):
        model = tiny_model()
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        mask = prune(model, SPARSITY, settings_for(name, biases), small, seed=3)
        assert mask.kept == keep_count(mask.total, SPARSITY)
        params = dict(model.named_parameters())
        for key, m in mask.items():
            assert torch.count_nonzero(params[key][m == 0]) == 0, key
            assert torch.equal(params[key][m == 1], before[key][m == 1]), key
        for key, p in params.items():  # parameters that are not prunable stay as they were
            if key not in mask.names:
                assert torch.equal(p, before[key]), key


@pytest.mark.parametrize("name", pruner_names())
def test_the_model_and_the_global_generators_are_left_alone(name, small):
    model = tiny_model()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch_rng, numpy_rng = torch.get_rng_state(), np.random.get_state()
    compute_saliency(model, settings_for(name), small, 3, sparsity=SPARSITY)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert np.array_equal(np.random.get_state()[1], numpy_rng[1])


@pytest.mark.parametrize("name", pruner_names())
def test_data_free_pruners_need_no_data_and_others_say_so(name, small):
    pruner = get_pruner(name)
    if pruner.needs_data:
        with pytest.raises(ValueError, match=f"pruner '{name}' needs training data"):
            scores_of(name, None)
        return
    without, with_data = scores_of(name, None), scores_of(name, small)
    for key in without:
        assert torch.equal(without[key], with_data[key]), key
    mask = prune(tiny_model(), SPARSITY, settings_for(name), None, seed=3,
                 input_shape=(1, 28, 28))
    assert mask.kept == keep_count(mask.total, SPARSITY)


@pytest.mark.parametrize("name", pruner_names())
def test_pruners_that_use_the_sparsity_require_it(name, small):
    if not get_pruner(name).uses_sparsity:
        return
    with pytest.raises(ValueError, match="needs the target sparsity"):
        compute_saliency(tiny_model(), settings_for(name), small, 3)


@pytest.mark.parametrize("ablation", ["shuffle", "invert"])
@pytest.mark.parametrize("name", pruner_names())
def test_ablations_compose_with_every_pruner(name, ablation, small):
    """Every pruner under the mask ablations (``reinit`` acts where the trial's model is
    built: tests/test_ablations.py) keeps exactly the count, zeroes exactly, and keeps
    what the ablation promises."""
    settings = dataclasses.replace(settings_for(name), ablation=ablation)
    model = tiny_model()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    mask = prune(model, SPARSITY, settings, small, seed=3)
    assert mask.kept == keep_count(mask.total, SPARSITY)
    params = dict(model.named_parameters())
    for key, m in mask.items():
        assert torch.count_nonzero(params[key][m == 0]) == 0, key
        assert torch.equal(params[key][m == 1], before[key][m == 1]), key
    plain = prune(tiny_model(), SPARSITY, settings_for(name), small, seed=3)
    if ablation == "shuffle":
        again = prune(tiny_model(), SPARSITY, settings, small, seed=3)
        assert [r.kept for r in mask.report()] == [r.kept for r in plain.report()]
        assert all(torch.equal(mask[k], again[k]) for k in mask.names)  # deterministic
        # moved; random-snip-layers is already SNIP's mask shuffled by the same generator,
        # and the same permutations of the same counts give the same mask again
        moved = any(not torch.equal(mask[k], plain[k]) for k in mask.names)
        assert moved == (name != "random-snip-layers")
    else:  # every kept score is at most every pruned one
        scores = compute_saliency(tiny_model(), settings, small, 3, sparsity=SPARSITY)
        flat = torch.cat([scores[k].double().flatten() for k in mask.names])
        kept = torch.cat([mask[k].flatten() for k in mask.names]).bool()
        assert flat[kept].max() <= flat[~kept].min()


def test_built_in_controls_keep_their_masks():
    """magnitude and random give the masks they gave before the registry (same salt)."""
    model = tiny_model()
    scores = compute_saliency(model, PruneSettings("random"), None, 5)
    generator = torch.Generator().manual_seed(5 + 7919)
    for key, p in prunable_parameters(model).items():
        assert torch.equal(scores[key], torch.rand(p.shape, generator=generator)), key


# --------------------------------------------------------------------------- the registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test are forgotten after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def _weights_by_index(model, data: PruneData, settings):
    return {k: torch.arange(p.numel(), dtype=torch.float32).view(p.shape)
            for k, p in data.parameters.items()}


def test_a_plugin_pruner_is_used_by_prune_and_accepted_by_settings(scratch_registry, small):
    assert "by-index" not in pruner_names()
    register_pruner(Pruner("by-index", _weights_by_index, "keeps late entries", version="1",
                           needs_data=False))
    assert pruner_names()[-1] == "by-index"
    model = tiny_model()
    with pytest.warns(RuntimeWarning, match="every weight of conv1.weight"):
        mask = prune(model, 0.5, PruneSettings("by-index"), None, seed=0)
    assert mask["fc.weight"].view(-1)[-1] == 1 and mask["conv1.weight"].view(-1)[0] == 0


def test_registering_twice_is_an_error_unless_replacing(scratch_registry):
    pruner = Pruner("mine", _weights_by_index, version="1")
    assert register_pruner(pruner) is pruner
    with pytest.raises(ValueError, match=r"already registered.*replace=True"):
        register_pruner(Pruner("mine", _weights_by_index, version="2"))
    register_pruner(Pruner("mine", _weights_by_index, version="2"), replace=True)
    assert get_pruner("mine").version == "2"
    with pytest.raises(ValueError, match="built in and cannot be replaced"):
        register_pruner(Pruner("snip", _weights_by_index), replace=True)


def test_unknown_and_malformed_pruners():
    with pytest.raises(ValueError, match="unknown pruner 'snp'; known: snip, magnitude"):
        get_pruner("snp")
    with pytest.raises(ValueError, match="unknown pruner"):
        PruneSettings("snp")
    with pytest.raises(ValueError, match="must be letters"):
        Pruner("my pruner", _weights_by_index)
    with pytest.raises(ValueError, match="must be callable"):
        Pruner("p", "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expects a Pruner"):
        register_pruner("snip")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: [], "returned list, expected a dict"),
        (lambda d: {k: torch.ones(p.shape) for k, p in list(d.parameters.items())[1:]},
         "no scores for conv1.weight"),
        (lambda d: {**{k: torch.ones(p.shape) for k, p in d.parameters.items()},
                    "conv1.bias": torch.ones(4)}, "conv1.bias, which are not prunable"),
        (lambda d: {k: torch.ones(3) for k in d.parameters}, "have shape (3,)"),
        (lambda d: {k: torch.full(p.shape, float("nan")) for k, p in d.parameters.items()},
         "not all finite"),
    ],
)
def test_scores_breaking_the_contract_give_one_line_naming_the_pruner(
    scratch_registry, make, fragment
):
    register_pruner(Pruner("broken", lambda model, data, settings: make(data),
                           needs_data=False, version="0"))
    with pytest.raises(ValueError) as info:
        prune(tiny_model(), 0.5, PruneSettings("broken"))
    message = str(info.value)
    assert message.startswith("pruner 'broken'") and fragment in message and "\n" not in message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", pruner_names())
def test_a_model_on_the_gpu_gets_the_same_mask(name, small):
    cpu = prune(tiny_model(), SPARSITY, settings_for(name), small, seed=3)
    gpu = prune(tiny_model().cuda(), SPARSITY, settings_for(name), small, seed=3)
    differing = sum(int((cpu[k] != gpu[k].cpu()).sum()) for k in cpu.names)
    assert differing <= cpu.total // 100, (name, differing)  # rounding swaps near-ties
    assert gpu.kept == cpu.kept
