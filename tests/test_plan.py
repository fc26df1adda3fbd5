"""`sparsedp plan`: the cost arithmetic on made-up speeds, and the command on real MNIST."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path

import pytest

from cli_output import plan_rows, seconds
from small_mnist import DATASET, small_mnist_tables
from sparsedp.cli.main import main
from sparsedp.data import load_dataset, prepare_splits
from sparsedp.planning.estimate import (
    DAY,
    ExperimentPlan,
    Speed,
    StepsEstimate,
    checks_in,
    extrapolate,
    least_check_fraction,
    plan_study,
    trial_seconds,
)
from sparsedp.specs import StudySpec, load_experiment
from sparsedp.store import ResultStore

SPEED = Speed(step_seconds=0.01, check_seconds=2.0, setup_seconds=0.5, memory_mb=100.0)
STUDY = StudySpec("mnist-simplecnn-momentum", 0.9, 64, max_steps=1000, eval_every=16)


def test_least_check_fraction_is_one_past_the_allowance() -> None:
    assert least_check_fraction(0.4, 5000) == 2001 / 5000  # W3's goal on its split
    assert least_check_fraction(0.02, 10000) == 201 / 10000  # 200 errors still meet 2%
    assert least_check_fraction(0.999, 10) == 1.0


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
sparsities = [0.0, 0.5]
batch_sizes = [16, 32]
trials = 1
goal_error = 0.5
max_steps = 32
eval_every = 16

[pruning]
snip_batches = 1
"""  # then the cut MNIST's tables (tests/small_mnist.py)


def _tiny(npz: Path) -> str:
    return TINY + small_mnist_tables(npz, "tiny-cnn")


RESOLUTION_S = {"s": 0.5, "min": 3.0, "h": 180.0, "d": 4320.0}  # half a printed unit


