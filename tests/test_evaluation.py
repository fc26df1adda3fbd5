import torch
from torch import nn

from sparsedp.training import Evaluator, error_allowance


class _Lookup(nn.Module):
    """Predicts a fixed class per example (x holds the example's index)."""

    def __init__(self, predictions):
        super().__init__()
        self.predictions = torch.as_tensor(predictions)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return nn.functional.one_hot(self.predictions[x.long().view(-1)], 3).float()


def _setup(n=100):
    x = torch.arange(n, dtype=torch.float32).view(n, 1)
    y = torch.zeros(n, dtype=torch.long)
    return x, y


def test_allowance_is_floor_of_goal_times_n():
    assert error_allowance(0.02, 6000) == 120
    assert error_allowance(0.4, 5000) == 2000
    assert error_allowance(0.02, 99) == 1


def test_full_and_early_exit_agree_on_pass_fail():
    x, y = _setup()
    torch.manual_seed(0)
    for _ in range(50):
        wrong_count = int(torch.randint(0, 20, ()))
        predictions = torch.zeros(100, dtype=torch.long)
        predictions[torch.randperm(100)[:wrong_count]] = 1
        model = _Lookup(predictions)
        full = Evaluator(x, y, 0.05, batch_size=7)(model)
        fast = Evaluator(x, y, 0.05, batch_size=7, early_exit=True)(model)
        assert full.exact and full.errors == wrong_count
        assert (full.errors <= 5) == (fast.errors <= 5)
        if fast.exact:
            assert fast.errors == full.errors
        else:
            assert fast.errors > 5 and fast.examined < 100


def test_early_exit_stops_and_remembers_wrong_examples():
    x, y = _setup()
    predictions = torch.zeros(100, dtype=torch.long)
    predictions[90:] = 2  # ten wrong, all at the end
    model = _Lookup(predictions)
    evaluator = Evaluator(x, y, 0.05, batch_size=10, early_exit=True)
    first = evaluator(model)
    assert first.examined == 100 and first.errors == 10 and not (first.errors <= 5)
    second = evaluator(model)  # the wrong ones come first now
    assert second.examined == 10 and second.errors == 10 and not second.exact
    assert second.error == 0.1  # a lower bound, here equal to the truth


class _Logits(nn.Module):
    """Fixed logits per example (x holds the example's index); settable between checks."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[x.long().view(-1)]


def test_early_exit_visits_the_smallest_margins_first():
    """All 100 right at the first check (a full pass), examples 90–99 by the smallest margins
    (0.1 against 2.0). Then those ten turn wrong: the margin order meets them in its first
    chunk of 10 and stops there; the earlier order (last check's wrong first, then natural)
    would have read all 100 examples."""
    x, y = _setup()
    logits = torch.zeros(100, 3)
    logits[:, 0], logits[:, 1] = 2.0, 0.0
    logits[90:, 1] = 1.9  # right, but only just: margin 0.1
    model = _Logits(logits)
    evaluator = Evaluator(x, y, 0.05, batch_size=10, early_exit=True)
    first = evaluator(model)
    assert (first.examined, first.errors) == (100, 0)
    flipped = logits.clone()
    flipped[90:, 1] = 2.5  # now wrong
    model.logits = flipped
    second = evaluator(model)
    assert (second.examined, second.errors) == (10, 10) and not second.exact
    full = Evaluator(x, y, 0.05, batch_size=10)(model)
    assert (full.examined, full.errors) == (100, 10)  # the same answer: goal not met
