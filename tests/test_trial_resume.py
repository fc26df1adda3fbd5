"""An unfinished trial saved and continued in a fresh TrialRun computes exactly what it
computes in one go (weights, momentum, batch order, early-exit order, curve)."""

from __future__ import annotations

import io

import pytest
import torch

from sparsedp.data.batches import BatchStream
from sparsedp.data.splits import SplitData
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training.evaluation import Evaluator
from sparsedp.training.trainer import EngineSettings, TrialRun
from sparsedp.training.trial_config import TrialConfig

SNIP = PruneSettings(snip_batches=1)
ENGINE = EngineSettings(early_exit=True, eval_batch_size=250)


def _config(workload: str, lr: float, momentum: float | None, seed: int = 0) -> TrialConfig:
    return TrialConfig(workload, 0.9, 32, lr, momentum=momentum, seed=seed, goal_error=0.1,
                       max_steps=40, eval_every=8, pruning=SNIP)


def _through_disk(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize(("workload", "lr", "momentum"), [
    ("mnist-simplecnn-sgd", 0.05, None),
    ("mnist-simplecnn-momentum", 0.005, 0.9),
    ("mnist-simplecnn-nesterov", 0.005, 0.9),
    ("mnist-vit-adamw", 1e-3, None),  # torch's AdamW state: moments and step counts
])
def test_trial_continued_from_its_state_matches_one_go(
        mnist: SplitData, workload: str, lr: float, momentum: float | None) -> None:
    config = _config(workload, lr, momentum)
    whole = TrialRun(config, mnist, engine=ENGINE)
    whole.advance()
    first = TrialRun(config, mnist, engine=ENGINE)
    assert not first.advance(checks=2)
    state = _through_disk(first.state_dict())
    second = TrialRun(config, mnist, engine=ENGINE)
    second.load_state_dict(state)
    assert second.step == 16
    second.advance()
    a, b = whole.result(), second.result()
    assert (b.status, b.steps_to_result, b.steps_taken) == (a.status, a.steps_to_result,
                                                            a.steps_taken)
    assert len(a.curve) >= 3  # the continued part made checks of its own
    assert b.curve == a.curve
    assert (b.final_val_error, b.eval_examples) == (a.final_val_error, a.eval_examples)
    for x, y in zip(whole.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(x, y)


def test_state_of_another_trial_is_refused(mnist: SplitData) -> None:
    first = TrialRun(_config("mnist-simplecnn-momentum", 0.005, 0.9, seed=0), mnist,
                     engine=ENGINE)
    first.advance(checks=1)
    other = TrialRun(_config("mnist-simplecnn-momentum", 0.005, 0.9, seed=1), mnist,
                     engine=ENGINE)
    with pytest.raises(ValueError, match="another mask"):
        other.load_state_dict(first.state_dict())
    sgd = TrialRun(_config("mnist-simplecnn-sgd", 0.005, None, seed=0), mnist, engine=ENGINE)
    with pytest.raises(ValueError, match=r"momentum state with .* cannot continue sgd"):
        sgd.load_state_dict(first.state_dict())


def test_finished_trial_has_no_state(mnist: SplitData) -> None:
    run = TrialRun(_config("mnist-simplecnn-momentum", 0.005, 0.9), mnist, engine=ENGINE)
    run.advance()
    with pytest.raises(ValueError, match="finished"):
        run.state_dict()


def test_batch_stream_continues_across_epochs() -> None:
    whole = BatchStream(10, 4, seed=3)
    expected = [whole.next().tolist() for _ in range(7)]
    first = BatchStream(10, 4, seed=3)
    head = [first.next().tolist() for _ in range(3)]  # mid-epoch, one epoch crossed
    second = BatchStream(10, 4, seed=3)
    second.load_state_dict(_through_disk(first.state_dict()))
    assert head + [second.next().tolist() for _ in range(4)] == expected
    assert second.epoch == whole.epoch
    with pytest.raises(ValueError, match="cannot continue"):
        BatchStream(10, 5, seed=3).load_state_dict(first.state_dict())


def test_evaluator_state_keeps_the_early_exit_order() -> None:
    """100 examples, the last 10 of class 1, a model that always says 0: a fresh evaluator
    with goal 0 finds the errors in its last chunk (100 examined); one that remembers them
    looks at them first and stops after the first chunk (10 examined)."""
    x = torch.zeros(100, 3)
    y = torch.zeros(100, dtype=torch.long)
    y[90:] = 1

    def says_zero(inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.ones(len(inputs)), torch.zeros(len(inputs))], dim=1)

    model = torch.nn.Module()
    model.forward = says_zero  # type: ignore[method-assign]
    first = Evaluator(x, y, 0.0, batch_size=10, early_exit=True)
    assert first(model).examined == 100
    resumed = Evaluator(x, y, 0.0, batch_size=10, early_exit=True)
    resumed.load_state_dict(_through_disk(first.state_dict()))
    fresh = Evaluator(x, y, 0.0, batch_size=10, early_exit=True)
    assert (resumed(model).examined, first(model).examined, fresh(model).examined) == (10, 10, 100)
    with pytest.raises(ValueError, match="cannot continue"):
        Evaluator(x[:50], y[:50], 0.0).load_state_dict(first.state_dict())
