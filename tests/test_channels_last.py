"""``[engine] channels_last``: training in the channels-last layout keeps the layout, the
mask and determinism, continues exactly from a save of its own layout only, stays within
float rounding of the default layout, and is refused where it cannot run (batched groups)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sparsedp.data.splits import SplitData
from sparsedp.execution.backends.worker import _settings
from sparsedp.execution.tasks import TrialTask
from sparsedp.execution.trial_checkpoints import TrialCheckpoints
from sparsedp.pruning.prune import PruneSettings
from sparsedp.specs import EngineOptions
from sparsedp.training.batched.group import BatchedTrials
from sparsedp.training.trainer import EngineSettings, TrialRun
from sparsedp.training.trial_config import TrialConfig

DEFAULT = EngineSettings(early_exit=True, eval_batch_size=250)
CHANNELS_LAST = EngineSettings(early_exit=True, eval_batch_size=250, channels_last=True,
                               train_channels_last=True)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here"))]


def _config(seed: int = 0) -> TrialConfig:
    return TrialConfig("mnist-simplecnn-nesterov", 0.9, 32, 0.005, momentum=0.9, seed=seed,
                       goal_error=0.1, max_steps=40, eval_every=8,
                       pruning=PruneSettings(snip_batches=1))


def _conv_weights(run: TrialRun) -> list[torch.Tensor]:
    return [p for p in run.model.parameters() if p.dim() == 4]


@pytest.mark.parametrize("device", DEVICES)
def test_trained_in_channels_last_with_pruned_weights_exactly_zero(mnist: SplitData,
                                                                   device: str) -> None:
    run = TrialRun(_config(), mnist, engine=replace(CHANNELS_LAST, device=device))
    assert run.channels_last
    run.advance()
    weights = _conv_weights(run)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not weights[1].is_contiguous()  # conv2 (64, 32, 5, 5); conv1 has one channel in
    params = dict(run.model.named_parameters())
    for name, mask in run.mask.items():
        assert mask.sum() < mask.numel()  # something was pruned in every masked tensor
        assert torch.count_nonzero(params[name][mask == 0]) == 0


def test_same_trial_twice_gives_the_same_numbers(mnist: SplitData) -> None:
    runs = [TrialRun(_config(), mnist, engine=CHANNELS_LAST) for _ in range(2)]
    for run in runs:
        run.advance()
    a, b = (run.result() for run in runs)
    assert (a.status, a.steps_taken, a.curve) == (b.status, b.steps_taken, b.curve)
    for x, y in zip(runs[0].model.parameters(), runs[1].model.parameters(), strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("device", DEVICES)
def test_within_float_rounding_of_the_default_layout(mnist: SplitData, device: str) -> None:
    default = TrialRun(_config(), mnist, engine=replace(DEFAULT, device=device))
    channels_last = TrialRun(_config(), mnist, engine=replace(CHANNELS_LAST, device=device))
    assert not default.channels_last
    for run in (default, channels_last):
        run.train_only(24)
    for x, y in zip(default.model.parameters(), channels_last.model.parameters(), strict=True):
        torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-6)


def test_continued_from_a_save_exactly(mnist: SplitData) -> None:
    whole = TrialRun(_config(), mnist, engine=CHANNELS_LAST)
    whole.advance()
    first = TrialRun(_config(), mnist, engine=CHANNELS_LAST)
    assert not first.advance(checks=2)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second = TrialRun(_config(), mnist, engine=CHANNELS_LAST)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    second.advance()
    assert second.result().curve == whole.result().curve
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(second))
    for x, y in zip(whole.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(x, y)


class _Study:
    key = "study-a"


def test_a_save_is_continued_only_in_its_own_layout(tmp_path: Path, mnist: SplitData) -> None:
    task = TrialTask(_Study(), 0, {"lr": 0.005, "momentum": 0.9})  # type: ignore[arg-type]
    saves = TrialCheckpoints(tmp_path, every=1)
    default = TrialRun(_config(), mnist, engine=DEFAULT)
    saves.resume(task, default)
    default.advance(checks=1)
    saves.save(task, default)
    assert "layout" not in saves.identity(task, default)  # older saves still match
    other = TrialRun(_config(), mnist, engine=CHANNELS_LAST)
    assert TrialCheckpoints(tmp_path, every=1).resume(task, other) is None
    assert other.step == 0 and not saves.path(task).exists()  # dropped, started afresh


def test_recorded_only_when_on() -> None:
    assert _settings(CHANNELS_LAST)["train_channels_last"] is True
    assert "train_channels_last" not in _settings(DEFAULT)


def test_batched_groups_refuse_it(mnist: SplitData) -> None:
    with pytest.raises(ValueError, match="one trial at a time"):
        BatchedTrials([_config(0), _config(1)], mnist, engine=CHANNELS_LAST)
    with pytest.raises(ValueError, match="batched_trials = 1"):
        EngineOptions(channels_last=True, batched_trials=4)
    assert EngineOptions(channels_last=True, device="cuda", batched_trials=1).channels_last
    with pytest.raises(ValueError, match="the default on CUDA"):
        EngineOptions(channels_last=True, device="cuda")
    with pytest.raises(ValueError, match="true or false"):
        EngineOptions(channels_last="yes")  # type: ignore[arg-type]
