"""What an experiment will cost before it runs: measured speeds and a model of the search.

Measurement (:func:`measure_speed`) trains a few steps and makes one full validation pass
per (workload, batch size) through the real trainer (:class:`TrialRun`, the worker's engine
settings). The cost model (:func:`plan_study`) turns speeds into seconds of compute:

- **Upper bound**: every trial runs its whole budget ``M`` and every check is a full pass:
  ``trials × (setup + M·t_step + checks(M)·t_check)``.
- **Expected, stopping on**: with hopeless trials stopped, no trial runs past the study's
  stopping limit ``S_K``, its K-th best steps-to-result (``keep_complete = K``; trials
  interleaved in rounds are all stopped at the first round's limit, and later rounds at the
  limit so far), so a study costs about ``trials × (setup + S_K·t_step +
  checks(S_K)·f·t_check)``, where ``f`` is the share of the validation split an early-exit
  check examines on average. ``S_K`` is the study's stored K-th best where K trials are
  stored complete, else ``S · kth_best_factor(K)`` from an *estimate* ``S`` of the best: (in
  order) the study's stored best, a pilot trial, a stored neighbouring batch size, or a
  user's guess; without one every trial is counted to its budget (with early-exit checks),
  as in a study none of whose trials reaches the goal. Trials that diverge early cost less
  than modelled (conservative).
- **Expected, stopping off**: trials that miss the goal run to the budget, and most trials of
  a quasi-random search do, so every trial is counted to its budget (early-exit checks).

SNIP saliencies are computed once per trial index per model (cached across sparsities and
batch sizes) and counted apart from the studies.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from sparsedp.execution.backends.worker import WorkerContext, peak_rss_mb
from sparsedp.pruning import SNIP_BASED, compute_saliency
from sparsedp.specs import ExperimentSpec, StudySpec
from sparsedp.training import TrialRun
from sparsedp.training.evaluation import Evaluator, error_allowance
from sparsedp.training.trainer import build_trial_model
from sparsedp.training.workloads import get_workload

DEFAULT_CHECK_FRACTION = 0.25
"""Share of the validation split an early-exit check examines on average when nothing is
stored yet: 0.21–0.24 was measured on W2 Momentum at the 2% goal (reproduction/w2-momentum-cpu,
dense, batch sizes 16–128); replaced by the experiment's own share once it has trials."""

DAY = 86_400.0


@dataclass(frozen=True)
class Speed:
    """Measured costs of one (workload, batch size) on the chosen device, in seconds."""

    step_seconds: float  # one training step
    check_seconds: float  # one full validation pass
    setup_seconds: float  # building a trial (model, optimizer, evaluator), SNIP excluded
    memory_mb: float  # peak memory of the measuring process after this measurement


KTH_BEST_FACTORS = {1: 1.0, 3: 1.29, 5: 2.76}
"""``S_K / S_1`` measured by ``benchmarks/study_speed.py --engines k1,k3,k5`` on the dense
slice (W2 Momentum, B = 128, 32 trials: 272, 352 and 752 steps; docs/engine.md, "Stopping:
keep_complete"), for K = 1, 3 and 5."""

SPARSE_RATIOS = (976 / 368, 736 / 336, 592 / 224)
"""3rd best / best of the 90%-sparse studies at B = 256, 512, 1024 (steps)."""

SPARSE_KTH_BEST_FACTORS = {1: 1.0, 3: round(statistics.median(SPARSE_RATIOS), 2)}
"""``S_K / S_1`` at sparsity :data:`SPARSE_MEASURED_AT`: the median of the 3rd best / best of
the 90%-sparse W2 Momentum studies that the CPU refinement run finished with
``keep_complete = 3`` (:data:`SPARSE_RATIOS`; 32 Sobol trials each,
reproduction/w2-momentum-refine-cpu-trials.csv). K = 5 is not measured for sparse studies:
it is extrapolated linearly from K = 1 and 3."""

SPARSE_MEASURED_AT = 0.9


def _interpolate(factors: Mapping[int, float], keep: int) -> float:
    known = sorted(factors.items())
    for (k0, f0), (k1, f1) in itertools.pairwise(known):
        if keep <= k1:
            return f0 + (f1 - f0) * (keep - k0) / (k1 - k0)
    (k0, f0), (k1, f1) = known[-2], known[-1]
    return f1 + (f1 - f0) * (keep - k1) / (k1 - k0)


