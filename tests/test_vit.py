"""The Vision Transformer and AdamW workloads: the model contract, every pruner on a ViT,
AdamW by hand with a mask, and a real trial on MNIST (docs/workloads.md)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

from sparsedp.cli.main import main
from sparsedp.data.splits import SplitData
from sparsedp.models import build_model, count_parameters, prunable_parameters
from sparsedp.pruning import (
    PruneSettings,
    compute_saliency,
    keep_count,
    prune,
    pruner_names,
)
from sparsedp.pruning.mask import Mask
from sparsedp.specs import load_experiment
from sparsedp.training import TrialConfig, TrialRun, make_optimizer
from sparsedp.training.batched import StackedTFOptimizer
from sparsedp.training.optimizers import ADAMW_WEIGHT_DECAY, AdamW, decayed_weights

SMALL = {"patch": 7, "dim": 16, "depth": 2, "heads": 2, "mlp_dim": 32}
FAST = {"synflow": {"synflow_iterations": 10}, "grasp": {"grasp_examples_per_class": 5}}
SPARSITY = 0.8
NAMED = ("snip", "grasp", "synflow")  # the pruners that differentiate through the network


def vit(seed: int = 0, channels: int = 1, size: int = 28, **options) -> nn.Module:
    return build_model("vit", channels=channels, image_size=size, num_classes=10, seed=seed,
                       **(options or SMALL))


@pytest.fixture(scope="module")
def small(mnist) -> SplitData:
    return SplitData(mnist.dataset, mnist.train_index[:256], mnist.val_index[:100],
                     mnist.mean, mnist.std)


# --- the model contract -----------------------------------------------------------------

def test_workload_sizes_count_by_hand():
    model = vit(patch=7, dim=64, depth=4, heads=4, mlp_dim=128)
    # patch conv 49·64, per block q/k/v/out 4·64·64 and MLP 2·64·128, head 64·10
    prunable = prunable_parameters(model)
    assert sum(p.numel() for p in prunable.values()) == 49 * 64 + 4 * (4 * 64 * 64
                                                                      + 2 * 64 * 128) + 640
    # + class token (64) and 17 position embeddings (17·64), which stay dense
    assert count_parameters(model)["weights"] == 134_848 + 64 + 17 * 64
    cifar = vit(channels=3, size=32, patch=4, dim=64, depth=4, heads=4, mlp_dim=128)
    assert cifar(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert cifar.pos_embed.shape == (1, 65, 64)


def test_prunable_are_attention_mlp_embedding_and_head_weights():
    names = set(prunable_parameters(vit()))
    for block in range(2):
        for layer in ("attn.query", "attn.key", "attn.value", "attn.out", "fc1", "fc2"):
            assert f"blocks.{block}.{layer}.weight" in names
    assert {"patch_embed.weight", "head.weight"} <= names
    assert not any("norm" in n or n in ("cls_token", "pos_embed") or n.endswith("bias")
                   for n in names)
    with_biases = set(prunable_parameters(vit(), include_biases=True)) - names
    assert "blocks.0.norm1.weight" in with_biases and "head.bias" in with_biases
    assert "cls_token" not in with_biases and "pos_embed" not in with_biases


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_logits_shape_and_examples_independent(pool):
    model = vit(**SMALL, pool=pool)
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    out = model(x)
    assert out.shape == (5, 10)
    assert torch.allclose(model(x[2:3]), out[2:3], atol=1e-6)  # no mixing across the batch
    model.eval()  # no dropout: training and evaluation mode compute the same
    assert torch.equal(model(x), out)
    assert (model.cls_token is None) == (pool == "mean")


def test_initialisation_is_seeded_and_variance_scaled():
    a, b, c = vit(seed=3), vit(seed=3), vit(seed=4)
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters(),
                               strict=True):
        assert torch.equal(p, q), name
        if "norm" not in name and not name.endswith("bias"):
            assert not torch.equal(p, r), name
    big = vit(seed=0, patch=7, dim=64, depth=4, heads=4, mlp_dim=128)
    fc1 = big.blocks[0].fc1.weight.detach()  # fan-in 64: std 1/8 after truncation at ±2σ
    assert fc1.std().item() == pytest.approx(1 / 8, rel=0.05)
    assert float(fc1.abs().max()) <= 2 / 8 / 0.87962566 + 1e-6
    pos = big.pos_embed.detach()
    assert float(pos.abs().max()) <= 0.04 and float(pos.std()) > 0.01
    assert torch.equal(big.blocks[0].attn.query.bias, torch.zeros(64))
    assert torch.equal(big.norm.weight, torch.ones(64))


@pytest.mark.parametrize("options,fragment", [
    ({"patch": 5}, "patch 5 does not divide the image size 28"),
    ({"dim": 30, "heads": 4}, "dim 30 is not a multiple of heads 4"),
    ({"pool": "max"}, "pool must be one of cls, mean"),
    ({"depth": 0}, "depth must be a whole number >= 1"),
])
def test_bad_options_give_one_line(options, fragment):
    with pytest.raises(ValueError) as info:
        vit(**{**SMALL, **options})
    assert fragment in str(info.value) and "\n" not in str(info.value)


# --- every pruner on a ViT (LayerNorm, softmax attention, GELU) ---------------------------

@pytest.mark.parametrize("name", pruner_names())
def test_every_pruner_prunes_a_vit_exactly(name, small):
    for biases in (False, True):
        settings = PruneSettings(name, biases, **FAST.get(name, {}))
        model = vit()
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        scores = compute_saliency(model, settings, small, 3, sparsity=SPARSITY)
        assert list(scores) == list(prunable_parameters(model, biases))
        assert all(bool(torch.isfinite(s).all()) for s in scores.values()), name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mask = prune(model, SPARSITY, settings, small, seed=3)
        emptied = [str(w.message) for w in caught if "removed every weight" in str(w.message)]
        if name == "synflow":  # its all-ones input makes attention uniform: queries and keys
            # score zero and go first, and the product says so
            assert emptied and "blocks.0.attn.query.weight" in emptied[0], emptied
        else:
            assert not emptied, (name, emptied)
        assert mask.kept == keep_count(mask.total, SPARSITY)
        params = dict(model.named_parameters())
        for key, m in mask.items():
            assert torch.count_nonzero(params[key][m == 0]) == 0, key
            assert torch.equal(params[key][m == 1], before[key][m == 1]), key
        for key, p in params.items():
            if key not in mask.names:
                assert torch.equal(p, before[key]), key


@pytest.mark.parametrize("name", NAMED)
def test_gradient_pruners_score_through_attention_and_norms(name, small):
    """Every weight tensor, queries and keys included (their gradient passes the softmax),
    gets scores that are not all zero, so the ranking sees the whole transformer (SynFlow's
    first round: later rounds mark what they pruned with -1)."""
    model = vit()
    options = {"synflow_iterations": 1} if name == "synflow" else FAST.get(name, {})
    scores = compute_saliency(model, PruneSettings(name, **options), small, 3,
                              sparsity=SPARSITY)
    silent = [k for k, s in scores.items() if not bool((s != 0).any())]
    assert silent == []


# --- AdamW -------------------------------------------------------------------------------

def test_adamw_two_masked_steps_by_hand():
    """w = [1, 2] with the second weight pruned, b = 0.5 (not decayed), lr 0.1, λ 0.05,
    β = (0.9, 0.999), g_w = [0.5, 3] (masked to [0.5, 0]) and g_b = -0.2 at both steps.
    Step 1: m = 0.05, v = 2.5e-4, m̂ = 0.5, v̂ = 0.25: w₀ = 1·(1 − 0.005) − 0.1 = 0.895.
    Step 2: m = 0.095, v = 4.9975e-4, m̂ = 0.095/0.19 = 0.5, v̂ = 4.9975e-4/1.999e-3 = 0.25:
    w₀ = 0.895·0.995 − 0.1 = 0.790525. b: 0.5 + 0.1 = 0.6, then 0.7."""
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0]]))
        layer.bias.fill_(0.5)
    mask = Mask({"weight": torch.tensor([[1.0, 0.0]])}, layer)
    mask.apply_()
    optimizer = make_optimizer(layer, "adamw", 0.9)
    assert isinstance(optimizer, AdamW)
    expected = [(0.895, 0.6), (0.790525, 0.7)]
    for want_w, want_b in expected:
        layer.weight.grad = torch.tensor([[0.5, 3.0]])
        layer.bias.grad = torch.tensor([-0.2])
        mask.mask_gradients_()
        optimizer.step(0.1)
        assert layer.weight[0, 0].item() == pytest.approx(want_w, abs=1e-6)
        assert layer.bias.item() == pytest.approx(want_b, abs=1e-6)
        assert layer.weight[0, 1].item() == 0.0  # exactly: moments zero, decay of zero
    state = optimizer.optimizer.state[layer.weight]
    assert state["exp_avg"][0, 1].item() == 0.0 and state["exp_avg_sq"][0, 1].item() == 0.0


def test_adamw_decays_only_layer_weights_and_takes_beta1_from_momentum():
    model = vit()
    decayed = {id(p) for p in decayed_weights(model)}
    named = dict(model.named_parameters())
    assert {n for n, p in named.items() if id(p) in decayed} == set(prunable_parameters(model))
    optimizer = make_optimizer(model, "adamw", None)
    groups = {g["weight_decay"]: g for g in optimizer.optimizer.param_groups}
    assert set(groups) == {ADAMW_WEIGHT_DECAY, 0.0}
    assert groups[0.0]["betas"] == (0.9, 0.999)  # beta1 0.9 when no momentum is given
    assert {id(p) for p in groups[0.0]["params"]} == {id(p) for p in named.values()} - decayed
    assert make_optimizer(model, "adamw", 0.8).optimizer.param_groups[0]["betas"][0] == 0.8
    with pytest.raises(ValueError, match=r"AdamW's beta1\) must be in \[0, 1\)"):
        make_optimizer(model, "adamw", 1.0)


def test_adamw_workload_needs_no_momentum_but_checks_one_given():
    config = TrialConfig("mnist-vit-adamw", 0.9, 32, lr=1e-3)
    assert config.momentum is None
    with pytest.raises(ValueError, match="beta1"):
        TrialConfig("mnist-vit-adamw", 0.9, 32, lr=1e-3, momentum=1.5)


def test_batched_engine_refuses_adamw_with_the_fix():
    with pytest.raises(ValueError, match="batched_trials = 1"):
        StackedTFOptimizer("adamw", {"w": torch.zeros(2, 3)}, [0.9, 0.9])


# --- workloads, experiment files, a real trial ---------------------------------------------

def test_workloads_command_lists_the_vit_workloads(capsys):
    assert main(["workloads", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name, dataset, goal, budget in (("mnist-vit-adamw", "mnist", 0.02, 40_000),
                                        ("cifar10-vit-adamw", "cifar10", 0.4, 100_000)):
        row = rows[name]
        assert (row["dataset"], row["model"], row["optimizer"], row["schedule"]) == (
            dataset, "vit", "adamw", "constant")
        assert (row["searched"], row["goal_error"], row["max_steps"]) == (["lr"], goal, budget)


def test_experiment_file_with_an_adamw_workload_searching_beta1(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text("""
name = "vit"
sparsities = [0.0, 0.9]
batch_sizes = [32]
trials = 2

