"""Search-edge warnings: a best trial within 5% of a bound of its searched range."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from sparsedp.analysis.edges import edge_hits, search_edges
from sparsedp.cli.main import main
from sparsedp.execution.records import TrialRecord
from sparsedp.execution.runner import study_descriptor
from sparsedp.search.space import Dimension, SearchSpace
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore

SPACE = SearchSpace((
    Dimension("lr", 1e-4, 1.0, "log"),  # u = (log10 lr + 4) / 4
    Dimension("momentum", 0.9, 0.9999, "reverse-log"),  # u = (log10(1 - m) + 4) / 3
    Dimension("decay_steps", 30_000, 60_000, "linear", integer=True),
))


@pytest.mark.parametrize("dim,value,unit", [
    (SPACE.dimensions[0], 1e-4, 0.0), (SPACE.dimensions[0], 1e-2, 0.5),
    (SPACE.dimensions[1], 0.9, 1.0), (SPACE.dimensions[1], 0.999, 1 / 3),
    (SPACE.dimensions[2], 45_000, 0.5), (SPACE.dimensions[2], 66_000, 1.2),
])
def test_to_unit_inverts_from_unit(dim: Dimension, value: float, unit: float) -> None:
    assert dim.to_unit(value) == pytest.approx(unit)
    if 0 <= unit <= 1 and not dim.integer:
        assert dim.from_unit(dim.to_unit(value)) == pytest.approx(value)


def test_to_unit_is_nan_where_the_scale_cannot_place_a_value() -> None:
    assert math.isnan(SPACE.dimensions[0].to_unit(0.0))
    assert math.isnan(SPACE.dimensions[1].to_unit(1.0))


def test_edges_name_the_metaparameter_and_the_value_bound() -> None:
    # lr: u = 0.97 → upper bound 1; momentum 0.99988: u = (log10 1.2e-4 + 4)/3 ≈ 0.026 → near
    # u = 0, which on the reverse-log scale is the *upper* bound 0.9999; decay 31,000:
    # u ≈ 0.033 → lower bound
    hits = edge_hits({"lr": 10 ** (-4 + 4 * 0.97), "momentum": 0.99988, "decay_steps": 31_000},
                     SPACE)
    assert [(h.name, h.side, h.bound) for h in hits] == [
        ("lr", "upper", 1.0), ("momentum", "upper", 0.9999), ("decay_steps", "lower", 30_000)]
    assert hits[0].unit == pytest.approx(0.97)
    assert hits[0].describe() == ("lr = 0.7586 is within 5% of the upper bound 1 of its "
                                  "searched range (log scale): the range may be too narrow")
    # inside the margin on both sides: nothing; exactly at 5% is not an edge
    assert edge_hits({"lr": 1e-2, "momentum": 0.99, "decay_steps": 31_500}, SPACE) == []
    assert edge_hits({"lr": 10 ** (-4 + 4 * 0.06)}, SPACE) == []
    # momentum 0.902: u ≈ 0.996 → its lower bound 0.9; missing and NaN values are skipped
    hits = edge_hits({"lr": float("nan"), "momentum": 0.902}, SPACE)
    assert [(h.name, h.side, h.bound) for h in hits] == [("momentum", "lower", 0.9)]
    assert [h.name for h in edge_hits({"lr": 0.3}, SPACE, margin=0.2)] == ["lr"]


def test_search_edges_reads_a_best_table_and_skips_studies_without_result_or_space() -> None:
    best = pd.DataFrame([
        {"workload": "w", "sparsity": 0.9, "batch_size": 16, "study_key": "a", "steps": 100.0,
         "lr": 0.9, "momentum": 0.99, "decay_steps": 45_000},
        {"workload": "w", "sparsity": 0.9, "batch_size": 64, "study_key": "b",
         "steps": float("nan"), "lr": 0.9, "momentum": 0.99, "decay_steps": 45_000},
        {"workload": "w", "sparsity": 0.0, "batch_size": 16, "study_key": "c", "steps": 50.0,
         "lr": 0.9, "momentum": 0.99, "decay_steps": 45_000},
    ])
    edges = search_edges(best, {"a": SPACE, "b": SPACE})
    assert edges[["study_key", "metaparameter", "side"]].values.tolist() == [["a", "lr", "upper"]]
    assert "lr = 0.9 is within 5% of the upper bound 1" in edges["message"].iloc[0]


TOML = """
name = "edges"
workloads = ["mnist-simplecnn-momentum"]
sparsities = [0.0]
batch_sizes = [16, 64]
trials = 2
results = "{results}"
[search.momentum]
low = 0.9
high = 0.99
scale = "reverse-log"
"""


def _trial(key: str, index: int, steps: int, lr: float, momentum: float) -> TrialRecord:
    return TrialRecord(
        study_key=key, trial_index=index, seed=index,
        metaparameters={"lr": lr, "momentum": momentum}, status="complete",
        steps_to_result=steps, steps_taken=steps, final_val_error=0.01,
        final_error_exact=True, curve=[(steps, 0.01, True)], wall_time=1.0, train_time=1.0,
        eval_time=0.0, prune_time=0.0, samples_per_second=1.0, eval_share=0.0,
        eval_examples=1, message="", attempts=1)


def test_status_flags_a_best_trial_at_the_edge(tmp_path: Path, capsys) -> None:
    path = tmp_path / "edges.toml"
    path.write_text(TOML.format(results=tmp_path / "results"))
    spec = load_experiment(path)
    small, large = spec.studies()
    with ResultStore(spec.results_dir) as store:
        store.register_experiment(spec.name, spec.to_dict(),
                                  [study_descriptor(s) for s in spec.studies()])
        store.write_trial(_trial(small.key, 0, 96, lr=0.01, momentum=0.95))
        store.write_trial(_trial(small.key, 1, 64, lr=0.01, momentum=0.9899))  # best, at edge
        store.write_trial(_trial(large.key, 0, 32, lr=0.01, momentum=0.95))
    assert main(["status", str(path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert lines == [
        "warning: mnist-simplecnn-momentum s=0 B=16: best trial #1: momentum = 0.9899 is "
        "within 5% of the upper bound 0.99 of its searched range (reverse-log scale): the "
        "range may be too narrow"]
