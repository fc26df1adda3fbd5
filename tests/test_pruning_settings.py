"""Pruning settings: validation, the experiment file's [pruning] table, study and cache keys."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from sparsedp.cli import trial_cmd
from sparsedp.pruning import Pruner, PruneSettings, pruner_names, register_pruner, registry
from sparsedp.specs import ExperimentFileError, StudySpec, load_experiment

BASE = """\
name = "t"
workloads = ["mnist-simplecnn-momentum"]
sparsities = [0.0, 0.9]
batch_sizes = [64]
"""


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"method": "grasp", "grasp_temperature": 0}, "grasp_temperature must be a number > 0"),
        ({"method": "grasp", "grasp_temperature": float("nan")}, "must be a number > 0"),
        ({"method": "grasp", "grasp_temperature": True}, "must be a number > 0"),
        ({"method": "grasp", "grasp_examples_per_class": 0}, "integer >= 1, got 0"),
        ({"method": "synflow", "synflow_iterations": 2.5}, "integer >= 1, got 2.5"),
        ({"method": "snip", "synflow_iterations": 3}, "applies to method 'synflow' only"),
        ({"method": "synflow", "grasp_temperature": 50.0}, "applies to method 'grasp' only"),
    ],
)
def test_bad_settings_are_one_line_errors(options, fragment):
    with pytest.raises(ValueError, match=fragment):
        PruneSettings(**options)


def test_old_study_keys_are_unchanged():
    """Keys computed before the GraSP and SynFlow options existed (commit e2d8011)."""
    assert StudySpec("mnist-simplecnn-momentum", 0.9, 128).key == "0965bf6cfe61ec76"
    old = StudySpec("mnist-simplecnn-momentum", 0.9, 128,
                    pruning=PruneSettings("magnitude", True, snip_batches=10))
    assert old.key == "fe3b12286db3243c"


def test_new_options_enter_the_key_only_away_from_their_defaults():
    def key(**options):
        return StudySpec("mnist-simplecnn-momentum", 0.9, 128,
                         pruning=PruneSettings(**options)).key

    grasp = key(method="grasp")
    assert key(method="grasp", grasp_temperature=200, grasp_examples_per_class=25) == grasp
    assert key(method="grasp", grasp_temperature=100) != grasp
    assert key(method="grasp", grasp_temperature=100) == key(method="grasp",
                                                             grasp_temperature=100.0)
    assert key(method="synflow") != key(method="synflow", synflow_iterations=10)


def test_cache_identity_is_the_old_dict_for_old_settings():
    assert PruneSettings().cache_identity() == {
        "method": "snip", "prune_biases": False, "snip_batch_size": 100, "snip_batches": None,
    }
    assert PruneSettings("synflow", synflow_iterations=7).cache_identity()[
        "synflow_iterations"] == 7


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_pruning_table_reads_the_method_options(tmp_path):
    spec = load_experiment(write(tmp_path, BASE + (
        '[pruning]\nmethod = "grasp"\ngrasp_temperature = 100\ngrasp_examples_per_class = 10\n'
    )))
    assert spec.study_defaults.pruning == PruneSettings(
        "grasp", grasp_temperature=100.0, grasp_examples_per_class=10)
    spec = load_experiment(write(tmp_path, BASE + (
        '[pruning]\nmethod = "synflow"\nsynflow_iterations = 20\n'
    )))
    assert spec.study_defaults.pruning == PruneSettings("synflow", synflow_iterations=20)


@pytest.mark.parametrize(
    ("table", "key", "fragment"),
    [
        ('method = "grasp"\ngrasp_temperature = 0\n', "pruning.grasp_temperature", "> 0"),
        ('method = "grasp"\ngrasp_temperature = "hot"\n', "pruning.grasp_temperature",
         "expected a finite number"),
        ('method = "grasp"\ngrasp_examples_per_class = 0\n',
         "pruning.grasp_examples_per_class", ">= 1"),
        ('method = "synflow"\nsynflow_iterations = 1.5\n', "pruning.synflow_iterations",
         "whole number"),
        ('method = "snip"\nsynflow_iterations = 10\n', "pruning.synflow_iterations",
         "applies to method 'synflow' only"),
        ("grasp_temperature = 10\n", "pruning.grasp_temperature", "not 'snip'"),
        ('method = "grsap"\n', "pruning.method", "'grasp'"),
    ],
)
def test_pruning_table_errors_name_file_line_and_key(tmp_path, table, key, fragment):
    path = write(tmp_path, BASE + "[pruning]\n" + table)
    with pytest.raises(ExperimentFileError) as info:
        load_experiment(path)
    message = str(info.value)
    line = 5 + table.count("\n")
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert fragment in message and ";" in message and "\n" not in message


def test_a_pruner_registered_after_import_is_accepted_by_the_experiment_file(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    path = write(tmp_path, BASE + '[pruning]\nmethod = "mine"\n')
    with pytest.raises(ExperimentFileError, match="unknown value 'mine'"):
        load_experiment(path)
    register_pruner(Pruner("mine", lambda model, data, settings: {}, version="1"))
    assert load_experiment(path).study_defaults.pruning.method == "mine"


def _trial_args(**overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    trial_cmd.add_parser(parser.add_subparsers())
    argv = ["trial", "--workload", "mnist-simplecnn-sgd", "--sparsity", "0.9",
            "--batch-size", "16", "--lr", "0.1"]
    for key, value in overrides.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return parser.parse_args(argv)


def test_trial_command_options():
    config = trial_cmd._config(_trial_args(pruner="grasp", grasp_temperature=50))
    assert config.pruning == PruneSettings("grasp", grasp_temperature=50.0)
    config = trial_cmd._config(_trial_args(pruner="synflow", synflow_iterations=5))
    assert dataclasses.asdict(config.pruning)["synflow_iterations"] == 5
    with pytest.raises(ValueError, match="--synflow-iterations applies to --pruner synflow"):
        trial_cmd._config(_trial_args(synflow_iterations=5))
    with pytest.raises(ValueError, match="unknown pruner 'magic'; known: snip"):
        trial_cmd._config(_trial_args(pruner="magic"))


def test_every_pruning_option_and_pruner_is_documented():
    docs = Path(__file__).resolve().parents[1] / "docs"
    text = (docs / "experiment-file.md").read_text()
    section = text.split("## `[pruning]`", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == {f.name for f in dataclasses.fields(PruneSettings)}
    pruners = (docs / "pruners.md").read_text()
    listed = set(re.findall(r"^\| `([a-z-]+)`", pruners, flags=re.MULTILINE))
    assert set(pruner_names()) <= listed