def kth_best_factor(keep: int, sparsity: float = 0.0) -> float:
    """Estimated ratio of a study's K-th best steps-to-result to its best: the measured
    factors at their K, linear between them and beyond the last; for a sparse network,
    linear in sparsity between the dense factor (sparsity 0) and the sparse one (sparsity
    :data:`SPARSE_MEASURED_AT` and above), since sparse searches spread wider (fewer of
    their points come near the best)."""
    dense = _interpolate(KTH_BEST_FACTORS, keep)
    if sparsity <= 0.0:
        return dense
    weight = min(sparsity / SPARSE_MEASURED_AT, 1.0)
    return dense + weight * (_interpolate(SPARSE_KTH_BEST_FACTORS, keep) - dense)


@dataclass(frozen=True)
class StepsEstimate:
    """An estimate of a study's best steps-to-result and where it comes from."""

    steps: int | None  # None: no estimate (expected cost = upper bound)
    source: str  # "stored", "pilot", "from B=…", "guess", "none", "no trial reached the goal"


@dataclass(frozen=True)
class StudyPlan:
    """Cost of one study: all its trials, and the part not yet run."""

    study: StudySpec
    trials: int
    pending: int
    estimate: StepsEstimate
    expected_s: float  # all trials, with the stopping rule as configured
    upper_s: float  # every trial to its budget, full checks
    remaining_s: float  # the pending trials, expected
    trial_steps: int | None = None  # steps one trial runs in the expected model (its limit)

    @property
    def label(self) -> str:
        return self.study.label


def least_check_fraction(goal_error: float, total: int) -> float:
    """The least share of a validation split of ``total`` examples that an early-exit check
    missing ``goal_error`` reads: it stops only once its errors exceed the allowance."""
    return min(1.0, (error_allowance(goal_error, total) + 1) / total)


def checks_in(steps: int, eval_every: int, max_steps: int) -> int:
    """Validation checks a trial makes in ``steps`` steps: after every ``eval_every`` steps,
    and after the last step of the budget."""
    checks = steps // eval_every
    if steps >= max_steps and max_steps % eval_every:
        checks += 1
    return checks


def trial_seconds(
    speed: Speed, steps: int, eval_every: int, max_steps: int, check_fraction: float
) -> float:
    """One trial that trains ``steps`` steps, its checks costing ``check_fraction`` of a pass."""
    checks = checks_in(steps, eval_every, max_steps)
    return (
        speed.setup_seconds
        + steps * speed.step_seconds
        + checks * check_fraction * speed.check_seconds
    )


def plan_study(
    study: StudySpec,
    trials: int,
    pending: int,
    speed: Speed,
    estimate: StepsEstimate,
    *,
    stopping: bool,
    check_fraction: float,
    keep_complete: int = 1,
    stored_kth: int | None = None,
) -> StudyPlan:
    """The cost model of the module docstring for one study (``stored_kth``: the study's
    stored K-th best steps-to-result, where K trials are stored complete)."""
    budget = study.max_steps or get_workload(study.workload).max_steps
    every = study.eval_every or get_workload(study.workload).eval_every
    upper_trial = trial_seconds(speed, budget, every, budget, 1.0)
    if stopping and (stored_kth is not None or estimate.steps is not None):
        kth = stored_kth if stored_kth is not None else \
            math.ceil(estimate.steps * kth_best_factor(keep_complete, study.sparsity))  # type: ignore[operator]
        steps = min(kth, budget)
    else:
        steps = budget
    expected_trial = trial_seconds(speed, steps, every, budget, check_fraction)
    return StudyPlan(
        study=study,
        trials=trials,
        pending=pending,
        estimate=estimate,
        expected_s=trials * expected_trial,
        upper_s=trials * upper_trial,
        remaining_s=pending * expected_trial,
        trial_steps=steps,
    )


def extrapolate(batch_size: int, known: Mapping[int, int]) -> StepsEstimate | None:
    """Steps at ``batch_size`` from the nearest batch size (in log2) with a known best ``S0``
    at ``B0``: ``S0 · (B0/B)^0.5``, halfway (in log) between perfect scaling and none."""
    if not known:
        return None
    nearest = min(known, key=lambda b: (abs(math.log2(b / batch_size)), b))
    steps = known[nearest] * math.sqrt(nearest / batch_size)
    return StepsEstimate(max(1, round(steps)), f"from B={nearest}")


