"""The command line: one real trial on MNIST, experiment commands, one-line errors."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch

from cli_output import status_rows
from small_mnist import small_mnist_tables
from sparsedp.api import Experiment
from sparsedp.cli import trial_cmd
from sparsedp.cli.main import main
from sparsedp.pruning import PruneSettings
from sparsedp.training import TrialConfig


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))


def test_workloads_lists_every_workload(capsys):
    assert main(["workloads", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"mnist-simplecnn-sgd", "mnist-simplecnn-momentum", "mnist-simplecnn-nesterov",
            "cifar10-resnet8-nesterov", "fashion-mnist-simplecnn-momentum"} <= names
    w3 = next(r for r in rows if r["name"] == "cifar10-resnet8-nesterov")
    assert (w3["goal_error"], w3["max_steps"], w3["eval_every"]) == (0.4, 100_000, 16)
    # the table, piped (not a terminal): every name and goal in full, one row per workload
    assert main(["workloads"]) == 0
    cells = [[c.strip() for c in line.split("│")[1:-1]]
             for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    assert {row[0] for row in cells} == names and len(cells) == len(rows)
    assert next(r for r in cells if r[0] == "cifar10-resnet8-nesterov")[7:] == [
        "0.4", "16", "100,000"]


def test_trial_on_real_mnist_reaches_goal(capsys, shared_data_dir, tmp_path):
    report = tmp_path / "mask.json"
    code = main([
        "trial", "--workload", "mnist-simplecnn-momentum", "--sparsity", "0.9",
        "--batch-size", "64", "--lr", "0.01", "--momentum", "0.9", "--goal-error", "0.3",
        "--max-steps", "200", "--snip-batches", "2", "--data-dir",
        str(shared_data_dir / "mnist"), "--json", "--save-mask-report", str(report),
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["status"] == "complete"
    assert result["steps_to_result"] % 16 == 0 and result["steps_to_result"] <= 200
    assert result["final_val_error"] <= 0.3
    assert result["measured_sparsity"] == pytest.approx(0.9, abs=1e-4)
    saved = json.loads(report.read_text())
    assert saved["kept"] == 6224 and saved["total"] == 62240  # 10% of SimpleCNN's weights
    # the printed sparsity report: one row per layer and the total, the saved numbers
    printed = sparsity_report(captured.err)
    layers = {layer["name"]: layer for layer in saved["layers"]}
    assert set(printed) == {*layers, "all"}
    for name, (kept, total, percent) in printed.items():
        layer = layers.get(name, saved)
        assert (kept, total) == (layer["kept"], layer["total"])
        assert percent == pytest.approx(100 * layer["sparsity"], abs=0.005)  # 2 decimals
    assert sum(kept for kept, _, _ in printed.values()) == 2 * 6224


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["trial", "--workload", "nope", "--sparsity", "0.5", "--batch-size", "8", "--lr",
          "0.1"], "unknown workload"),
        (["trial", "--workload", "mnist-simplecnn-sgd", "--sparsity", "1.0", "--batch-size",
          "8", "--lr", "0.1"], "sparsity must be in [0, 1)"),
        (["trial", "--workload", "mnist-simplecnn-momentum", "--sparsity", "0.5",
          "--batch-size", "8", "--lr", "0.1"], "needs --momentum"),
        (["trial", "--workload", "mnist-simplecnn-sgd", "--sparsity", "0.5", "--batch-size",
          "0", "--lr", "0.1"], "expected a number >= 1"),
        (["trial", "--workload", "mnist-simplecnn-sgd", "--sparsity", "0.5", "--batch-size",
          "8", "--lr", "abc"], "expected a number"),
        (["trial", "--workload", "mnist-simplecnn-sgd", "--sparsity", "0.5", "--batch-size",
          "8", "--lr", "0.1", "--data-dir", "/nonexistent/dir"], "/nonexistent/dir"),
        (["status", "/nonexistent/exp.toml"], "exp.toml"),
    ],
)
def test_bad_input_is_one_line_without_traceback(argv, expected):
    out = subprocess.run([sys.executable, "-m", "sparsedp.cli.main", *argv],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert expected in lines[0]


def sparsity_report(text: str) -> dict[str, tuple[int, int, float]]:
    """`sparsedp trial`'s printed sparsity report: name → (kept, total, sparsity in %)."""
    rows = re.findall(r"^  (\S+) +(\d+) +(\d+) +([\d.]+)%$", text, flags=re.MULTILINE)
    return {name: (int(kept), int(total), float(share)) for name, kept, total, share in rows}


