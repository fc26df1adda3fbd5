"""The command line: one real trial on MNIST, experiment commands, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from sparsedp.cli.main import main


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
    assert "all" in captured.err and "90.00%" in captured.err  # sparsity report printed
    assert json.loads(report.read_text())["kept"] == 6224


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


def test_run_status_export_report(tmp_path, shared_data_dir, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(f"""
name = "cli"
workloads = ["mnist-simplecnn-sgd"]
sparsities = [0.0, 0.5]
batch_sizes = [32, 64, 128]
trials = 2
results = "{tmp_path / 'results'}"
data_dir = "{shared_data_dir / 'mnist'}"
goal_error = 0.5
max_steps = 32
eval_every = 16
[pruning]
snip_batches = 1
[engine]
eval_batch_size = 1000
""")
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    assert main(["status", str(path)]) == 0
    status_text = capsys.readouterr().out
    assert sum(line.startswith("│ mnist-simplecnn-sgd") for line in status_text.splitlines()) == 6
    assert main(["export", str(path), "--format", "csv"]) == 0
    frame = pd.read_csv(tmp_path / "results" / "trials.csv")
    assert len(frame) == 12 and set(frame["batch_size"]) == {32, 64, 128}
    assert main(["export", str(path), "--format", "parquet"]) == 0
    assert len(pd.read_parquet(tmp_path / "results" / "trials.parquet")) == 12
    assert main(["report", str(path), "--bootstrap", "20", "--formats", "png"]) == 0
    page = (tmp_path / "results" / "report" / "report.html").read_text()
    summary = json.loads((tmp_path / "results" / "report" / "summary.json").read_text())
    assert "<img" in page and "cli" in page
    # the report's best steps agree with the stored trials
    complete = frame[frame.status == "complete"]
    best = complete.groupby(["sparsity", "batch_size"])["steps_to_result"].min().to_dict()
    reported = {(row["sparsity"], row["batch_size"]): row["steps"]
                for row in summary["studies"] if row["steps"] is not None}
    assert reported == best and len(best) >= 1
    assert summary["counts"]["n_trials"] == 12
    for (sparsity, batch), steps in best.items():  # status printed the same numbers
        assert any(f"{batch}" in line and f" {int(steps)} " in line
                   for line in status_text.splitlines() if f"{sparsity:g}" in line)


def test_trial_marks_a_lower_bound_error(capsys, shared_data_dir):
    argv = ["trial", "--workload", "mnist-simplecnn-sgd", "--sparsity", "0", "--batch-size",
            "16", "--lr", "0.001", "--max-steps", "16", "--data-dir",
            str(shared_data_dir / "mnist")]
    assert main(argv) == 0
    fast = capsys.readouterr().out
    assert "status: incomplete" in fast and "lower bound" in fast
    assert main([*argv, "--full-eval"]) == 0
    full = capsys.readouterr().out
    assert "lower bound" not in full
    full_error = float(full.split("final validation error: ")[1].split()[0])
    fast_error = float(fast.split("final validation error: >= ")[1].split()[0])
    assert fast_error <= full_error  # the early-exit figure is a true lower bound
