import pytest
import torch

from sparsedp.training import Schedule, TFOptimizer


def _step(kind, grads, momentum=0.9, lr=0.1):
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = TFOptimizer([w], kind, momentum)
    for g in grads:
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step(lr)
    return w.detach().tolist(), [a.tolist() for a in opt.accumulators]


def test_sgd_one_step_by_hand():
    w, _ = _step("sgd", [[0.5, -1.0]])
    assert w == pytest.approx([0.95, 2.1], abs=1e-12)


def test_momentum_two_steps_by_hand():
    # a1 = g1 = [.5, -1]; w1 = w0 - .1 a1 = [.95, 2.1]
    # a2 = .9 a1 + g2 = [1.45, .1]; w2 = w1 - .1 a2 = [.805, 2.09]
    w, acc = _step("momentum", [[0.5, -1.0], [1.0, 1.0]])
    assert w == pytest.approx([0.805, 2.09], abs=1e-12)
    assert acc[0] == pytest.approx([1.45, 0.1], abs=1e-12)


def test_nesterov_two_steps_by_hand():
    # step 1: a=[.5,-1]; w -= .1 (g + .9 a) -> [1 - .095, 2 + .19] = [.905, 2.19]
    # step 2: a=[1.45,.1]; w -= .1 ([1,1] + .9 a) -> [.905 - .2305, 2.19 - .109]
    w, _ = _step("nesterov", [[0.5, -1.0], [1.0, 1.0]])
    assert w == pytest.approx([0.6745, 2.081], abs=1e-12)


def test_unknown_optimizer_and_bad_momentum():
    p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="unknown optimizer"):
        TFOptimizer([p], "adam")
    with pytest.raises(ValueError, match="momentum"):
        TFOptimizer([p], "momentum", 1.5)


def test_constant_schedule():
    s = Schedule("constant", 0.3)
    assert s(0) == s(10_000) == 0.3


def test_linear_decay_schedule():
    s = Schedule("linear-decay", 1.0, decay_steps=100, end_lr_factor=0.01)
    assert s(0) == pytest.approx(1.0)
    assert s(50) == pytest.approx(0.505)
    assert s(100) == pytest.approx(0.01)
    assert s(5000) == pytest.approx(0.01)


@pytest.mark.parametrize("kwargs", [{"decay_steps": None, "end_lr_factor": 0.1},
                                    {"decay_steps": 10, "end_lr_factor": 2.0}])
def test_linear_decay_needs_valid_settings(kwargs):
    with pytest.raises(ValueError):
        Schedule("linear-decay", 1.0, **kwargs)
