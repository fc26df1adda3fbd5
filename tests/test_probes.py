"""Known answers for the probes: noise scale on linear regression, L on a quadratic."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sparsedp.pruning.prune import PruneSettings
from sparsedp.training import EngineSettings, TrialConfig, TrialRun
from sparsedp.training.noise_scale import GradientGroups, b_simple, two_batch_estimates
from sparsedp.training.probed_run import ProbedTrialRun, ProbeSettings, flat_parameters
from sparsedp.training.smoothness import GAMMAS, lipschitz_along_step


def _groups(gradients: np.ndarray, groups: int, b: int):
    acc = GradientGroups(groups, b)
    for g in gradients:
        acc.add(torch.from_numpy(g))
    return acc.summary()


def _by_hand(g: np.ndarray, b: int) -> tuple[float, float]:
    """(|G|², tr Σ) of K micro-batch gradients (rows of ``g``, each a mean over ``b``
    examples) from their definitions, written out independently of the module: |G|² is the
    mean of g_i·g_j over the K(K−1) ordered pairs i ≠ j (unbiased, as E[g_i·g_j] = |G|²);
    tr Σ is ``b`` times the unbiased sample variance of the g_i, Σ|g_i − ḡ|² / (K − 1),
    because a micro-batch mean of ``b`` examples has covariance Σ/b."""
    k = len(g)
    pairs = [float(g[i] @ g[j]) for i in range(k) for j in range(k) if i != j]
    mean = g.mean(axis=0)
    spread = sum(float((row - mean) @ (row - mean)) for row in g)
    return sum(pairs) / len(pairs), b * spread / (k - 1)


@pytest.mark.parametrize("k", [2, 3, 12])
def test_grouped_estimator_equals_the_estimates_written_out_by_hand(k: int) -> None:
    rng = np.random.default_rng(k)
    b = 8
    g = rng.normal(0.3, 1.0, size=(k, 50))
    g2, trace = _by_hand(g, b)
    # McCandlish's two-batch formulas (module function) agree with the definitions
    small = float(np.mean(np.sum(g * g, axis=1)))
    big = float(np.sum(g.mean(axis=0) ** 2))
    assert two_batch_estimates(small, big, b, k * b) == pytest.approx((g2, trace), rel=1e-10)
    # and so does the grouped accumulator, however the K gradients are grouped
    for m in sorted({1, 2, k // 2 or 1, k}):  # one group of all up to one group each
        assert _groups(g, m, b).estimate() == pytest.approx((g2, trace), rel=1e-10)


def test_trace_estimate_is_unbiased_with_two_micro_batches() -> None:
    """With K = 2 the unbiased variance divides by K − 1 = 1: a trace missing the K/(K−1)
    factor would be half the true one."""
    d, sigma, b, draws = 10, 0.7, 4, 3000
    rng = np.random.default_rng(5)
    delta = rng.normal(size=d) * 0.5
    true_trace = (d + 1) * float(delta @ delta) + d * sigma**2  # see the closed form below
    traces = np.array([
        _groups(_linear_regression_gradients(rng, delta, sigma, 2, b), 2, b).estimate()[1]
        for _ in range(draws)])
    assert abs(traces.mean() - true_trace) < 3 * traces.std(ddof=1) / math.sqrt(draws)
    assert traces.mean() == pytest.approx(true_trace, rel=0.15)


def _linear_regression_gradients(rng, delta, sigma, k, b):
    """K micro-batch gradients of ½(xᵀw − y)² at w = w* + δ, x ~ N(0, I), noise N(0, σ²)."""
    x = rng.normal(size=(k, b, len(delta)))
    eps = rng.normal(scale=sigma, size=(k, b))
    residual = x @ delta - eps  # (k, b)
    return np.einsum("kbd,kb->kd", x, residual) / b


def test_noise_scale_on_linear_regression_matches_closed_form() -> None:
    # Per-example gradient x(xᵀδ − ε): G = δ, E[ggᵀ] = |δ|²I + 2δδᵀ + σ²I (Isserlis), so
    # tr Σ = (d + 1)|δ|² + dσ².
    d, sigma, k, b = 10, 0.7, 64, 4
    rng = np.random.default_rng(1)
    delta = rng.normal(size=d) * 0.5
    true_g2 = float(delta @ delta)
    true_trace = (d + 1) * true_g2 + d * sigma**2
    truth = true_trace / true_g2
    g2s, traces, covered = [], [], 0
    draws = 150
    for i in range(draws):
        summary = _groups(_linear_regression_gradients(rng, delta, sigma, k, b), 16, b)
        g2, trace = summary.estimate()
        g2s.append(g2)
        traces.append(trace)
        low, high = summary.bootstrap(200, seed=i)
        covered += low <= truth <= high
    # Unbiased: the mean over draws is within 3 standard errors of the closed form.
    for values, true in ((g2s, true_g2), (traces, true_trace)):
        values = np.asarray(values)
        assert abs(values.mean() - true) < 3 * values.std(ddof=1) / math.sqrt(draws)
        assert abs(values.mean() - true) < 0.05 * true
    assert b_simple(float(np.mean(g2s)), float(np.mean(traces))) == pytest.approx(truth, rel=0.05)
    assert covered / draws >= 0.85  # a 95% interval that mostly covers the truth


def test_noise_scale_is_infinite_when_the_gradient_estimate_is_not_positive() -> None:
    assert b_simple(0.0, 1.0) == math.inf
    assert b_simple(-1e-3, 1.0) == math.inf
    with pytest.raises(ValueError):
        two_batch_estimates(1.0, 0.5, 8, 8)


def test_lipschitz_on_a_quadratic_is_the_curvature_along_the_step() -> None:
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    eigenvalues = np.linspace(0.1, 5.0, 8)
    a = torch.from_numpy(q @ np.diag(eigenvalues) @ q.T)
    before = torch.from_numpy(rng.normal(size=8))
    after = before - 0.1 * (a @ before)  # a gradient step on ½ wᵀAw
    value, ratios = lipschitz_along_step(lambda w: a @ w, before, after)
    d = after - before
    expected = float(torch.linalg.vector_norm(a @ d) / torch.linalg.vector_norm(d))
    assert value == pytest.approx(expected, rel=1e-12)
    assert ratios == pytest.approx([expected] * len(GAMMAS), rel=1e-12)
    assert value <= eigenvalues.max()
    # Along an eigenvector the answer is its eigenvalue.
    v = torch.from_numpy(q[:, 3])
    assert lipschitz_along_step(lambda w: a @ w, before, before + 0.3 * v)[0] == \
        pytest.approx(eigenvalues[3], rel=1e-12)
    assert math.isnan(lipschitz_along_step(lambda w: a @ w, before, before)[0])


class _Recorded(ProbedTrialRun):
    """Keeps the weights after every step (``weights[s]``: after step s; 0: initialisation)."""

    def _train_step(self, step: int) -> float:
        self.weights = getattr(self, "weights", {})
        self.weights[step - 1] = flat_parameters(self.model)
        loss = super()._train_step(step)
        self.weights[step] = flat_parameters(self.model)
        return loss


def _gradient_by_hand(run: TrialRun, weights: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    """The mean cross-entropy's gradient over training examples ``rows`` at ``weights``, in
    training mode, pruned entries zeroed: on a copy of the model, in one forward pass."""
    model = copy.deepcopy(run.model).train()
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(weights[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
    x, y = run.data.train_batch(rows)
    F.cross_entropy(model(x), y).backward()
    parameters = dict(model.named_parameters())
    for name, mask in run.mask.items():
        parameters[name].grad.mul_(mask)
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double()


def test_probes_leave_the_trial_unchanged_and_measure_what_a_hand_computation_gives(
        mnist) -> None:
    config = TrialConfig("mnist-simplecnn-momentum", 0.5, 16, 0.05, momentum=0.9, seed=3,
                         goal_error=0.3, max_steps=24, eval_every=8,
                         pruning=PruneSettings(snip_batches=1))
    plain = TrialRun(config, mnist, engine=EngineSettings())
    plain.advance()
    probes = ProbeSettings(noise_steps=(0, 8, 24), examples=96, groups=4, resamples=50,
                           lipschitz_every=8, lipschitz_examples=300, chunk=128)
    probed = _Recorded(config, mnist, probes, engine=EngineSettings())
    probed.advance()
    outcome = probed.finish()
    a, b = plain.result(), probed.result()
    assert (a.status, a.steps_to_result, a.steps_taken, a.curve) == \
        (b.status, b.steps_to_result, b.steps_taken, b.curve)
    assert torch.equal(flat_parameters(plain.model), flat_parameters(probed.model))
    measured = [p.step for p in outcome.noise]
    assert measured == [s for s in (0, 8, 24) if s <= b.steps_taken]
    assert [p.step for p in outcome.lipschitz] == list(range(8, b.steps_taken + 1, 8))
    assert len(outcome.lipschitz) >= 1

    # The noise scale from 6 micro-batches of 16 examples (96 // 16), drawn without
    # replacement with the documented seed, each gradient and both estimates by hand.
    for point in outcome.noise:
        assert point.micro_batch == 16 and point.big_batch == 96 and point.groups == 4
        draw = np.random.default_rng([probes.seed, 2, point.step])
        positions = draw.permutation(mnist.num_train)[:96].reshape(6, 16)
        grads = np.stack([_gradient_by_hand(probed, probed.weights[point.step], rows).numpy()
                          for rows in positions])
        g2, trace = _by_hand(grads, 16)
        assert (point.g2, point.trace) == pytest.approx((g2, trace), rel=1e-4)
        assert point.b_simple == pytest.approx(trace / g2, rel=1e-4)
        assert point.trace > 0 and point.interval is not None
        assert point.interval[0] <= point.b_simple <= point.interval[1]

    # L along each measured step: the documented ratio at every γ, from full gradients on
    # the 300 examples of the documented subset.
    rows = np.sort(np.random.default_rng([probes.seed, 1]).choice(
        mnist.num_train, size=300, replace=False))
    for point in outcome.lipschitz:
        before, after = probed.weights[point.step - 1], probed.weights[point.step]
        step = (after - before).double()
        norm = float(torch.linalg.vector_norm(step))
        base = _gradient_by_hand(probed, before, rows)
        ratios = [float(torch.linalg.vector_norm(
            _gradient_by_hand(probed, before + (gamma * step).float(), rows) - base))
            / (gamma * norm) for gamma in GAMMAS]
        assert point.examples == 300 and point.step_norm == pytest.approx(norm, rel=1e-9)
        assert point.ratios == pytest.approx(ratios, rel=1e-3)
        assert point.lipschitz == pytest.approx(max(ratios), rel=1e-3)
