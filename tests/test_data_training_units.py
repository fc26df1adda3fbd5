"""Small behaviours under the trainer: validation split, normalisation, batch order across
epochs, micro-batched gradients, SNIP with a shorter last batch, the saliency disk cache."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sparsedp.data.batches import BatchStream
from sparsedp.data.splits import (
    SplitData,
    channel_statistics,
    split_train_validation,
    train_split_size,
)
from sparsedp.execution.backends.worker import WorkerContext
from sparsedp.pruning.prune import PruneSettings
from sparsedp.pruning.saliency import prunable_parameters, snip_batches, snip_saliency
from sparsedp.specs import EngineOptions, StudySpec
from sparsedp.training.trainer import EngineSettings, TrialRun, build_trial_model
from sparsedp.training.trial_config import TrialConfig

# --------------------------------------------------------------------------- splits


def test_validation_split_sizes_and_order() -> None:
    train, val = split_train_validation(60_000)
    assert (len(train), len(val)) == (54_000, 6_000)
    assert train_split_size("mnist") == 54_000 and train_split_size("cifar10") == 45_000
    assert len(split_train_validation(50_000)[1]) == 5_000
    both = np.concatenate([val, train])
    assert np.array_equal(np.sort(both), np.arange(60_000))  # a partition, nothing repeated
    # The authors' order: list(range(n)) shuffled by RandomState(0), validation first.
    order = list(range(60_000))
    np.random.RandomState(0).shuffle(order)
    assert val.tolist() == order[:6_000] and train.tolist() == order[6_000:]
    assert val[:5].tolist() == [3048, 19563, 58303, 8870, 40228]  # pinned
    with pytest.raises(ValueError, match="fraction"):
        split_train_validation(100, 1.0)


def test_normalisation_statistics_of_real_mnist(mnist: SplitData) -> None:
    # MNIST's well-known statistics over the official 60,000 training images (before the
    # validation split, as the authors normalised): 0.1307 and 0.3081.
    assert mnist.mean == pytest.approx([0.130660], abs=1e-6)
    assert mnist.std == pytest.approx([0.308108], abs=1e-6)
    x, _ = mnist.train_batch(np.arange(2_000))
    assert float(x.mean()) == pytest.approx(0.0, abs=0.02)
    assert float(x.std()) == pytest.approx(1.0, abs=0.03)


def test_channel_statistics_per_channel_and_global() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7_001, 3, 2, 2), dtype=np.uint8)  # crosses a chunk
    scaled = images.astype(np.float64) / 255
    mean, std = channel_statistics(images, per_channel=True)
    assert np.allclose(mean, scaled.mean(axis=(0, 2, 3)))
    assert np.allclose(std, scaled.std(axis=(0, 2, 3)))
    mean, std = channel_statistics(images, per_channel=False)
    assert np.allclose(mean, scaled.mean()) and np.allclose(std, scaled.std())


# --------------------------------------------------------------------------- batch order


def test_batches_cross_an_epoch_boundary_without_losing_examples() -> None:
    stream = BatchStream(10, 4, seed=3)
    first, second, third = stream.next(), stream.next(), stream.next()
    assert stream.epoch == 1
    rng = np.random.default_rng(3)
    epoch0, epoch1 = rng.permutation(10), rng.permutation(10)
    assert np.array_equal(np.concatenate([first, second]), epoch0[:8])
    assert np.array_equal(third, np.concatenate([epoch0[8:], epoch1[:2]]))
    assert sorted(np.concatenate([first, second, third[:2]]).tolist()) == list(range(10))
    rest = np.concatenate([third[2:], *(stream.next() for _ in range(2))])
    assert sorted(rest.tolist()) == list(range(10))  # epoch 1 complete, each example once
    again = BatchStream(10, 4, seed=3)
    assert all(np.array_equal(again.next(), b) for b in (first, second, third))
    with pytest.raises(ValueError, match="larger than"):
        BatchStream(3, 4, seed=0)


# --------------------------------------------------------------------------- gradients


def test_micro_batched_gradients_equal_whole_batch_gradients(mnist: SplitData) -> None:
    config = TrialConfig("mnist-simplecnn-momentum", 0.5, 64, 0.05, momentum=0.9,
                         max_steps=4, eval_every=4, pruning=PruneSettings(snip_batches=1))
    whole = TrialRun(config, mnist, engine=EngineSettings(micro_batch=None))
    micro = TrialRun(config, mnist, engine=EngineSettings(micro_batch=24))  # 24+24+16
    assert (whole.micro, micro.micro) == (64, 24)
    for step in (1, 2, 3):
        loss_whole, loss_micro = whole._train_step(step), micro._train_step(step)
        assert loss_micro == pytest.approx(loss_whole, rel=1e-6)
        for (name, a), b in zip(whole.model.named_parameters(), micro.model.parameters(),
                                strict=True):
            torch.testing.assert_close(b.grad, a.grad, atol=1e-6, rtol=1e-5, msg=name)
            torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5, msg=name)
    assert micro.mask.report_dict() == whole.mask.report_dict()


def test_snip_over_batches_with_a_shorter_last_batch(mnist: SplitData) -> None:
    data = SplitData(mnist.dataset, mnist.train_index[:250], mnist.val_index, mnist.mean,
                     mnist.std)
    chunks = list(snip_batches(data, batch_size=100, chunk_batches=2))
    weights = torch.cat([w for _, _, w in chunks])
    assert [len(w) for _, _, w in chunks] == [200, 50]
    assert torch.equal(weights[:200], torch.full((200,), 0.01))
    assert torch.equal(weights[200:], torch.full((50,), 0.02))  # 1/50: its own mean loss
    config = TrialConfig("mnist-simplecnn-momentum", 0.9, 32, 0.1, momentum=0.9, seed=4)
    model = build_trial_model(config, data)
    parameters = prunable_parameters(model)
    scores = snip_saliency(model, parameters, chunks)
    # Reference: the sum of the three mini-batches' mean losses, differentiated directly
    # (on a channels-last copy, as SNIP does: max-pool ties then go the same way).
    work = copy.deepcopy(model).to(memory_format=torch.channels_last)
    loss = sum(F.cross_entropy(work(x.contiguous(memory_format=torch.channels_last)), y)
               for x, y in (data.train_batch(np.arange(s, min(s + 100, 250)))
                            for s in (0, 100, 200)))
    grads = torch.autograd.grad(loss, [dict(work.named_parameters())[n] for n in parameters])
    for (name, p), g in zip(parameters.items(), grads, strict=True):
        reference = (p * g).abs().detach()
        # rounding differs by ~1e-6 of the largest score; weighting the last batch 1/100
        # instead of 1/50 is off by more than 10%
        assert float((scores[name] - reference).abs().max()) <= 1e-4 * float(reference.max())


def test_a_cached_saliency_gives_the_same_mask_as_a_fresh_one(mnist, tmp_path) -> None:
    study = StudySpec("mnist-simplecnn-momentum", 0.9, 32, max_steps=8, eval_every=8,
                      pruning=PruneSettings(snip_batches=2))
    config = study.trial_config(3, {"lr": 0.05, "momentum": 0.9})

    def context(cache: str | None) -> WorkerContext:
        ctx = WorkerContext(EngineOptions(), None, cache, {})
        ctx._data["mnist"] = mnist
        return ctx

    first = context(str(tmp_path)).saliency(config, mnist)  # computed, then saved
    files = list((tmp_path / "saliency").glob("*.pt"))
    assert len(files) == 1
    cached = context(str(tmp_path)).saliency(config, mnist)  # read back from disk
    fresh = context(None).saliency(config, mnist)
    assert first is not None and cached is not None and fresh is not None
    for name in fresh:
        assert torch.equal(cached[name], fresh[name]) and torch.equal(first[name], fresh[name])
    masks = [TrialRun(config, mnist, saliency=s).mask for s in (cached, fresh, None)]
    for name, kept in masks[1].items():
        assert torch.equal(masks[0][name], kept) and torch.equal(masks[2][name], kept), name
    # a damaged cache file is recomputed, not trusted
    files[0].write_bytes(b"truncated")
    repaired = context(str(tmp_path)).saliency(config, mnist)
    assert repaired is not None and all(torch.equal(repaired[n], fresh[n]) for n in fresh)
