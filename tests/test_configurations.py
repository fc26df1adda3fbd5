"""Analysis never pools two configurations of one study cell; the report's stopping sentence
comes from the trials' own setting."""

from __future__ import annotations

import pandas as pd
import pytest

from sparsedp.analysis.curves import best_trials, study_outcomes
from sparsedp.report.notes import stopping_note as _stopping_note


def _trials(keys: list[str], steps: list[float]) -> pd.DataFrame:
    return pd.DataFrame({
        "study_key": keys, "workload": "w", "dataset": "mnist", "dataset_label": "MNIST",
        "model": "m", "optimizer": "o", "sparsity": 0.0, "batch_size": 32,
        "trial_index": range(len(keys)), "seed": 0, "lr": 0.1, "momentum": float("nan"),
        "decay_steps": float("nan"), "end_lr_factor": float("nan"), "status": "complete",
        "steps_to_result": steps, "final_val_error": 0.1, "goal_error": 0.5,
    })


def test_two_configurations_of_one_cell_are_refused_not_pooled() -> None:
    one = _trials(["a", "a"], [64, 48])
    assert best_trials(one)["steps"].tolist() == [48.0]
    pooled = _trials(["a", "b"], [64, 16])  # e.g. goal 0.2 and, earlier, goal 0.6
    with pytest.raises(ValueError, match="2 different studies"):
        best_trials(pooled)
    with pytest.raises(ValueError, match="2 different studies"):
        study_outcomes(pooled)


def _status(n: int) -> pd.DataFrame:
    return pd.DataFrame({"status": ["stopped"] + ["complete"] * (n - 1)})


def test_stopping_sentence_states_what_the_stored_trials_used() -> None:
    trials = _status(3).assign(stop_hopeless=[True, True, True])
    # the file now says off; the trials ran with stopping on
    assert "was ON" in _stopping_note({"stop_hopeless": False}, trials)
    assert "was OFF" in _stopping_note({"stop_hopeless": True},
                                       _status(3).assign(stop_hopeless=[False] * 3))
    mixed = _stopping_note({}, _status(3).assign(stop_hopeless=[True, False, False]))
    assert "different stopping settings: 1 with stopping ON, 2 with it OFF" in mixed
    partly = _stopping_note({}, _status(3).assign(stop_hopeless=[True, None, None]))
    assert "1 with stopping ON, 0 with it OFF, 2 not recorded" in partly
    unknown = _stopping_note({"stop_hopeless": True}, _status(2).assign(stop_hopeless=None))
    assert "not recorded" in unknown
    # tables without the column (older callers) fall back to the notes
    assert "was ON" in _stopping_note({"stop_hopeless": True}, _status(2))
