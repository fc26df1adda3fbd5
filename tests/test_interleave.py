"""Trials advanced a check at a time (interleaved) compute exactly what they compute alone."""

from __future__ import annotations

import pytest
import torch

from small_mnist import small_mnist_tables
from sparsedp.data.splits import SplitData
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training.trainer import EngineSettings, TrialRun, run_trial
from sparsedp.training.trial_config import TrialConfig

SNIP = PruneSettings(snip_batches=1)
ENGINE = EngineSettings(early_exit=True, eval_batch_size=250)


def _config(lr: float, seed: int, **options) -> TrialConfig:
    settings = {"goal_error": 0.5, "max_steps": 32, "eval_every": 8, "pruning": SNIP, **options}
    return TrialConfig("mnist-simplecnn-momentum", 0.9, 32, lr, momentum=0.9, seed=seed,
                       **settings)


@pytest.mark.parametrize(("lr", "seed"), [(0.02, 0), (0.001, 1), (80.0, 2)])
def test_trial_advanced_in_pieces_matches_one_go(mnist: SplitData, lr: float, seed: int) -> None:
    config = _config(lr, seed)
    whole = run_trial(config, mnist, engine=ENGINE)
    pieces = TrialRun(config, mnist, engine=ENGINE)
    rounds = 0
    while not pieces.advance(checks=1):
        rounds += 1
    one_go = TrialRun(config, mnist, engine=ENGINE)
    one_go.advance()
    result = pieces.result()
    assert (result.status, result.steps_to_result, result.steps_taken) == (
        whole.status, whole.steps_to_result, whole.steps_taken)
    assert result.curve == whole.curve
    assert result.final_val_error == whole.final_val_error
    assert rounds == max(len(whole.curve) - 1, 0)  # one check per piece
    for a, b in zip(pieces.model.parameters(), one_go.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_outcomes_cover_each_status(mnist: SplitData) -> None:
    """The parametrised cases above really reach different ends (else they prove little)."""
    statuses = {run_trial(_config(lr, seed), mnist, engine=ENGINE).status
                for lr, seed in [(0.02, 0), (0.001, 1), (80.0, 2)]}
    assert statuses == {"complete", "incomplete", "infeasible"}


def test_paused_trial_beaten_meanwhile_stops_at_its_last_check(mnist: SplitData) -> None:
    limit: dict[str, int | None] = {"best": None}
    run = TrialRun(_config(0.001, 1), mnist, engine=ENGINE, step_limit=lambda: limit["best"])
    assert not run.advance(checks=1)
    assert run.step == 8
    weights = [p.detach().clone() for p in run.model.parameters()]
    limit["best"] = 24  # a best later than this trial's next check: it goes on
    assert not run.advance(checks=1) and run.step == 16
    weights = [p.detach().clone() for p in run.model.parameters()]
    limit["best"] = 8  # another trial met the goal at step 8: this one is stopped at 16
    assert run.advance(checks=1)
    result = run.result()
    assert (result.status, result.steps_taken) == ("stopped", 16)
    assert "(8)" in result.message
    for before, after in zip(weights, run.model.parameters(), strict=True):
        assert torch.equal(before, after)  # no training after the stop
    assert [step for step, _, _ in result.curve] == [8, 16]


ONE_STUDY = """
name = "interleave"
sparsities = [0.0]
batch_sizes = [32]
trials = 2
results = "{results}"
goal_error = 0.5
max_steps = 48
eval_every = 8
[engine]
eval_batch_size = 1000
"""  # then the cut MNIST's tables (tests/small_mnist.py)


def test_a_later_winner_stops_an_earlier_slow_trial_at_once(tmp_path, mnist_small,
                                                            monkeypatch) -> None:
    """Trial 0 is slow, trial 1 wins early: one after another, trial 0 trains past that;
    interleaved, it is stopped at trial 1's step count. Trial 1's outcome is the same."""
    from sparsedp.execution.backends.local import InProcessBackend
    from sparsedp.execution.backends.worker import WorkerContext
    from sparsedp.execution.tasks import TrialTask
    from sparsedp.specs import load_experiment

    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "exp.toml"
    path.write_text(ONE_STUDY.format(results=tmp_path / "results")
                    + small_mnist_tables(mnist_small, "interleave-cnn"))
    spec = load_experiment(path)
    study = spec.studies()[0]
    points = [{"lr": 0.0003, "momentum": 0.9}, {"lr": 0.02, "momentum": 0.9}]
    outcomes = {}
    for interleave in (1, 4):
        best: dict[str, int] = {}
        context = WorkerContext(spec.engine, None, None, {}, spec.plugins)
        backend = InProcessBackend(context, best, interleave)
        for index, point in enumerate(points):
            backend.submit(TrialTask(study, index, point))
        records = {}
        while backend.in_flight():
            for task, record in backend.completed():
                records[task.index] = record
                if record.steps_to_result is not None:
                    backend.update_limit(study.key, record.steps_to_result)
        outcomes[interleave] = records
    sequential, interleaved = outcomes[1], outcomes[4]
    winner = sequential[1].steps_to_result
    assert sequential[1].status == interleaved[1].status == "complete"
    assert interleaved[1].steps_to_result == winner and winner < 48
    assert interleaved[1].curve == sequential[1].curve
    assert sequential[0].steps_taken > winner  # alone, trial 0 trains past the winner
    assert (interleaved[0].status, interleaved[0].steps_taken) == ("stopped", winner)
    assert interleaved[0].curve == sequential[0].curve[: len(interleaved[0].curve)]
