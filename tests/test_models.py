import math

import pytest
import torch

from sparsedp.models import build_model, count_parameters, variance_scaling_std
from sparsedp.models.init import TRUNCATED_NORMAL_STD_CORRECTION, fan_in
from sparsedp.models.resnet import SameConv2d


def test_simple_cnn_parameter_counts_mnist():
    model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=0)
    assert count_parameters(model) == {"weights": 62_240, "biases": 106}
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_simple_cnn_hidden_layer_variant():
    model = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=0,
                        hidden_units=1024)
    # 800 + 51,200 + 1024*1024 + 1024*10 weights
    assert count_parameters(model) == {"weights": 800 + 51_200 + 1_048_576 + 10_240,
                                       "biases": 32 + 64 + 1024 + 10}


def test_resnet8_parameter_counts_and_shape():
    model = build_model("resnet-8", channels=3, image_size=32, num_classes=10, seed=0)
    assert count_parameters(model) == {"weights": 74_800, "biases": 250}
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_same_padding_matches_tensorflow_for_stride_two():
    # TF SAME on 4x4, k=3, s=2 pads 0 on top/left and 1 on bottom/right.
    conv = SameConv2d(1, 1, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left of each window
        conv.bias.zero_()
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = conv(x)
    assert out.shape == (1, 1, 2, 2)
    # windows start at rows/cols 0 and 2 (no top/left padding)
    assert out.flatten().tolist() == [0.0, 2.0, 8.0, 10.0]


def _explicitly_padded(x: torch.Tensor, conv: SameConv2d) -> torch.Tensor:
    """TF SAME padding done by hand, then an unpadded convolution (the old forward)."""
    stride = conv.stride[0]
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((-(-size // stride) - 1) * stride + 3 - size, 0)
        pads += [total // 2, total - total // 2]
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, pads), conv.weight, conv.bias,
                                      stride)


@pytest.mark.parametrize("size", [4, 7, 32])
@pytest.mark.parametrize("stride", [1, 2])
def test_same_conv_is_explicit_tf_same_padding_bit_for_bit(size, stride):
    torch.manual_seed(size)
    conv = SameConv2d(5, 6, stride=stride)
    x = torch.randn(3, 5, size, size, requires_grad=True)
    ours = conv(x)
    reference = _explicitly_padded(x, conv)
    assert torch.equal(ours, reference)
    grad = torch.randn_like(ours)
    ours_grads = torch.autograd.grad(ours, (x, conv.weight, conv.bias), grad)
    reference_grads = torch.autograd.grad(reference, (x, conv.weight, conv.bias), grad)
    for a, b in zip(ours_grads, reference_grads, strict=True):
        assert torch.equal(a, b)


def test_resnet8_trains_as_with_explicit_padding_bit_for_bit():
    """Ten Nesterov steps: padding inside the stride-1 convolutions changes no bit."""
    ours = build_model("resnet-8", channels=3, image_size=32, num_classes=10, seed=3)
    reference = build_model("resnet-8", channels=3, image_size=32, num_classes=10, seed=3)
    for conv in reference.modules():
        if isinstance(conv, SameConv2d):
            conv.forward = lambda x, conv=conv: _explicitly_padded(x, conv)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 32, 32, generator=generator)
    y = torch.randint(0, 10, (16,), generator=generator)
    models = (ours, reference)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True)
                  for m in models]
    for _ in range(10):
        for model, optimizer in zip(models, optimizers, strict=True):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name,channels,size", [("simple-cnn", 1, 28), ("resnet-8", 3, 32)])
def test_init_statistics(name, channels, size):
    model = build_model(name, channels=channels, image_size=size, num_classes=10, seed=3)
    for pname, p in model.named_parameters():
        if p.dim() == 1:
            assert torch.count_nonzero(p) == 0, pname
            continue
        std = math.sqrt(1.0 / fan_in(p)) / TRUNCATED_NORMAL_STD_CORRECTION
        assert variance_scaling_std(p) == pytest.approx(std)
        assert p.abs().max() <= 2 * std + 1e-7, pname
        if p.numel() >= 10_000:
            # truncation at ±2σ scaled by 1/0.8796 gives a std of sqrt(1/fan_in)
            assert p.std().item() == pytest.approx(math.sqrt(1.0 / fan_in(p)), rel=0.03)
            assert abs(p.mean().item()) < 0.05 * p.std().item()


def test_init_is_deterministic_per_seed():
    def weights(seed):
        m = build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=seed)
        return torch.cat([p.flatten() for p in m.parameters()])

    assert torch.equal(weights(5), weights(5))
    assert not torch.equal(weights(5), weights(6))


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", channels=1, image_size=28, num_classes=10, seed=0)
