"""Known answers for the probes: noise scale on linear regression, L on a quadratic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

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


def test_grouped_estimator_is_mcCandlish_two_batch_estimator() -> None:
    rng = np.random.default_rng(0)
    k, b = 12, 8
    g = rng.normal(0.3, 1.0, size=(k, 50))
    small = float(np.mean(np.sum(g * g, axis=1)))
    big = float(np.sum(g.mean(axis=0) ** 2))
    expected = two_batch_estimates(small, big, b, k * b)
    pairs = g @ g.T
    assert expected[0] == pytest.approx((pairs.sum() - np.trace(pairs)) / (k * (k - 1)))
    for m in (1, 4, 5, k):  # groups of one micro-batch each up to one group of all
        assert _groups(g, m, b).estimate() == pytest.approx(expected, rel=1e-10)


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


def test_probes_leave_the_trial_unchanged(mnist) -> None:
    config = TrialConfig("mnist-simplecnn-momentum", 0.5, 16, 0.05, momentum=0.9, seed=3,
                         goal_error=0.3, max_steps=24, eval_every=8,
                         pruning=PruneSettings(snip_batches=1))
    plain = TrialRun(config, mnist, engine=EngineSettings())
    plain.advance()
    probes = ProbeSettings(noise_steps=(0, 8, 24), examples=96, groups=4, resamples=50,
                           lipschitz_every=8, lipschitz_examples=300, chunk=128)
    probed = ProbedTrialRun(config, mnist, probes, engine=EngineSettings())
    probed.advance()
    outcome = probed.finish()
    a, b = plain.result(), probed.result()
    assert (a.status, a.steps_to_result, a.steps_taken, a.curve) == \
        (b.status, b.steps_to_result, b.steps_taken, b.curve)
    assert torch.equal(flat_parameters(plain.model), flat_parameters(probed.model))
    measured = [p.step for p in outcome.noise]
    assert measured == [s for s in (0, 8, 24) if s <= b.steps_taken]
    assert [p.step for p in outcome.lipschitz] == list(range(8, b.steps_taken + 1, 8))
    for point in outcome.noise:
        assert point.micro_batch == 16 and point.big_batch == 96 and point.groups == 4
        assert math.isfinite(point.trace) and point.trace > 0
    for point in outcome.lipschitz:
        assert point.lipschitz > 0 and point.examples == 300
