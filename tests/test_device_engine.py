"""The device-resident, rolling batched engine (issue 13): same batches as the host, no host
reads between checks, trials that join later and trials that diverge, group-size tuning.

Each test runs on CPU (exact equality with one-at-a-time trials) and again on CUDA when a
GPU is present (same decisions; numbers within rounding).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tests.test_batched import assert_same_outcome, sequential

from sparsedp.data.batches import BatchStream
from sparsedp.data.device import DeviceBatchOrder
from sparsedp.data.splits import SplitData
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training.batched import BatchedTrials, run_trials_batched
from sparsedp.training.trainer import EngineSettings, run_trial
from sparsedp.training.trial_config import TrialConfig
from sparsedp.training.tuning import measure_slots

SNIP = PruneSettings(snip_batches=1)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here"))]


@pytest.mark.parametrize("device", DEVICES)
def test_device_batch_order_is_the_batch_stream(device: str) -> None:
    n, batch = 1_000, 300  # batches cross epochs unevenly
    stream = BatchStream(n, batch, seed=7)
    expected = [stream.next() for _ in range(25)]
    order = DeviceBatchOrder(n, batch, 7, device)
    order.ensure(25)
    steps = torch.arange(1, 26, device=device)
    got = order.positions(steps).cpu().numpy()
    for step, want in enumerate(expected):
        np.testing.assert_array_equal(got[step], want)
    # Any steps in any order, as trials of a rolling group are at different steps.
    picked = order.positions(torch.tensor([19, 3, 3], device=device)).cpu().numpy()
    np.testing.assert_array_equal(picked, np.stack([expected[18], expected[2], expected[2]]))


@pytest.mark.parametrize("device", DEVICES)
def test_device_split_normalises_as_the_host(mnist: SplitData, device: str) -> None:
    positions = np.array([5, 53_999, 0, 17, 17, 40_000])
    x_host, y_host = mnist.train_batch(positions)
    x, y = mnist.train_on(device).batch(torch.from_numpy(positions).to(device))
    assert x.dtype == torch.float32 and mnist.train_on(device).images.dtype == torch.uint8
    assert torch.equal(x.cpu(), x_host) and torch.equal(y.cpu(), y_host)


def _configs(points: list[tuple[float, int]], **options) -> list[TrialConfig]:
    return [TrialConfig("mnist-simplecnn-momentum", 0.9, 32, lr, momentum=0.9, seed=seed,
                        pruning=SNIP, **options) for lr, seed in points]


@pytest.mark.parametrize("device", DEVICES)
def test_trials_that_join_later_match_one_at_a_time(mnist: SplitData, device: str) -> None:
    # 5 trials, 2 slots: three trials join when others leave, at step 0 while the others
    # are further on; a diverging one (lr 5) goes non-finite at step 12, seen at check 16.
    configs = _configs([(0.02, 0), (5.0, 2), (0.05, 5), (0.01, 3), (0.03, 4)],
                       goal_error=0.3, max_steps=40, eval_every=8)
    engine = EngineSettings(early_exit=True, eval_batch_size=250, device=device)
    joined: list[int] = []
    run = BatchedTrials(configs, mnist, engine=engine, slots=2, keep_final=True)
    while not run.done:
        run._join()
        assert len(run.members) <= 2
        joined += [m.index for m in run.members if m.index not in joined]
        run.advance()
    results = [run.results[k] for k in range(len(configs))]
    references, models, _ = sequential(configs, mnist, engine=engine)
    for k, (result, reference) in enumerate(zip(results, references, strict=True)):
        assert result is not None
        assert (result.status, result.steps_to_result, result.steps_taken, result.message) == (
            reference.status, reference.steps_to_result, reference.steps_taken,
            reference.message), k
        if device == "cpu":
            assert_same_outcome(result, reference)
            if result.status == "infeasible":
                continue  # it trained on (to NaN) until its check; run_trial stopped at once
            for name, p in models[k].named_parameters():
                assert torch.equal(run.final[k][name], p.detach().cpu()), (k, name)
    assert joined == [0, 1, 2, 3, 4] and run.slots == 2
    if device == "cpu":  # on a GPU's rounding this trial need not diverge (seen: it does not)
        assert results[1].status == "infeasible" and results[1].steps_taken == 12
    assert {r.status for r in results} >= {"complete", "infeasible"}


def test_no_host_reads_between_checks(mnist: SplitData, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a tensor on the host (a device sync on a GPU) happens per check, not per step."""
    reads = {"count": 0}
    for name in ("tolist", "item", "__bool__", "__float__", "__int__", "__index__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            reads["count"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)

    def reads_for_one_interval(eval_every: int) -> int:
        configs = _configs([(0.02, 0), (0.05, 1), (0.01, 2)], goal_error=0.01,
                           max_steps=64, eval_every=eval_every)
        run = BatchedTrials(configs, mnist, engine=EngineSettings(early_exit=True))
        run._join()  # set-up (pruning) reads the host freely; not counted
        reads["count"] = 0
        run.advance()  # eval_every steps, then one check of each trial
        assert all(m.step == eval_every for m in run.members)
        return reads["count"]

    assert reads_for_one_interval(4) == reads_for_one_interval(32)


def test_timing_steps_keeps_each_trial_at_its_step(mnist: SplitData) -> None:
    run = BatchedTrials(_configs([(0.02, 0), (0.05, 1)], max_steps=100), mnist)
    run.time_steps(1)
    run.time_steps(2)  # a warm-up step and the timed ones, each time
    assert run._steps.tolist() == [m.step for m in run.members] == [5, 5]


def test_group_size_is_measured_and_cached(mnist: SplitData, tmp_path) -> None:
    configs = _configs([(0.02, k) for k in range(3)], max_steps=10)
    cache = tmp_path / "group-sizes.json"
    slots = measure_slots(configs, mnist, EngineSettings(), cache_file=cache, cache_key="m",
                          steps=1, candidates=(1, 2))
    assert slots in (1, 2, 3)
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert entry["slots"] == slots and set(entry["trial_steps_per_second"]) <= {"1", "2", "3"}
    cache.write_text(cache.read_text().replace(f'"slots": {slots}', '"slots": 2'))
    assert measure_slots(configs, mnist, EngineSettings(), cache_file=cache, cache_key="m",
                         steps=1, candidates=(1, 2)) == 2  # read back, not re-measured


def test_precision_other_than_fp32_is_refused_where_it_cannot_run(mnist: SplitData) -> None:
    config = _configs([(0.02, 0)], max_steps=2)[0]
    with pytest.raises(ValueError, match='"tf32" needs a CUDA device'):
        run_trial(config, mnist, engine=EngineSettings(precision="tf32"))
    with pytest.raises(ValueError, match="unknown precision"):
        run_trials_batched([config], mnist, engine=EngineSettings(precision="fp8"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_fp32_on_cuda_turns_tf32_off_and_restores_it(mnist: SplitData) -> None:
    from sparsedp.training.precision import numerics

    torch.backends.cudnn.allow_tf32 = True
    with numerics("fp32", torch.device("cuda")):
        assert not torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cudnn.allow_tf32
