"""The CIFAR-10 ResNet-8 workload (Nesterov, linear decay) end to end at a tiny budget on
the lossy JPEG copy: run, status, export, report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sparsedp.cli.main import main
from sparsedp.training.schedules import Schedule
from sparsedp.training.trial_config import TrialConfig

pytestmark = pytest.mark.slow

FILE = """
name = "w3-tiny"
workloads = ["cifar10-resnet8-nesterov"]
sparsities = [0.0, 0.5]
batch_sizes = [16]
trials = 2
results = "{results}"
data_dir = "{data}"
goal_error = 0.88
max_steps = 24
eval_every = 24  # one check per trial: checks on 5,000 CIFAR images dominate the time
[pruning]
snip_batches = 1
[search.decay_steps]
low = 8
high = 16
[engine]
eval_batch_size = 500
stop_hopeless = false
"""


def test_resnet8_with_linear_decay_on_the_jpeg_copy(cifar_jpeg_tarball: Path, tmp_path: Path,
                                                    monkeypatch, capsys) -> None:
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "w3.toml"
    path.write_text(FILE.format(results=tmp_path / "results", data=cifar_jpeg_tarball.parent))
    assert main(["run", str(path)]) == 0
    assert main(["export", str(path), "--out", str(tmp_path / "t.csv")]) == 0
    frame = pd.read_csv(tmp_path / "t.csv")
    assert len(frame) == 4 and set(frame["status"]) <= {"complete", "incomplete"}
    assert set(frame["dataset_label"]) == {"CIFAR-10 (lossy JPEG copy, not bit-identical)"}
    assert frame["decay_steps"].between(8, 16).all()  # the searched decay, inside the budget
    assert frame["end_lr_factor"].between(1e-4, 0.1).all()
    assert frame["momentum"].notna().all() and (frame["steps_taken"] > 0).all()
    # the decay the trials trained with ends within their 24 steps at lr · end factor
    row = frame.iloc[0]
    config = TrialConfig("cifar10-resnet8-nesterov", 0.0, 16, row["lr"],
                         momentum=row["momentum"], decay_steps=row["decay_steps"],
                         end_lr_factor=row["end_lr_factor"])
    schedule = config.schedule()
    assert isinstance(schedule, Schedule) and schedule.kind == "linear-decay"
    assert schedule(24) == pytest.approx(row["lr"] * row["end_lr_factor"])
    assert schedule(0) == pytest.approx(row["lr"])

    capsys.readouterr()
    assert main(["status", str(path)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│ cifar10")]
    assert len(rows) == 2
    out = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out), "--bootstrap", "5",
                 "--formats", "png"]) == 0
    page = (out / "report.html").read_text()
    assert "lossy copy of the original data" in page
    assert json.loads((out / "summary.json").read_text())["counts"]["n_trials"] == 4
