"""GraSP, SynFlow and random-with-SNIP's-layer-densities against hand computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sparsedp.data.splits import SplitData
from sparsedp.models import build_model
from sparsedp.pruning import (
    PruneData,
    PruneSettings,
    compute_saliency,
    global_topk_mask,
    prunable_parameters,
    prune,
)
from sparsedp.pruning.grasp import grasp_saliency
from sparsedp.pruning.synflow import synflow_saliency

W1 = np.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 1.0]])  # 2 inputs -> 3 hidden
W2 = np.array([[1.0, -0.5, 0.25], [-1.25, 0.75, 0.5]])  # 3 hidden -> 2 classes
X = np.array([[1.0, 2.0], [-0.5, 1.0], [2.0, -1.0]])
Y = np.array([0, 1, 1])


def linear_net(w1: np.ndarray, w2: np.ndarray, relu: bool = False) -> nn.Module:
    layers = [nn.Linear(w1.shape[1], w1.shape[0], bias=False)]
    layers += [nn.ReLU()] if relu else []
    layers += [nn.Linear(w2.shape[1], w2.shape[0], bias=False)]
    net = nn.Sequential(*layers).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(w1))
        net[-1].weight.copy_(torch.from_numpy(w2))
    return net


def grasp_by_hand(w1, w2, x, y, temperature):
    """θ ⊙ Hg for L = mean CE(W2 W1 x / T, y), with g and Hg written out.

    Per example: h = W1 x, z = W2 h, p = softmax(z / T), δ = ∂L/∂z = (p − e_y) / T,
    S = ∂²L/∂z² = (diag p − p pᵀ) / T²; g_W2 = δ hᵀ, g_W1 = W2ᵀ δ xᵀ. Along v = (V1, V2):
    dz = V2 h + W2 V1 x, dδ = S dz, (Hv)_W2 = dδ hᵀ + δ (V1 x)ᵀ, (Hv)_W1 = V2ᵀ δ xᵀ + W2ᵀ dδ xᵀ.
    """
    def per_example(xi, yi):
        h = w1 @ xi
        z = w2 @ h / temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        delta = (p - np.eye(len(p))[yi]) / temperature
        s = (np.diag(p) - np.outer(p, p)) / temperature**2
        return h, delta, s

    n = len(x)
    g1, g2 = np.zeros_like(w1), np.zeros_like(w2)
    for xi, yi in zip(x, y, strict=True):
        h, delta, _ = per_example(xi, yi)
        g2 += np.outer(delta, h) / n
        g1 += np.outer(w2.T @ delta, xi) / n
    v1, v2 = g1, g2
    hv1, hv2 = np.zeros_like(w1), np.zeros_like(w2)
    for xi, yi in zip(x, y, strict=True):
        h, delta, s = per_example(xi, yi)
        d_delta = s @ (v2 @ h + w2 @ v1 @ xi)
        hv2 += (np.outer(d_delta, h) + np.outer(delta, v1 @ xi)) / n
        hv1 += (np.outer(v2.T @ delta, xi) + np.outer(w2.T @ d_delta, xi)) / n
    return w1 * hv1, w2 * hv2


@pytest.mark.parametrize("temperature", [1.0, 200.0])
def test_grasp_scores_by_hand_and_by_the_full_hessian(temperature):
    net = linear_net(W1, W2)
    params = prunable_parameters(net)
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    scores = grasp_saliency(net, params, x, y, temperature, chunk=2)  # chunks change nothing
    hand1, hand2 = grasp_by_hand(W1, W2, X, Y, temperature)
    np.testing.assert_allclose(scores["0.weight"].numpy(), hand1, rtol=1e-9, atol=1e-18)
    np.testing.assert_allclose(scores["1.weight"].numpy(), hand2, rtol=1e-9, atol=1e-18)

    # an independent check: the full 12x12 Hessian of the loss in the flattened weights
    flat = torch.cat([torch.from_numpy(W1).reshape(-1), torch.from_numpy(W2).reshape(-1)])

    def loss(theta):
        a, b = theta[:6].view(3, 2), theta[6:].view(2, 3)
        return F.cross_entropy(x @ a.T @ b.T / temperature, y)

    hessian = torch.autograd.functional.hessian(loss, flat)
    gradient = torch.autograd.functional.jacobian(loss, flat)
    expected = (flat * (hessian @ gradient)).numpy()
    got = torch.cat([scores["0.weight"].reshape(-1), scores["1.weight"].reshape(-1)]).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-18)


def test_grasp_removes_the_highest_minus_theta_hg():
    hand1, hand2 = grasp_by_hand(W1, W2, X, Y, 1.0)
    grasp_score = -np.concatenate([hand1.ravel(), hand2.ravel()])  # the paper's −θ ⊙ Hg
    net = linear_net(W1, W2)
    scores = grasp_saliency(net, prunable_parameters(net), torch.from_numpy(X),
                            torch.from_numpy(Y), 1.0)
    mask = global_topk_mask(scores, sparsity=4 / 12)  # remove 4 of 12
    kept = torch.cat([mask["0.weight"].reshape(-1), mask["1.weight"].reshape(-1)]).numpy()
    removed = np.argsort(-grasp_score)[:4]
    assert set(np.flatnonzero(kept == 0)) == set(removed)


@pytest.fixture(scope="module")
def small(mnist) -> SplitData:
    return SplitData(mnist.dataset, mnist.train_index[:300], mnist.val_index[:100],
                     mnist.mean, mnist.std)


def test_grasp_sample_is_class_balanced_and_seeded(small):
    parameters = {"w": nn.Parameter(torch.zeros(1))}
    x, y = PruneData(parameters, seed=4, train=small).class_balanced(5)
    assert x.shape == (50, 1, 28, 28)
    assert np.bincount(y.numpy(), minlength=10).tolist() == [5] * 10
    again = PruneData(parameters, seed=4, train=small).class_balanced(5)
    other = PruneData(parameters, seed=5, train=small).class_balanced(5)
    assert torch.equal(x, again[0]) and not torch.equal(x, other[0])
    _, few = PruneData(parameters, seed=4, train=small).class_balanced(1000)
    labels = np.asarray(small.dataset.train_labels)[small.train_index]
    assert np.bincount(few.numpy()).tolist() == np.bincount(labels).tolist()  # all there is


def test_grasp_settings_reach_the_scores(small):
    model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=0)

    def scores(**options):
        return compute_saliency(model, PruneSettings("grasp", **options), small, 0)["fc.weight"]

    base = scores(grasp_examples_per_class=3)
    assert torch.equal(base, scores(grasp_examples_per_class=3))
    assert not torch.equal(base, scores(grasp_examples_per_class=3, grasp_temperature=20.0))
    assert not torch.equal(base, scores(grasp_examples_per_class=4))


# --------------------------------------------------------------------------- SynFlow

V1 = np.array([[0.5, -1.0, 2.0, 0.3], [-1.5, 0.25, -0.5, 1.1], [0.7, 0.9, -1.3, -0.2]])
V2 = np.array([[1.0, -0.6, 0.25], [-1.25, 0.75, 0.45]])


def synflow_by_hand(w1, w2, m1, m2):
    """R = 1ᵀ|W2||W1|1: score W1_ij = |W1_ij| Σ_k |W2_ki|, score W2_ki = |W2_ki| Σ_j |W1_ij|."""
    a1, a2 = np.abs(w1) * m1, np.abs(w2) * m2
    return a1 * a2.sum(axis=0)[:, None], a2 * a1.sum(axis=1)[None, :]


def test_synflow_single_shot_by_hand():
    net = linear_net(V1, V2, relu=True)
    scores = synflow_saliency(net, prunable_parameters(net), (4,), 0.5, iterations=1)
    s1, s2 = synflow_by_hand(V1, V2, 1.0, 1.0)
    np.testing.assert_allclose(scores["0.weight"].numpy(), s1, rtol=1e-12)
    np.testing.assert_allclose(scores["2.weight"].numpy(), s2, rtol=1e-12)
    assert torch.equal(net[0].weight, torch.from_numpy(V1))  # signs kept


CHAIN = [  # 4 -> 3 -> 3 -> 2, where the schedule changes the final mask
    np.array([[2.04, -2.56, 0.42, -0.57], [-0.45, -0.22, -2.02, -0.23],
              [-0.87, 3.32, 0.23, -0.35]]),
    np.array([[-0.28, -0.67, -1.06], [-0.39, 0.48, -0.24], [0.96, -0.2, 0.02]]),
    np.array([[1.55, 0.55, -0.51], [-0.18, 0.54, 1.94]]),
]


def chain_synflow_by_hand(weights, masks):
    """Score of W_l[i, j] = (1ᵀ|W_L|…|W_l+1|)_i · |W_l[i, j]| · (|W_l−1|…|W_1| 1)_j."""
    a = [np.abs(w) * m for w, m in zip(weights, masks, strict=True)]
    into = [np.ones(a[0].shape[1])]
    for layer in a:
        into.append(layer @ into[-1])
    out_of = [np.ones(a[-1].shape[0])]
    for layer in reversed(a):
        out_of.insert(0, out_of[0] @ layer)
    return [out_of[i + 1][:, None] * a[i] * into[i][None, :] for i in range(len(a))]


def chain_mask_by_hand(weights, sparsity, iterations, schedule="exponential"):
    masks = [np.ones_like(w) for w in weights]
    total = sum(w.size for w in weights)
    for k in range(1, iterations + 1):
        scores = chain_synflow_by_hand(weights, masks)
        flat = np.concatenate([np.where(m > 0, x, -1).ravel() for x, m in zip(scores, masks,
                                                                              strict=True)])
        if schedule == "exponential":
            keep_fraction = (1 - sparsity) ** (k / iterations)
        else:
            keep_fraction = 1 - sparsity * k / iterations
        kept = np.zeros(total)
        kept[np.argsort(-flat, kind="stable")[: int(np.floor(total * keep_fraction + 0.5))]] = 1
        masks, offset = [], 0
        for w in weights:
            masks.append(kept[offset : offset + w.size].reshape(w.shape))
            offset += w.size
    return masks


def test_synflow_iterative_mask_by_hand():
    """Four rounds to sparsity 0.8 of 27 weights keep 18, 12, 8, then 5."""
    expected = chain_mask_by_hand(CHAIN, 0.8, 4)
    # the check has teeth: one shot, or a linear schedule, gives another mask here
    for other in (chain_mask_by_hand(CHAIN, 0.8, 1), chain_mask_by_hand(CHAIN, 0.8, 4, "linear")):
        assert not all(np.array_equal(a, b) for a, b in zip(expected, other, strict=True))
    net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 3, bias=False),
                        nn.ReLU(), nn.Linear(3, 2, bias=False)).double()
    with torch.no_grad():
        for layer, w in zip(net[::2], CHAIN, strict=True):
            layer.weight.copy_(torch.from_numpy(w))
    mask = prune(net, 0.8, PruneSettings("synflow", synflow_iterations=4), None,
                 input_shape=(4,))
    for i, (layer, w, m) in enumerate(zip(net[::2], CHAIN, expected, strict=True)):
        np.testing.assert_array_equal(mask[f"{2 * i}.weight"].numpy(), m)
        np.testing.assert_array_equal(layer.weight.detach().numpy(), w * m)  # signs kept


def test_synflow_conserves_flow_per_neuron_and_per_layer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        for layer in net[::2]:
            layer.bias.zero_()
    scores = synflow_saliency(net, prunable_parameters(net, True), (5,), 0.5, iterations=1)
    weights = [scores[f"{i}.weight"] for i in (0, 2, 4)]
    totals = [w.sum().item() for w in weights]
    np.testing.assert_allclose(totals, [totals[0]] * 3, rtol=1e-12)  # equal across layers
    for incoming, outgoing in itertools.pairwise(weights):
        # flow into each hidden neuron (its row) equals the flow out of it (its column)
        np.testing.assert_allclose(incoming.sum(dim=1).numpy(), outgoing.sum(dim=0).numpy(),
                                   rtol=1e-12)
    # and each layer's total is R itself: R is linear in each layer's weights
    r = torch.ones(1, 5, dtype=torch.float64)
    for layer in net[::2]:
        r = r @ layer.weight.detach().double().abs().T
    np.testing.assert_allclose(totals[0], r.sum().item(), rtol=1e-12)


def test_synflow_layer_totals_are_equal_through_convolutions_and_pooling():
    model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=0)
    scores = synflow_saliency(model, prunable_parameters(model), (1, 28, 28), 0.9, iterations=1)
    totals = [s.sum().item() for s in scores.values()]
    np.testing.assert_allclose(totals, [totals[0]] * len(totals), rtol=1e-10)


def test_synflow_with_batch_norm_leaves_the_model_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(2 * 4 * 4, 3))
    with torch.no_grad():
        net[1].running_mean.fill_(-0.5)
        net[1].weight.fill_(-2.0)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    scores = synflow_saliency(net, prunable_parameters(net), (1, 6, 6), 0.5, iterations=3)
    assert all(bool(torch.isfinite(s).all()) for s in scores.values())
    assert net.training
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key


# --------------------------------------------------------------------------- random, SNIP's layers


def test_random_with_snip_layer_densities_keeps_snips_counts(small):
    def masks(method, seed):
        model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=0)
        return prune(model, 0.9, PruneSettings(method), small, seed=seed)

    snip, control = masks("snip", 1), masks("random-snip-layers", 1)
    assert [r.kept for r in control.report()] == [r.kept for r in snip.report()]
    assert not torch.equal(control["conv2.weight"], snip["conv2.weight"])
    other = masks("random-snip-layers", 2)
    assert not torch.equal(control["conv2.weight"], other["conv2.weight"])


def test_the_worker_makes_random_snip_layers_from_the_cached_snip_saliency(mnist, tmp_path):
    from sparsedp.execution.backends.worker import WorkerContext
    from sparsedp.specs import EngineOptions, StudySpec
    from sparsedp.training import TrialRun

    def config(method):
        study = StudySpec("mnist-simplecnn-momentum", 0.9, 32, max_steps=8, eval_every=8,
                          pruning=PruneSettings(method, snip_batches=2))
        return study.trial_config(3, {"lr": 0.05, "momentum": 0.9})

    context = WorkerContext(EngineOptions(), None, str(tmp_path), {})
    context._data["mnist"] = mnist
    snip = context.saliency(config("snip"), mnist)
    control = context.saliency(config("random-snip-layers"), mnist)
    assert len(list((tmp_path / "saliency").glob("*.pt"))) == 1  # one SNIP saliency, shared
    assert snip is not None and control is not None
    run = TrialRun(config("random-snip-layers"), mnist, saliency=control)
    fresh = TrialRun(config("random-snip-layers"), mnist)  # computed by the pruner itself
    for name, kept in fresh.mask.items():
        assert torch.equal(run.mask[name], kept), name