def test_run_status_export_report(tmp_path, mnist_small, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(f"""
name = "cli"
sparsities = [0.0, 0.5]
batch_sizes = [32, 64, 128]
trials = 2
results = "{tmp_path / 'results'}"
goal_error = 0.5
max_steps = 32
eval_every = 16
[pruning]
snip_batches = 1
[engine]
eval_batch_size = 1000
""" + small_mnist_tables(mnist_small, "cli-sgd", extends="mnist-simplecnn-sgd"))
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    assert main(["status", str(path)]) == 0
    shown = status_rows(capsys.readouterr().out)
    assert main(["export", str(path), "--format", "csv"]) == 0
    frame = pd.read_csv(tmp_path / "results" / "trials.csv")
    assert len(frame) == 12 and set(frame["batch_size"]) == {32, 64, 128}
    assert main(["export", str(path), "--format", "parquet"]) == 0
    parquet = pd.read_parquet(tmp_path / "results" / "trials.parquet")
    columns = ["study_key", "trial_index", "status", "steps_to_result", "lr"]
    pd.testing.assert_frame_equal(
        parquet[columns].sort_values(columns[:2]).reset_index(drop=True),
        frame[columns].sort_values(columns[:2]).reset_index(drop=True), check_dtype=False)
    assert main(["report", str(path), "--bootstrap", "20", "--formats", "png"]) == 0
    folder = tmp_path / "results" / "report"
    page = (folder / "report.html").read_text()
    summary = json.loads((folder / "summary.json").read_text())
    # the page embeds each figure it wrote to figures/ (PNG only, as asked), and names the run
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page)
    written = sorted(p.read_bytes() for p in (folder / "figures").iterdir())
    assert {p.suffix for p in (folder / "figures").iterdir()} == {".png"}
    assert images and sorted(base64.b64decode(i) for i in images) == written
    assert re.search(r"<title>[^<]*\bcli\b[^<]*</title>", page)
    # the report's best steps agree with the stored trials
    complete = frame[frame.status == "complete"]
    best = complete.groupby(["sparsity", "batch_size"])["steps_to_result"].min().to_dict()
    reported = {(row["sparsity"], row["batch_size"]): row["steps"]
                for row in summary["studies"] if row["steps"] is not None}
    assert reported == best and len(best) >= 1
    assert summary["counts"]["n_trials"] == 12
    # status printed one row per study with the same counts and best steps
    assert set(shown) == {(s, b) for s in (0.0, 0.5) for b in (32, 64, 128)}
    for (sparsity, batch), row in shown.items():
        trials = frame[(frame.sparsity == sparsity) & (frame.batch_size == batch)]
        assert row["workload"] == "cli-sgd" and row["done"] == "2/2"
        for status in ("complete", "incomplete", "infeasible", "stopped", "failed"):
            assert int(row[status]) == int((trials.status == status).sum())
        steps = best.get((sparsity, batch))
        assert row["best steps"] == (str(int(steps)) if steps is not None else "-")


# --------------------------------------------------------------------------- the cut MNIST

SMALL_SGD = "tp-small-sgd"
SMALL_PLUGIN = """
from dataclasses import replace

from sparsedp.data.custom import NpzFile
from sparsedp.plugins import register_dataset, register_workload
from sparsedp.training.workloads import get_workload

DATASET = "tp-mnist-small"
register_dataset(DATASET, NpzFile({npz!r}))
register_workload(replace(get_workload("mnist-simplecnn-sgd"), name={workload!r},
                          dataset=DATASET))
"""


@pytest.fixture
def plugins(tmp_path, monkeypatch, registries):
    """Writes plugin modules into the working directory (a fresh folder); the registries,
    sys.path and the modules are restored after (conftest's ``registries``)."""
    monkeypatch.chdir(tmp_path)

    def write(module: str, text: str) -> str:
        (tmp_path / f"{module}.py").write_text(text)
        return module

    return write