def _studies(rows: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {label: row for label, row in rows.items() if " B=" in label}


def _check_total(rows: dict[str, dict[str, str]], n_trials: int) -> None:
    """The total row: the trials and the sum of every row's expected seconds."""
    total = rows["total"]
    assert int(total["trials"]) == n_trials
    parts = [row["expected"] for label, row in rows.items() if label != "total"]
    slack = sum(RESOLUTION_S[cell.split()[1]] for cell in [*parts, total["expected"]])
    assert abs(seconds(total["expected"]) - sum(map(seconds, parts))) <= slack


def test_plan_command_end_to_end_guess_pilot_stored(mnist_small: Path, tmp_path: Path,
                                                    capsys) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(_tiny(mnist_small))
    spec = load_experiment(path)
    labels = {s.label for s in spec.studies()}

    # nothing stored: every study's estimate is the guess
    assert main(["plan", str(path), "--measure-steps", "1", "--steps", "20"]) == 0
    out = capsys.readouterr().out
    rows = plan_rows(out)
    # the 50% goal: a failing check reads over half the split, not the default 25%
    assert "checks: early-exit checks examine 50% of the validation split on average " \
        "(at least: a check that misses the 50% goal" in " ".join(out.split())
    assert set(_studies(rows)) == labels
    for row in _studies(rows).values():
        assert (row["trials"], row["est. steps"]) == ("0+1", "20 guess")
        assert seconds(row["remaining"]) == seconds(row["expected"])  # all still to run
    snip = rows["SNIP saliencies"]  # sparsity 0.5 is SNIP-pruned: its saliencies cost
    assert snip["trials"] == "" and snip["expected"] == snip["upper"] == snip["remaining"]
    _check_total(rows, 4)

    # --pilot: trial 0 of the smallest batch size of each row, run to its end and stored
    # nowhere; the rest of the row extrapolated from it, S0 · (B0/B)^0.5
    assert main(["plan", str(path), "--measure-steps", "1", "--pilot"]) == 0
    captured = capsys.readouterr()
    rows = plan_rows(captured.out)
    assert not (spec.results_dir / ResultStore.FILENAME).exists()
    pilots = {}
    for sparsity in spec.sparsities:
        first = next(s for s in spec.studies() if (s.sparsity, s.batch_size) == (sparsity, 16))
        second = next(s for s in spec.studies() if (s.sparsity, s.batch_size) == (sparsity, 32))
        assert f"pilot: trial 0 of {first.label}" in captured.err
        cell = rows[first.label]["est. steps"]
        if cell == "pilot missed the goal":
            pilots[first.key] = None
            assert rows[second.label]["est. steps"] == "none"
        else:
            steps, source = cell.split(" ", 1)
            assert source == "pilot"
            pilots[first.key] = int(steps)
            assert rows[second.label]["est. steps"] == \
                f"{max(1, round(int(steps) * math.sqrt(16 / 32)))} from B=16"

    # after a run: the stored bests, actual times and the measured check fraction
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    assert main(["plan", str(path), "--measure-steps", "1"]) == 0
    out = capsys.readouterr().out
    rows = plan_rows(out)
    with ResultStore(spec.results_dir, read_only=True) as store:
        stored = store.trial_rows(spec.name)
        for study in spec.studies():
            row = rows[study.label]
            assert (row["trials"], seconds(row["remaining"])) == ("1+0", 0.0)
            best = store.best_steps(study.key)
            assert row["est. steps"] == (f"{best[0]} stored" if best else
                                         "no trial reached the goal")
            wall = sum(r["wall_time"] for r in stored if r["study_key"] == study.key)
            assert abs(seconds(row["stored"]) - wall) <= RESOLUTION_S[row["stored"].split()[1]]
            if study.key in pilots:  # the pilot was trial 0, as the run's trial 0
                (trial,) = [r for r in stored if r["study_key"] == study.key]
                assert pilots[study.key] == trial["steps_to_result"]
    _check_total(rows, 4)
    checks = sum(len(json.loads(r["curve_json"])) for r in stored)
    examined = sum(r["eval_examples"] for r in stored)
    val = prepare_splits(load_dataset(DATASET)).num_val  # registered by the file
    share = re.search(r"examine (\d+)% of the validation split on average \(measured on the "
                      r"(\d+) stored checks\)", out)
    assert share is not None, out
    assert int(share[2]) == checks
    assert int(share[1]) == round(100 * min(1.0, examined / (checks * val)))

    # checks stored by the earlier early-exit order (no early_exit_order): used, but flagged
    with sqlite3.connect(spec.results_dir / ResultStore.FILENAME) as db:
        db.execute("UPDATE trials SET engine_json = json_remove(engine_json, "
                   "'$.early_exit_order')")
    assert main(["plan", str(path), "--measure-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert f"measured on the {checks} stored checks of the earlier wrong-first early-exit " \
        "order" in " ".join(out.split()), out


def test_plan_pilot_trial_runs_that_search_trial(mnist_small: Path, tmp_path: Path,
                                                 capsys) -> None:
    """``--pilot-trial 1`` runs search trial 1 (its point and seed): the run's stored trial 1
    ends as the pilot did, and a negative index is refused before anything runs."""
    path = tmp_path / "tiny.toml"
    text = _tiny(mnist_small).replace("[0.0, 0.5]", "[0.0]")
    path.write_text(text.replace("trials = 1", "trials = 2"))
    spec = load_experiment(path)
    first = next(s for s in spec.studies() if s.batch_size == 16)
    point = first.space().points(2)[1]

    assert main(["plan", str(path), "--measure-steps", "1", "--pilot", "--pilot-trial", "1"]) == 0
    captured = capsys.readouterr()
    shown = ", ".join(f"{k} {v:.4g}" for k, v in point.items())
    assert f"pilot: trial 1 of {first.label} ({shown})" in captured.err
    cell = plan_rows(captured.out)[first.label]["est. steps"]

    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    with ResultStore(spec.results_dir, read_only=True) as store:
        (trial,) = [r for r in store.trial_rows(spec.name)
                    if r["study_key"] == first.key and r["trial_index"] == 1]
    if trial["status"] == "complete":
        assert cell == f"{int(trial['steps_to_result'])} pilot"
    else:
        assert cell.startswith("pilot missed")  # the table may cut the cell short

    with pytest.raises(SystemExit) as exc:
        main(["plan", str(path), "--pilot", "--pilot-trial", "-1"])
    assert exc.value.code == 2
    assert "expected a number >= 0, got -1" in capsys.readouterr().err


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


def test_kth_best_factor_interpolates_the_measured_factors():
    """The plan's K-th best / best factor: the measured values at K = 1, 3, 5 (dense slice:
    272, 352, 752 steps), linear between them and beyond the last."""
    from sparsedp.planning.estimate import kth_best_factor

    assert kth_best_factor(1) == 1.0
    assert kth_best_factor(3) == pytest.approx(352 / 272, abs=0.005)
    assert kth_best_factor(5) == pytest.approx(752 / 272, abs=0.005)
    assert kth_best_factor(2) == pytest.approx((1.0 + 1.29) / 2)
    assert kth_best_factor(4) == pytest.approx((1.29 + 2.76) / 2)
    assert kth_best_factor(7) == pytest.approx(2.76 + 2 * (2.76 - 1.29) / 2)


def test_sparse_kth_best_factor_comes_from_the_committed_refinement_run():
    """The sparse K = 3 factor is the median 3rd best / best of the 90%-sparse studies in
    the committed refinement export (search stage), and it is used linearly in sparsity."""
    import statistics
    from pathlib import Path

    import pandas as pd

    from sparsedp.planning.estimate import (
        SPARSE_KTH_BEST_FACTORS,
        SPARSE_RATIOS,
        kth_best_factor,
    )

    trials = pd.read_csv(Path(__file__).resolve().parents[1] / "reproduction"
                         / "w2-momentum-refine-cpu-trials.csv")
    search = trials[(trials["sparsity"] == 0.9) & (trials["stage"].fillna("search") == "search")
                    & (trials["status"] == "complete")]
    ratios = []
    for _, study in search.groupby("batch_size"):
        steps = sorted(study["steps_to_result"])
        ratios.append(steps[2] / steps[0])
    assert sorted(SPARSE_RATIOS) == pytest.approx(sorted(ratios))
    sparse3 = round(statistics.median(ratios), 2)
    assert SPARSE_KTH_BEST_FACTORS[3] == sparse3
    assert kth_best_factor(3, 0.9) == pytest.approx(sparse3)
    assert kth_best_factor(3, 0.99) == pytest.approx(sparse3)  # no extrapolation in sparsity
    assert kth_best_factor(3, 0.45) == pytest.approx((1.29 + sparse3) / 2)
    assert kth_best_factor(3, 0.0) == pytest.approx(1.29)
    assert kth_best_factor(1, 0.9) == 1.0
    dense5, sparse5 = 2.76, 1.0 + 2 * (sparse3 - 1.0)  # K = 5: extrapolated from K = 1, 3
    assert kth_best_factor(5, 0.9) == pytest.approx(sparse5)
    assert kth_best_factor(5, 0.3) == pytest.approx(dense5 + (sparse5 - dense5) / 3)


def test_plan_study_uses_the_sparsity_s_kth_best_factor() -> None:
    """keep_complete = 3: a trial runs to about the estimated best times the factor of its
    sparsity (160 steps: 207 dense at 1.29; the sparse factor for sparsity 0.9)."""
    import math

    from sparsedp.planning.estimate import SPARSE_KTH_BEST_FACTORS

    dense = StudySpec("mnist-simplecnn-momentum", 0.0, 64, max_steps=1000, eval_every=16)
    for study, factor in ((dense, 1.29), (STUDY, SPARSE_KTH_BEST_FACTORS[3])):
        plan = plan_study(study, 4, 4, SPEED, StepsEstimate(160, "pilot"), stopping=True,
                          check_fraction=0.25, keep_complete=3)
        assert plan.trial_steps == math.ceil(160 * factor)
    assert plan_study(dense, 4, 4, SPEED, StepsEstimate(160, "pilot"), stopping=True,
                      check_fraction=0.25, keep_complete=3).trial_steps == 207
