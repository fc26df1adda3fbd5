import numpy as np
import pytest
import torch
from torch import nn

from sparsedp.models import build_model
from sparsedp.pruning import (
    Mask,
    MaskError,
    PruneSettings,
    global_topk_mask,
    keep_count,
    prunable_parameters,
    prune,
    snip_saliency,
)
from sparsedp.training import TFOptimizer


def test_snip_saliency_by_hand_on_a_linear_net():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    w = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
    with torch.no_grad():
        net.weight.copy_(w)
        net.bias.zero_()
    x = torch.tensor([[1.0, 2.0, -1.0], [0.5, -1.0, 1.0]])
    y = torch.tensor([0, 1])
    weight = torch.full((2,), 0.5)  # one mini-batch of 2: mean loss
    scores = snip_saliency(net, {"weight": net.weight}, [(x, y, weight)])

    # by hand: dL/dW = mean_i (softmax(W x_i) - onehot(y_i)) x_i^T, saliency = |W * dL/dW|
    wn, xn = w.numpy().astype(np.float64), x.numpy().astype(np.float64)
    grad = np.zeros_like(wn)
    for xi, yi in zip(xn, [0, 1], strict=True):
        z = wn @ xi
        p = np.exp(z - z.max())
        p /= p.sum()
        p[yi] -= 1.0
        grad += np.outer(p, xi) / 2
    expected = np.abs(wn * grad)
    np.testing.assert_allclose(scores["weight"].numpy(), expected, rtol=1e-5)

    # keep 2 of 6: the two largest saliencies
    mask = global_topk_mask(scores, sparsity=4 / 6)["weight"]
    flat_order = np.argsort(-expected.ravel(), kind="stable")[:2]
    expected_mask = np.zeros(6)
    expected_mask[flat_order] = 1
    np.testing.assert_array_equal(mask.numpy().ravel(), expected_mask)


def test_global_topk_is_global_and_keeps_round_count():
    scores = {"a": torch.tensor([1.0, 2.0, 3.0]), "b": torch.tensor([[10.0, 0.5], [9.0, 0.1]])}
    mask = global_topk_mask(scores, 0.5)  # keep round(7 * .5 + .5) = 4: 10, 9, 3, 2
    assert mask["a"].tolist() == [0.0, 1.0, 1.0]
    assert mask["b"].tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert keep_count(62_240, 0.9) == 6224


def test_mask_validation():
    net = nn.Linear(2, 2)
    with pytest.raises(MaskError, match="shape"):
        Mask({"weight": torch.ones(3, 2)}, net)
    with pytest.raises(MaskError, match="0 and 1"):
        Mask({"weight": torch.full((2, 2), 0.5)}, net)
    with pytest.raises(MaskError, match="does not have"):
        Mask({"conv.weight": torch.ones(2, 2)}, net)


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_sparsity_out_of_range(sparsity):
    net = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune(net, sparsity, PruneSettings("magnitude"))


def test_empty_layer_warns():
    net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
    with torch.no_grad():
        net[1].weight.fill_(1e-6)
    with pytest.warns(RuntimeWarning, match="every weight of 1.weight"):
        mask = prune(net, 0.75, PruneSettings("magnitude"))
    assert mask.empty_layers() == ["1.weight"]


@pytest.mark.parametrize("method", ["magnitude", "random"])
def test_controls_reach_requested_sparsity(method):
    model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=0)
    mask = prune(model, 0.9, PruneSettings(method), seed=1)
    assert mask.total == 62_240 and mask.kept == 6224
    assert mask.sparsity == pytest.approx(0.9, abs=1e-4)
    assert "all prunable" in mask.format_report()


def test_biases_optionally_prunable():
    model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=0)
    assert len(prunable_parameters(model)) == 3
    assert len(prunable_parameters(model, include_biases=True)) == 6


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov"])
def test_pruned_weights_stay_zero_through_training(kind):
    torch.manual_seed(0)
    model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=0)
    mask = prune(model, 0.8, PruneSettings("random"), seed=0)
    opt = TFOptimizer(model.parameters(), kind, 0.9)
    for _ in range(5):
        x = torch.randn(8, 1, 28, 28)
        y = torch.randint(0, 10, (8,))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        mask.mask_gradients_(model)
        opt.step(0.5)
    params = dict(model.named_parameters())
    for name, m in mask.items():
        assert torch.count_nonzero(params[name][m == 0]) == 0, name
        assert torch.count_nonzero(params[name][m == 1]) == int(m.sum()), name
    for p, acc in zip(opt.parameters, opt.accumulators, strict=False):
        for name, m in mask.items():
            if params[name] is p:
                assert torch.count_nonzero(acc[m == 0]) == 0, name


def test_mask_save_load_roundtrip(tmp_path):
    model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=0)
    mask = prune(model, 0.5, PruneSettings("magnitude"))
    mask.save(tmp_path / "mask.pt")
    mask.save_report(tmp_path / "report.json")
    loaded = Mask.load(tmp_path / "mask.pt", model)
    assert loaded.kept == mask.kept
    assert (tmp_path / "report.json").read_text().count('"name"') == 3