@pytest.fixture
def small_sgd(plugins, mnist_small) -> list[str]:
    """`--plugin` and `--workload` of a plugin's mnist-simplecnn-sgd on the cut MNIST
    (tests/small_mnist.py): the options, not the data, are what the trial tests ask about,
    and checks of the built-in MNIST's 6,000 validation examples would dominate their time."""
    module = plugins("tp_small_mnist", SMALL_PLUGIN.format(npz=str(mnist_small),
                                                           workload=SMALL_SGD))
    return ["--plugin", module, "--workload", SMALL_SGD]


def _printed(text: str) -> dict[str, str]:
    """`sparsedp trial`'s closing lines (``key: value``) without --json."""
    return dict(re.findall(r"^(status|steps-to-result|final validation error): (.*)$", text,
                           flags=re.MULTILINE))


def test_trial_marks_a_lower_bound_error(capsys, small_sgd):
    argv = ["trial", *small_sgd, "--sparsity", "0", "--batch-size", "16", "--lr", "0.001",
            "--max-steps", "16"]
    assert main(argv) == 0
    fast = _printed(capsys.readouterr().out)
    assert fast["status"] == "incomplete"
    assert fast["steps-to-result"] == "- (steps taken 16)"
    assert fast["final validation error"].startswith(">= ")
    assert "(a lower bound:" in fast["final validation error"]
    assert main([*argv, "--full-eval"]) == 0
    full = _printed(capsys.readouterr().out)
    assert (full["status"], full["steps-to-result"]) == ("incomplete", "- (steps taken 16)")
    full_error = float(full["final validation error"])  # a plain number: exact
    fast_error = float(fast["final validation error"].split()[1])
    assert 0 < fast_error <= full_error  # the early-exit figure is a true lower bound


# --------------------------------------------------------------------------- trial options


@pytest.fixture
def measured(monkeypatch) -> list[tuple]:
    """Each trial `sparsedp trial` measures: (config, options, torch threads, measurement)."""
    calls: list[tuple] = []
    real = trial_cmd.measure_trial_config

    def spy(config, **options):
        threads = torch.get_num_threads()
        measurement = real(config, **options)
        calls.append((config, options, threads, measurement))
        return measurement

    monkeypatch.setattr(trial_cmd, "measure_trial_config", spy)
    return calls