@dataclass(frozen=True)
class ExperimentPlan:
    """Every study's plan, SNIP's share, and the totals."""

    studies: list[StudyPlan]
    snip_s: float  # all saliencies
    snip_remaining_s: float
    memory_mb: float
    check_fraction: float
    check_fraction_source: str

    @property
    def expected_s(self) -> float:
        return sum(p.expected_s for p in self.studies) + self.snip_s

    @property
    def upper_s(self) -> float:
        return sum(p.upper_s for p in self.studies) + self.snip_s

    @property
    def remaining_s(self) -> float:
        return sum(p.remaining_s for p in self.studies) + self.snip_remaining_s

    @property
    def trials(self) -> int:
        return sum(p.trials for p in self.studies)

    @property
    def over_a_day(self) -> bool:
        """Whether the expected compute exceeds a day."""
        return self.expected_s > DAY


def snip_groups(spec: ExperimentSpec) -> dict[tuple, list[StudySpec]]:
    """Sparse SNIP studies (and random-snip-layers ones, which use the same cached SNIP
    saliency) grouped by what their saliencies share (data set, model, width, SNIP settings,
    seed, training-set size): one saliency per trial index per group."""
    groups: dict[tuple, list[StudySpec]] = {}
    for study in spec.studies():
        if study.sparsity == 0.0 or study.pruning.method not in SNIP_BASED:
            continue
        w = get_workload(study.workload)
        snip = dataclasses.replace(study.pruning, method="snip")
        key = (w.dataset, w.model, study.hidden_units, snip, study.seed,
               study.train_examples)  # SNIP sees the study's training subset
        groups.setdefault(key, []).append(study)
    return groups


# --------------------------------------------------------------------------- measuring


def _measure_study(study: StudySpec) -> StudySpec:
    """The study measured for speed: the same one, dense (a mask does not change the cost
    of a step, and a dense trial needs no SNIP)."""
    return dataclasses.replace(study, sparsity=0.0)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_speed(
    study: StudySpec, context: WorkerContext, steps: int = 5, warmup: int = 2, pieces: int = 3
) -> Speed:
    """Time ``pieces`` runs of ``steps`` training steps (after ``warmup``) and two full
    validation passes, with the settings the runner would use (micro-batches, evaluation
    layout and batch size). A step costs the median piece's mean, a check the faster pass:
    on a shared machine single timings swing with the other processes' load. Batches above
    256 time fewer steps per piece (about ``steps · 256 / B``, at least one) and one warm-up
    step: each step is long enough to time on its own."""
    dense = _measure_study(study)
    config = dense.trial_config(0, dense.space().points(1)[0])
    data = context.data(config.spec.dataset)
    engine = context.engine_settings(config, data)
    device = context.engine.device
    started = time.perf_counter()
    run = TrialRun(config, data, engine=engine)
    setup = time.perf_counter() - started
    if study.batch_size > 256:
        steps = max(1, math.ceil(steps * 256 / study.batch_size))
        warmup = min(warmup, 1)
    run.train_only(warmup)
    timings = []
    for _ in range(pieces):
        _sync(device)
        started = time.perf_counter()
        run.train_only(steps)
        _sync(device)
        timings.append((time.perf_counter() - started) / steps)
    step_seconds = sorted(timings)[len(timings) // 2]
    val_x, val_y = data.validation_on(device, engine.channels_last)
    full = Evaluator(val_x, val_y, config.resolved_goal_error,
                     batch_size=engine.eval_batch_size, early_exit=False,
                     channels_last=engine.channels_last)
    check_seconds = math.inf
    for _ in range(2):  # the first pass also warms caches; keep the faster
        _sync(device)
        started = time.perf_counter()
        full(run.model)
        _sync(device)
        check_seconds = min(check_seconds, time.perf_counter() - started)
    memory = peak_rss_mb()
    if device.startswith("cuda"):
        memory = torch.cuda.max_memory_allocated() / 2**20
    return Speed(step_seconds, check_seconds, setup, memory)


def measure_snip(study: StudySpec, context: WorkerContext, batches: int = 2) -> float:
    """Seconds for one trial's SNIP saliency, from timing ``batches`` of its batches."""
    config = study.trial_config(0, study.space().points(1)[0])
    data = context.data(config.spec.dataset, config.train_examples)
    settings = dataclasses.replace(config.pruning, method="snip")
    total = settings.snip_batches or math.ceil(data.num_train / settings.snip_batch_size)
    timed = min(batches, total)
    model = build_trial_model(config, data)  # on the CPU, as the worker computes it
    started = time.perf_counter()
    compute_saliency(model, dataclasses.replace(settings, snip_batches=timed), data, config.seed)
    _sync(context.engine.device)
    return (time.perf_counter() - started) * total / timed
