"""`sparsedp plan`: the cost arithmetic on made-up speeds, and the command on real MNIST."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparsedp.cli.main import main
from sparsedp.planning.estimate import (
    DAY,
    ExperimentPlan,
    Speed,
    StepsEstimate,
    checks_in,
    extrapolate,
    plan_study,
    trial_seconds,
)
from sparsedp.specs import StudySpec

SPEED = Speed(step_seconds=0.01, check_seconds=2.0, setup_seconds=0.5, memory_mb=100.0)
STUDY = StudySpec("mnist-simplecnn-momentum", 0.9, 64, max_steps=1000, eval_every=16)


def test_checks_in() -> None:
    assert checks_in(100, 16, 1500) == 6
    assert checks_in(1500, 16, 1500) == 94  # 93 regular checks and one at the budget
    assert checks_in(1504, 16, 1504) == 94
    assert checks_in(15, 16, 1500) == 0


def test_trial_seconds_exact() -> None:
    # 0.5 setup + 160 steps × 0.01 + 10 checks × 0.25 × 2.0
    assert trial_seconds(SPEED, 160, 16, 1000, 0.25) == pytest.approx(7.1)


def test_plan_study_with_estimate_and_stopping() -> None:
    plan = plan_study(STUDY, 4, 1, SPEED, StepsEstimate(160, "stored"), stopping=True,
                      check_fraction=0.25)
    assert plan.expected_s == pytest.approx(4 * 7.1)
    assert plan.remaining_s == pytest.approx(7.1)
    # upper: 0.5 + 1000 × 0.01 + 63 full checks × 2.0 (62 regular and one at the budget)
    assert plan.upper_s == pytest.approx(4 * (0.5 + 10.0 + 63 * 2.0))


def test_plan_study_without_estimate_or_stopping_runs_budgets() -> None:
    budget_trial = 0.5 + 10.0 + 63 * 0.25 * 2.0
    for estimate, stopping in ((StepsEstimate(None, "none"), True),
                               (StepsEstimate(160, "stored"), False)):
        plan = plan_study(STUDY, 2, 2, SPEED, estimate, stopping=stopping, check_fraction=0.25)
        assert plan.expected_s == pytest.approx(2 * budget_trial)
    capped = plan_study(STUDY, 1, 1, SPEED, StepsEstimate(5000, "guess"), stopping=True,
                        check_fraction=0.25)
    assert capped.expected_s == pytest.approx(budget_trial)


def test_extrapolate_from_nearest_batch_size() -> None:
    assert extrapolate(256, {64: 100}) == StepsEstimate(50, "from B=64")
    assert extrapolate(16, {64: 100}) == StepsEstimate(200, "from B=64")
    assert extrapolate(32, {16: 400, 64: 100}).source == "from B=16"  # tie: the smaller
    assert extrapolate(32, {}) is None


def test_experiment_totals_and_day_warning() -> None:
    plans = [plan_study(STUDY, 4, 4, SPEED, StepsEstimate(160, "pilot"), stopping=True,
                        check_fraction=0.25)] * 3
    plan = ExperimentPlan(plans, snip_s=10.0, snip_remaining_s=5.0, memory_mb=1.0,
                          check_fraction=0.25, check_fraction_source="default")
    assert plan.expected_s == pytest.approx(3 * 4 * 7.1 + 10.0)
    assert plan.remaining_s == pytest.approx(3 * 4 * 7.1 + 5.0)
    assert plan.trials == 12
    assert not plan.over_a_day
    big = plan_study(STUDY, 4, 4, Speed(30.0, 2.0, 0.5, 1.0), StepsEstimate(None, "none"),
                     stopping=True, check_fraction=0.25)
    assert big.expected_s > DAY
    assert ExperimentPlan([big], 0.0, 0.0, 1.0, 0.25, "default").over_a_day


TINY = """\
name = "tiny"
workloads = ["mnist-simplecnn-momentum"]
sparsities = [0.0, 0.5]
batch_sizes = [16, 32]
trials = 1
data_dir = "{data}"
goal_error = 0.9
max_steps = 32
eval_every = 16

[pruning]
snip_batches = 1
"""


def test_plan_command_end_to_end(shared_data_dir: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(data=shared_data_dir / "mnist"))
    assert main(["plan", str(path), "--measure-steps", "1", "--steps", "20"]) == 0
    out = capsys.readouterr().out
    assert "mnist-simplecnn-momentum s=0.5 B=32" in out
    assert "20 guess" in out and "SNIP saliencies" in out
    assert out.count("\n") >= 8 and "total" in out

    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    assert main(["plan", str(path), "--measure-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert " stored" in out  # estimates and actual times from the results database
    assert "measured on the" in out  # check fraction from the stored checks


def test_plan_command_bad_file_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["plan", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read the experiment file" in err


def test_estimates_stored_neighbour_guess_and_none(tmp_path: Path) -> None:
    import argparse

    from sparsedp.cli.plan_cmd import _estimates, _Stored
    from sparsedp.specs import load_experiment

    path = tmp_path / "e.toml"
    path.write_text('name = "e"\nworkloads = ["mnist-simplecnn-momentum"]\n'
                    "sparsities = [0.0, 0.9]\nbatch_sizes = [16, 64, 256]\ntrials = 2\n")
    spec = load_experiment(path)
    stored = _Stored(spec)  # no database yet: nothing stored
    dense = {s.batch_size: s for s in spec.studies() if s.sparsity == 0.0}
    sparse = {s.batch_size: s for s in spec.studies() if s.sparsity == 0.9}
    stored.best = {dense[64].key: 100, sparse[16].key: None}
    stored.done = {dense[64].key: {0, 1}, sparse[16].key: {0, 1}}
    args = argparse.Namespace(ignore_stored=False, pilot=False, steps=500)
    out = _estimates(spec, stored, args, None, None)  # type: ignore[arg-type]
    assert out[dense[64].key] == StepsEstimate(100, "stored")
    assert out[dense[16].key] == StepsEstimate(200, "from B=64")
    assert out[dense[256].key] == StepsEstimate(50, "from B=64")
    assert out[sparse[16].key] == StepsEstimate(None, "no trial reached the goal")
    assert out[sparse[64].key] == StepsEstimate(500, "guess")
    ignored = _estimates(spec, stored, argparse.Namespace(ignore_stored=True, pilot=False,
                                                          steps=None), None, None)
    assert all(e == StepsEstimate(None, "none") for e in ignored.values())