def _trial(argv: list[str], capsys) -> dict:
    assert main(["trial", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_trial_seeds_checks_hidden_units_biases_pruner_threads_device(measured, capsys,
                                                                      small_sgd):
    out = _trial([*small_sgd, "--sparsity", "0.5", "--batch-size", "16", "--lr", "0.05",
                  "--seed", "7", "--data-seed", "3", "--goal-error", "0.01", "--max-steps",
                  "12", "--eval-every", "4", "--hidden-units", "32", "--pruner", "random",
                  "--prune-biases", "--threads", "2", "--device", "cpu"], capsys)
    ((config, options, threads, m),) = measured
    assert config == TrialConfig(SMALL_SGD, 0.5, 16, 0.05, seed=7, data_seed=3,
                                 goal_error=0.01, max_steps=12, eval_every=4, hidden_units=32,
                                 pruning=PruneSettings("random", prune_biases=True))
    assert options["device"] == "cpu" and threads == 2
    assert out == json.loads(json.dumps(m.to_dict()))  # what was measured is what is printed
    assert [step for step, _, _ in m.curve] == [4, 8, 12]  # a check every 4 steps
    assert out["status"] == "incomplete" and out["steps_taken"] == 12
    # SimpleCNN on MNIST with a hidden layer of 32: conv 800 + 51,200 weights, hidden
    # 1,024 × 32, output 32 × 10, and (pruned too) 32 + 64 + 32 + 10 biases
    layers = {layer["name"]: layer["total"] for layer in m.mask_report["layers"]}
    assert layers["hidden.weight"] == 32 * 1024 and layers["fc.weight"] == 10 * 32
    assert layers["hidden.bias"] == 32 and "conv1.bias" in layers
    assert m.mask_report["total"] == 800 + 51_200 + 32_768 + 320 + 138
    assert out["measured_sparsity"] == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize(("options", "pruning"), [
    (["--pruner", "grasp", "--grasp-temperature", "50", "--grasp-examples-per-class", "5"],
     PruneSettings("grasp", grasp_temperature=50.0, grasp_examples_per_class=5)),
    (["--pruner", "synflow", "--synflow-iterations", "3"],
     PruneSettings("synflow", synflow_iterations=3)),
], ids=["grasp", "synflow"])
def test_trial_pruner_options_reach_the_pruner(measured, capsys, small_sgd, options,
                                               pruning):
    out = _trial([*small_sgd, "--sparsity", "0.9", "--batch-size", "16", "--lr", "0.05",
                  "--max-steps", "4", "--eval-every", "4", *options], capsys)
    ((config, _, _, m),) = measured
    assert config.pruning == pruning
    assert m.mask_report["kept"] == 6224 and out["measured_sparsity"] == pytest.approx(0.9,
                                                                                     abs=1e-4)


DECAY_PLUGIN = """
import tp_small_mnist  # registers the cut MNIST

from sparsedp.plugins import Workload, register_workload

register_workload(Workload(
    name="tp-mnist-decay", dataset=tp_small_mnist.DATASET, model="simple-cnn", optimizer="sgd",
    schedule="linear-decay", searched=("lr", "decay_steps", "end_lr_factor"),
    goal_error=0.02, eval_every=16, max_steps=100, description="decay test", version="1"))
"""


@pytest.fixture
def decay_plugin(plugins, small_sgd):
    """A plugin module registering a workload with linear decay on the cut MNIST (the
    built-in one is on CIFAR-10)."""
    return plugins("tp_decay_workload", DECAY_PLUGIN)


def test_trial_decay_options_set_the_schedule(measured, capsys, decay_plugin):
    """--decay-steps 1 --end-lr-factor 0: after its first step the learning rate is 0, so
    the weights stop moving and every check sees the same exact error."""
    base = ["--plugin", decay_plugin, "--workload", "tp-mnist-decay", "--sparsity", "0",
            "--batch-size", "16", "--lr", "0.1", "--goal-error", "0.01", "--max-steps", "12",
            "--eval-every", "4", "--full-eval"]
    _trial([*base, "--decay-steps", "1", "--end-lr-factor", "0"], capsys)
    ((config, _, _, m),) = measured
    assert (config.decay_steps, config.end_lr_factor) == (1, 0.0)
    assert [config.schedule()(step) for step in (0, 1, 5)] == [0.1, 0.0, 0.0]
    assert [step for step, _, _ in m.curve] == [4, 8, 12]
    errors = {error for _, error, exact in m.curve if exact}
    assert len(errors) == 1 and len(m.curve) == 3
    assert main(["trial", *base, "--decay-steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "uses linear decay: give --decay-steps and" in err[0]


# --------------------------------------------------------------------------- report RESULTS

SMALL = """
name = "{name}"
sparsities = [0.0]
batch_sizes = {batches}
trials = 2
results = "{results}"
goal_error = 0.6
max_steps = 16
eval_every = 8
[engine]
eval_batch_size = 1000
"""  # then the cut MNIST's tables (tests/small_mnist.py)


def test_report_of_a_results_directory_holding_several_experiments(tmp_path, mnist_small,
                                                                   capsys):
    results = tmp_path / "shared"
    experiments = {"alpha": [16, 32], "beta": [64]}
    for name, batches in experiments.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(SMALL.format(name=name, batches=batches, results=results)
                        + small_mnist_tables(mnist_small, "small-sgd",
                                             extends="mnist-simplecnn-sgd"))
        assert main(["run", str(path)]) == 0
    capsys.readouterr()
    options = ["--bootstrap", "5", "--formats", "png"]
    assert main(["report", str(results), *options]) == 2  # which one?
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds the experiments alpha, beta; choose one" in err[0]
    assert main(["report", str(results), "--name", "gamma", *options]) == 2
    assert "alpha, beta" in capsys.readouterr().err
    for name, batches in experiments.items():
        out = tmp_path / f"report-{name}"
        assert main(["report", str(results), "--name", name, "--out", str(out), *options]) == 0
        assert capsys.readouterr().out.strip() == str(out / "report.html")
        summary = json.loads((out / "summary.json").read_text())
        trials = Experiment.from_file(tmp_path / f"{name}.toml").trials()
        assert summary["counts"]["n_trials"] == len(trials) == 2 * len(batches)
        assert sorted(s["batch_size"] for s in summary["studies"]) == batches
        complete = trials[trials.status == "complete"]
        best = complete.groupby("batch_size")["steps_to_result"].min().to_dict()
        assert {s["batch_size"]: s["steps"] for s in summary["studies"]
                if s["steps"] is not None} == best
