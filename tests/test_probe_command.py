"""`sparsedp probe` end to end on real MNIST: measure, store, show, and the report's answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from small_mnist import small_mnist_tables
from sparsedp.api import Experiment
from sparsedp.cli.main import main

WORKLOAD = "probe-cnn"
EXPERIMENT = """name = "probe-e2e"
sparsities = [0.0]
batch_sizes = [16, 32, 64]
trials = 2
goal_error = 0.3
max_steps = 32
eval_every = 8
"""  # then the cut MNIST's tables (tests/small_mnist.py). max_steps 32, not 64, only halves
# the cost of the trial of each study that never meets the goal and runs to the budget: the
# trials that meet it, which the probes and the report use, do so by step 16.


@pytest.fixture(scope="module")
def probed(mnist_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("probe")
    path = folder / "exp.toml"
    path.write_text(EXPERIMENT + small_mnist_tables(mnist_small, WORKLOAD))
    assert main(["run", str(path)]) == 0
    code = main(["probe", str(path), "--examples", "256", "--groups", "4", "--bootstrap", "50",
                 "--checkpoints", "2", "--lipschitz-points", "2", "--lipschitz-examples", "200"])
    assert code == 0
    return path


def test_probe_stores_noise_scale_and_smoothness(probed: Path, capsys) -> None:
    rows = Experiment.from_file(probed).probe_results()
    kinds = {r["kind"] for r in rows}
    assert kinds == {"noise_scale", "lipschitz"}
    assert {r["study_key"] for r in rows} == {Experiment.from_file(probed).studies()[0].key}
    noise = sorted((r for r in rows if r["kind"] == "noise_scale"), key=lambda r: r["step"])
    assert noise[0]["step"] == 0 and len(noise) == 2  # initialisation and the result
    for row in noise:
        assert row["value"] > 0 and row["low"] <= row["value"] <= row["high"]
    assert all(r["value"] > 0 for r in rows if r["kind"] == "lipschitz")
    assert main(["probe", str(probed), "--show"]) == 0
    out = capsys.readouterr().out
    assert "B_simple" in out and "s=0 B=16" in out


def test_report_puts_the_prediction_next_to_the_measurement(probed: Path) -> None:
    html = Path(Experiment.from_file(probed).report()).read_text()
    findings = html[: html.index('id="figures"')]
    assert "the gradient noise scale B_simple (trial" in findings
    assert "measured B_crit" in findings and "No prediction" not in findings
    assert 'id="probes"' in html and f"probes-{WORKLOAD}" in html


def test_probe_without_results_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT + small_mnist_tables(tmp_path / "mnist-small.npz", WORKLOAD))
    assert main(["probe", str(path)]) == 2
    err = capsys.readouterr().err
    assert "run `sparsedp run" in err and "Traceback" not in err
