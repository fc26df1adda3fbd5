"""`sparsedp probe`'s options that test_probe_command.py does not use: which study
(--batch-size, --sparsities), the micro-batch (--micro-batch), L along every N-th step
(--lipschitz-every), the draws (--seed), --device, --threads and --plugin."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from small_mnist import small_mnist_tables
from sparsedp.api import Experiment
from sparsedp.cli.main import main

EXPERIMENT = """name = "probe-options"
sparsities = [0.0, 0.5]
batch_sizes = [16, 32]
trials = 1
goal_error = 0.8
max_steps = 24
eval_every = 8
[search.lr]
low = 0.05
high = 0.1
[pruning]
snip_batches = 1
[engine]
eval_batch_size = 1000
"""  # then the cut MNIST's tables (tests/small_mnist.py)
OPTIONS = ["--batch-size", "32", "--sparsities", "0.5", "--micro-batch", "8", "--examples",
           "256", "--groups", "4", "--bootstrap", "20", "--checkpoints", "2",
           "--lipschitz-every", "8", "--lipschitz-examples", "100", "--seed", "5",
           "--device", "cpu", "--threads", "2"]


@pytest.fixture(scope="module")
def experiment(mnist_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny experiment, run; every study has a complete trial."""
    path = tmp_path_factory.mktemp("probe-options") / "exp.toml"
    path.write_text(EXPERIMENT + small_mnist_tables(mnist_small, "probe-sgd",
                                                    extends="mnist-simplecnn-sgd"))
    assert main(["run", str(path)]) == 0
    trials = Experiment.from_file(path).trials()
    assert set(trials[trials.status == "complete"]["study_key"]) == \
        {s.key for s in Experiment.from_file(path).studies()}
    return path


def test_probe_options_choose_the_study_and_set_the_measurements(experiment: Path) -> None:
    assert main(["probe", str(experiment), *OPTIONS]) == 0
    assert torch.get_num_threads() == 2  # --threads
    exp = Experiment.from_file(experiment)
    (study,) = [s for s in exp.studies() if (s.sparsity, s.batch_size) == (0.5, 32)]
    trials = exp.trials()
    (best,) = trials[trials.study_key == study.key].itertuples()
    steps = int(best.steps_to_result)
    rows = exp.probe_results()
    # --batch-size 32 --sparsities 0.5: that study's best trial only
    assert {(r["study_key"], r["trial_index"]) for r in rows} == {(study.key, best.trial_index)}
    noise = sorted((r for r in rows if r["kind"] == "noise_scale"), key=lambda r: r["step"])
    lipschitz = sorted((r for r in rows if r["kind"] == "lipschitz"), key=lambda r: r["step"])
    # --checkpoints 2: initialisation and the result; --micro-batch 8 and --examples 256:
    # 32 micro-batches of 8 in --groups 4
    assert [r["step"] for r in noise] == [0, steps]
    for row in noise:
        detail = row["detail"]
        assert (detail["micro_batch"], detail["big_batch"], detail["groups"]) == (8, 256, 4)
        assert detail["settings"]["seed"] == 5 and detail["settings"]["resamples"] == 20
        if detail["g2"] > 0:  # else B_simple is infinite (stored as NULL)
            assert row["value"] == pytest.approx(detail["trace"] / detail["g2"])
        else:
            assert row["value"] is None and detail["infinite"]
    # --lipschitz-every 8 on --lipschitz-examples 100: along steps 8, 16, … to the result
    assert [r["step"] for r in lipschitz] == list(range(8, steps + 1, 8))
    for row in lipschitz:
        assert row["detail"]["examples"] == 100
        assert row["detail"]["settings"]["lipschitz_every"] == 8
        assert row["value"] == pytest.approx(max(row["detail"]["ratios"]))


def test_probe_seed_draws_other_micro_batches(experiment: Path, tmp_path: Path) -> None:
    """The same probe with another --seed measures on other micro-batches: other estimates
    at the same weights (step 0 is the same initialisation)."""
    def noise_at_zero() -> dict:
        rows = Experiment.from_file(experiment).probe_results()
        return next(r for r in rows if r["kind"] == "noise_scale" and r["step"] == 0)

    options = [*OPTIONS[:OPTIONS.index("--seed")], "--lipschitz-points", "0"]
    assert main(["probe", str(experiment), *options, "--seed", "5"]) == 0
    five = noise_at_zero()
    assert main(["probe", str(experiment), *options, "--seed", "6"]) == 0
    six = noise_at_zero()
    assert (five["detail"]["settings"]["seed"], six["detail"]["settings"]["seed"]) == (5, 6)
    assert five["detail"]["g2"] != six["detail"]["g2"]
    assert main(["probe", str(experiment), *options, "--seed", "5"]) == 0
    assert noise_at_zero()["detail"]["g2"] == five["detail"]["g2"]  # and the same again


@pytest.mark.parametrize(("argv", "expected"), [
    (["--device", "cuda:7"], "device 'cuda:7'"),
    (["--plugin", "tp_no_such_probe_plugin"], "tp_no_such_probe_plugin"),
    (["--batch-size", "0"], "expected a number >= 1"),
    (["--sparsities", "0.5,x"], "expected numbers separated by commas"),
])
def test_probe_bad_options_are_one_line(experiment: Path, capsys, argv: list[str],
                                        expected: str) -> None:
    try:
        code = main(["probe", str(experiment), *argv])
    except SystemExit as exc:  # what argparse does with a malformed value
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sparsedp: error: ") and expected in err[0]
