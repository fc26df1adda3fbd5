"""The precision option: FP32 by default, TF32/bf16 as studies of their own, labelled."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sparsedp.cli.main import main
from sparsedp.report.notes import precision_note
from sparsedp.specs import ExperimentFileError, StudySpec, load_experiment

EXPERIMENT = """name = "p"
workloads = ["mnist-simplecnn-momentum"]
sparsities = [0.9]
batch_sizes = [64]
trials = 2

[engine]
{engine}
"""


def write(tmp_path: Path, engine: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT.format(engine=engine))
    return path


def test_precision_changes_the_study_key_only_when_not_fp32(tmp_path: Path) -> None:
    plain = load_experiment(write(tmp_path, "")).studies()[0]
    fp32 = load_experiment(write(tmp_path, 'precision = "fp32"')).studies()[0]
    bf16 = load_experiment(write(tmp_path, 'precision = "bf16"')).studies()[0]
    assert plain.key == fp32.key == StudySpec("mnist-simplecnn-momentum", 0.9, 64).key
    assert bf16.key != fp32.key and bf16.precision == "bf16"


@pytest.mark.parametrize(("engine", "message"), [
    ('precision = "tf32"', 'exp.toml:8: engine.precision: precision "tf32" needs a CUDA device'),
    ('precision = "fp16"',
     "exp.toml:8: engine.precision: unknown value 'fp16'; did you mean 'bf16'?"),
])
def test_bad_precision_is_a_file_error(tmp_path: Path, engine: str, message: str) -> None:
    with pytest.raises(ExperimentFileError, match="precision") as info:
        load_experiment(write(tmp_path, engine))
    assert message in str(info.value)


def test_report_labels_changed_numerics() -> None:
    frame = pd.DataFrame({"precision": ["fp32", "bf16", "bf16", None]})
    note = precision_note(frame)
    assert "Changed numerics: 2 in BF16" in note and "not the paper's protocol" in note
    assert precision_note(pd.DataFrame({"precision": ["fp32", None]})) == ""


def test_plan_refuses_a_device_this_machine_lacks(tmp_path: Path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    code = main(["plan", str(write(tmp_path, 'device = "cuda"'))])
    err = capsys.readouterr().err
    assert code == 2 and "device 'cuda'" in err and "Traceback" not in err
