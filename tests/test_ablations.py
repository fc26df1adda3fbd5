"""[pruning] ablation: shuffle, reinit, invert (docs/pruners.md#ablations), their keys, the
experiment file and `sparsedp trial --ablation`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from sparsedp.cli import trial_cmd
from sparsedp.cli.main import main
from sparsedp.data.splits import SplitData
from sparsedp.models import build_model, prunable_parameters
from sparsedp.pruning import PruneSettings, prune
from sparsedp.pruning.ablation import ABLATIONS, reinit_seed
from sparsedp.pruning.erk import erk_counts
from sparsedp.specs import ExperimentFileError, StudySpec, load_experiment
from sparsedp.training.trainer import EngineSettings, TrialRun, build_trial_model
from sparsedp.training.trial_config import TrialConfig

BASE = """\
name = "t"
workloads = ["mnist-simplecnn-momentum"]
sparsities = [0.9]
batch_sizes = [64]
"""


def test_an_existing_study_key_is_unchanged_and_ablations_get_their_own():
    """The keys of tests/test_pruning_settings.py, computed before ablations existed."""
    assert StudySpec("mnist-simplecnn-momentum", 0.9, 128,
                     pruning=PruneSettings(ablation="none")).key == "0965bf6cfe61ec76"
    old = StudySpec("mnist-simplecnn-momentum", 0.9, 128,
                    pruning=PruneSettings("magnitude", True, snip_batches=10, ablation="none"))
    assert old.key == "fe3b12286db3243c"
    keys = {StudySpec("mnist-simplecnn-momentum", 0.9, 128,
                      pruning=PruneSettings(ablation=a)).key for a in ABLATIONS}
    assert len(keys) == len(ABLATIONS) and "0965bf6cfe61ec76" in keys


def test_an_ablation_shares_the_methods_saliency_cache():
    assert PruneSettings(ablation="invert").cache_identity() == PruneSettings().cache_identity()


def test_a_bad_ablation_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"^ablation must be one of none, shuffle, reinit, "
                                         r"invert, got 'shufle'$"):
        PruneSettings(ablation="shufle")


def test_the_experiment_file_reads_the_ablation(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(BASE + '[pruning]\nmethod = "grasp"\nablation = "reinit"\n')
    assert load_experiment(path).study_defaults.pruning == PruneSettings("grasp",
                                                                         ablation="reinit")
    path.write_text(BASE + '[pruning]\nablation = "shufle"\n')
    with pytest.raises(ExperimentFileError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}:6: pruning.ablation: unknown value 'shufle'"), message
    assert "'shuffle'" in message and "\n" not in message


@pytest.fixture(scope="module")
def small(mnist) -> SplitData:
    return SplitData(mnist.dataset, mnist.train_index[:256], mnist.val_index[:100],
                     mnist.mean, mnist.std)


def _simple_cnn(seed: int = 0) -> nn.Module:
    return build_model("simple-cnn", channels=1, image_size=28, num_classes=10, seed=seed)


def test_shuffle_with_snip_is_the_random_snip_layers_control(small):
    shuffled = prune(_simple_cnn(), 0.9, PruneSettings(ablation="shuffle", snip_batches=2),
                     small, seed=4)
    control = prune(_simple_cnn(), 0.9, PruneSettings("random-snip-layers", snip_batches=2),
                    small, seed=4)
    snip = prune(_simple_cnn(), 0.9, PruneSettings(snip_batches=2), small, seed=4)
    for name in snip.names:
        assert torch.equal(shuffled[name], control[name]), name
        assert shuffled[name].sum() == snip[name].sum(), name
    assert not torch.equal(shuffled["fc.weight"], snip["fc.weight"])


def _by_hand() -> nn.Module:
    model = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[8.0, -1.0, 7.0, 2.0], [-6.0, 3.0, 5.0, -4.0]]))
    return model


def test_invert_keeps_the_lowest_scores_by_hand():
    """magnitude on a 2x4 linear layer with |w| = 8, 1, 7, 2, 6, 3, 5, 4: keeping 3 of 8
    (sparsity 0.625) keeps |w| 8, 7, 6; inverted it keeps 1, 2, 3."""
    plain = prune(_by_hand(), 0.625, PruneSettings("magnitude"), None)
    assert plain["weight"].tolist() == [[1, 0, 1, 0], [1, 0, 0, 0]]
    model = _by_hand()
    kept = prune(model, 0.625, PruneSettings("magnitude", ablation="invert"), None)
    assert kept["weight"].tolist() == [[0, 1, 0, 1], [0, 1, 0, 0]]
    assert model.weight.tolist() == [[0.0, -1.0, 0.0, 2.0], [0.0, 3.0, 0.0, 0.0]]


def _config(ablation: str, sparsity: float = 0.9) -> TrialConfig:
    return TrialConfig("mnist-simplecnn-momentum", sparsity, 32, 0.01, momentum=0.9, seed=5,
                       max_steps=16, eval_every=16,
                       pruning=PruneSettings("magnitude", ablation=ablation))


def test_reinit_keeps_the_mask_on_fresh_weights_from_seed_plus_2_to_the_31(mnist):
    engine = EngineSettings(eval_batch_size=250)
    plain = TrialRun(_config("none"), mnist, engine=engine)
    fresh = TrialRun(_config("reinit"), mnist, engine=engine)
    assert reinit_seed(5) == 5 + 2**31
    expected = build_trial_model(_config("reinit"), mnist, seed=5 + 2**31)
    assert fresh.mask.names == plain.mask.names
    for name in plain.mask.names:
        assert torch.equal(fresh.mask[name], plain.mask[name]), name  # same mask
    params, plain_params = dict(fresh.model.named_parameters()), dict(
        plain.model.named_parameters())
    for name, p in expected.named_parameters():
        m = fresh.mask[name] if name in fresh.mask.names else torch.ones_like(p)
        assert torch.equal(params[name], p.detach() * m), name  # fresh weights, masked
    kept = fresh.mask["fc.weight"] == 1
    assert not torch.equal(params["fc.weight"][kept], plain_params["fc.weight"][kept])
    # the health was measured on the network that trains (the re-initialised one)
    assert fresh.result().mask_report["health"]["initial_loss"] != \
        plain.result().mask_report["health"]["initial_loss"]


def test_trial_command_ablation_option():
    parser = argparse.ArgumentParser()
    trial_cmd.add_parser(parser.add_subparsers())
    argv = ["trial", "--workload", "mnist-simplecnn-sgd", "--sparsity", "0.9",
            "--batch-size", "16", "--lr", "0.1"]
    assert trial_cmd._config(parser.parse_args(argv)).pruning.ablation == "none"
    config = trial_cmd._config(parser.parse_args([*argv, "--pruner", "grasp",
                                                  "--ablation", "invert"]))
    assert config.pruning == PruneSettings("grasp", ablation="invert")


def test_a_bad_ablation_flag_is_one_line_exit_2():
    out = subprocess.run([sys.executable, "-m", "sparsedp.cli.main", "trial", "--workload",
                          "mnist-simplecnn-sgd", "--sparsity", "0.9", "--batch-size", "8",
                          "--lr", "0.1", "--ablation", "bogus"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "--ablation: invalid choice: 'bogus'" in lines[0] and "shuffle" in lines[0]


@pytest.mark.slow
def test_trial_command_runs_random_erk_shuffled(capsys, shared_data_dir, tmp_path):
    """`sparsedp trial --pruner random-erk --ablation shuffle` on real MNIST: the ERK counts
    per layer (shuffling keeps them), and the mask health in the saved report."""
    report = tmp_path / "mask.json"
    code = main([
        "trial", "--workload", "mnist-simplecnn-momentum", "--sparsity", "0.9",
        "--batch-size", "32", "--lr", "0.01", "--momentum", "0.9", "--max-steps", "16",
        "--pruner", "random-erk", "--ablation", "shuffle", "--data-dir",
        str(shared_data_dir / "mnist"), "--json", "--save-mask-report", str(report),
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["steps_taken"] == 16
    saved = json.loads(report.read_text())
    shapes = {k: tuple(p.shape) for k, p in prunable_parameters(_simple_cnn()).items()}
    assert {layer["name"]: layer["kept"] for layer in saved["layers"]} == erk_counts(shapes,
                                                                                     0.9)
    health = saved["health"]
    assert [layer["name"] for layer in health["layers"]] == list(shapes)
    assert health["examples"] == 500 and 0 < health["initial_loss"] < 10
    printed = captured.err[captured.err.index("mask health"):]
    assert f"initial loss {health['initial_loss']:.4g} (ln 10 = 2.303)" in printed


def test_the_docs_name_every_ablation():
    text = (Path(__file__).resolve().parents[1] / "docs" / "pruners.md").read_text()
    section = text.split("## Ablations", 1)[1].split("\n## ", 1)[0]
    assert {a for a in ABLATIONS if f'| `"{a}"`' in section} == set(ABLATIONS)