[workloads.mnist-vit-small]
dataset = "mnist"
model = "vit"
optimizer = "adamw"
searched = ["lr", "momentum"]
goal_error = 0.1
max_steps = 500

[workloads.mnist-vit-small.model_options]
depth = 2

[search.lr]
low = 1e-4
high = 1e-2

[search.momentum]
low = 0.8
high = 0.99
""")
    spec = load_experiment(path)
    study = spec.studies()[0]
    points = study.space().points(2)
    assert all(1e-4 <= p["lr"] <= 1e-2 and 0.8 <= p["momentum"] <= 0.99 for p in points)
    config = study.trial_config(0, points[0])
    assert config.spec.optimizer == "adamw" and config.momentum == points[0]["momentum"]


@pytest.mark.slow
def test_vit_trial_on_real_mnist_reaches_goal_with_pruned_weights_zero(mnist):
    config = TrialConfig("mnist-vit-adamw", 0.9, 32, lr=2e-3, goal_error=0.5, max_steps=400,
                         pruning=PruneSettings("snip", snip_batches=1))
    run = TrialRun(config, mnist)
    run.advance()
    result = run.result()
    assert result.status == "complete", result.message
    assert result.steps_to_result is not None and result.steps_to_result <= 400
    assert result.final_val_error is not None and result.final_val_error <= 0.5
    assert run.mask.sparsity == pytest.approx(0.9, abs=1e-4)
    params = dict(run.model.named_parameters())
    state = run.optimizer.optimizer.state
    for name, m in run.mask.items():
        assert torch.count_nonzero(params[name][m == 0]) == 0, name
        assert torch.count_nonzero(state[params[name]]["exp_avg"][m == 0]) == 0, name
        assert bool((params[name][m == 1] != 0).any()), name
