"""Mask health (sparsedp.pruning.health): units cut off by hand, the initial outputs against
a direct computation on real MNIST, the unhealthy rule, and its storage with every trial."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sparsedp.cli.main import main
from sparsedp.data.splits import SplitData
from sparsedp.pruning import Mask, PruneSettings
from sparsedp.pruning.health import initial_outputs, layer_health, mask_health, unhealthy_reasons
from sparsedp.report.mask_findings import MASK_HEALTH, mask_health_findings, mask_health_source
from sparsedp.training.batched import run_trials_batched
from sparsedp.training.trainer import EngineSettings, TrialRun, run_trial
from sparsedp.training.trial_config import TrialConfig


class Net(nn.Module):
    """28x28 MNIST: a 4-filter 5x5 convolution (stride 4 -> 4x6x6), 16 hidden units, 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5, stride=4)
        self.hidden = nn.Linear(4 * 6 * 6, 16)
        self.out = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x)).flatten(1)
        return self.out(torch.relu(self.hidden(x)))


def net() -> Net:
    torch.manual_seed(0)
    return Net()


def hand_mask(model: Net) -> Mask:
    """Filter 1 of the convolution, hidden units 0, 5, 9 and output class 7 lose every
    incoming weight; hidden unit 2 keeps only one."""
    conv = torch.ones(4, 1, 5, 5)
    conv[1] = 0
    hidden = torch.ones(16, 144)
    hidden[[0, 5, 9]] = 0
    hidden[2, 1:] = 0
    out = torch.ones(10, 16)
    out[7] = 0
    return Mask({"conv.weight": conv, "hidden.weight": hidden, "out.weight": out}, model)


def test_units_cut_off_by_hand():
    rows = layer_health(hand_mask(net()), num_classes=10)
    assert [(r["name"], r["kind"], r["units"], r["cut_off"]) for r in rows] == [
        ("conv.weight", "conv", 4, 1), ("hidden.weight", "linear", 16, 3),
        ("out.weight", "output", 10, 1)]
    assert rows[0]["density"] == 75 / 100  # 3 of 4 filters of 25 weights
    assert rows[1]["density"] == (16 * 144 - 3 * 144 - 143) / (16 * 144)
    assert rows[2]["density"] == 144 / 160  # 9 of 10 classes of 16 weights


def test_the_output_layer_is_the_last_with_as_many_units_as_classes():
    rows = layer_health(hand_mask(net()), num_classes=16)
    assert [r["kind"] for r in rows] == ["conv", "output", "linear"]
    assert [r["kind"] for r in layer_health(hand_mask(net()), None)] == [
        "conv", "linear", "linear"]


@pytest.fixture(scope="module")
def small(mnist) -> SplitData:
    return SplitData(mnist.dataset, mnist.train_index[:600], mnist.val_index[:100],
                     mnist.mean, mnist.std)


def test_initial_outputs_are_those_of_the_first_500_training_examples(small):
    model = net()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    got = initial_outputs(model, small)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    x, y = small.train_batch(np.arange(500))
    with torch.no_grad():
        logits = model(x)
    assert got["examples"] == 500
    assert got["initial_loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)
    assert got["logit_std"] == pytest.approx(float(logits.std()), rel=1e-6)
    assert got["logit_max_abs"] == pytest.approx(float(logits.abs().max()), rel=1e-6)
    assert got["classes_predicted"] == len(set(logits.argmax(1).tolist()))


def test_mask_health_puts_it_together_and_judges_it(small):
    model = net()
    mask = hand_mask(model)
    mask.apply_(model)
    health = mask_health(model, mask, small)
    assert (health["classes_cut_off"], health["filters_cut_off"],
            health["hidden_units_cut_off"]) == (1, 1, 3)
    assert health["num_classes"] == 10 and health["examples"] == 500
    assert health["sample"] == "the first 500 examples of the training split"
    assert health["unhealthy"] == ["1 output class(es) cut off"]
    layers_only = mask_health(model, mask, None)
    assert "initial_loss" not in layers_only and layers_only["filters_cut_off"] == 1


@pytest.mark.parametrize(("health", "reasons"), [
    ({"num_classes": 10, "initial_loss": 4.6, "layers": []}, []),  # 2 ln 10 = 4.605
    ({"num_classes": 10, "initial_loss": 4.61, "layers": []},
     ["initial loss 4.61 > 2·ln(10) = 4.61"]),
    ({"num_classes": 10, "initial_loss": None, "layers": []}, ["initial loss not finite"]),
    ({"num_classes": 10, "classes_cut_off": 2, "layers": [
        {"name": "fc.weight", "units": 10, "cut_off": 2}]}, ["2 output class(es) cut off"]),
    ({"num_classes": 10, "layers": [{"name": "conv2.weight", "units": 64, "cut_off": 64}]},
     ["every unit of conv2.weight cut off"]),
])
def test_the_unhealthy_rule(health, reasons):
    assert 2 * math.log(10) == pytest.approx(4.60517, abs=1e-5)
    assert unhealthy_reasons(health) == reasons


def _config(ablation: str = "none", seed: int = 0) -> TrialConfig:
    return TrialConfig("mnist-simplecnn-sgd", 0.95, 32, 0.05, seed=seed, max_steps=8,
                       eval_every=8, pruning=PruneSettings("random", ablation=ablation))


def test_every_trial_stores_the_health_of_the_network_it_trains(mnist):
    engine = EngineSettings(eval_batch_size=250)
    run = TrialRun(_config(), mnist, engine=engine)
    report = run.result().mask_report
    assert report["health"] == mask_health(run.model, run.mask, mnist)  # before training
    assert [r["name"] for r in report["health"]["layers"]] == [r["name"]
                                                              for r in report["layers"]]
    # the batched groups measure the same, the reinit ablation on the fresh weights too
    configs = [_config("reinit", 1), _config("reinit", 2)]
    batched = run_trials_batched(configs, mnist, engine=engine)
    for config, result in zip(configs, batched, strict=True):
        assert result.mask_report == run_trial(config, mnist, engine=engine).mask_report
    assert batched[0].mask_report["health"] != batched[1].mask_report["health"]


@pytest.mark.slow
def test_grasp_on_simple_cnn_at_90_percent_starts_unhealthy_and_random_does_not(mnist):
    """The finding of docs/pruners.md (W2, seed 0): GraSP's pruned Simple-CNN starts with a
    loss far above 2·ln(10); a random mask of the same sparsity starts near ln(10)."""
    def health(method: str) -> dict:
        config = TrialConfig("mnist-simplecnn-momentum", 0.9, 128, 0.01, momentum=0.9,
                             max_steps=16, pruning=PruneSettings(method))
        return TrialRun(config, mnist).result().mask_report["health"]

    grasp, random = health("grasp"), health("random")
    assert grasp["initial_loss"] > 2 * math.log(10) and grasp["unhealthy"]
    assert grasp["logit_std"] > 10 * random["logit_std"]
    assert abs(random["initial_loss"] - math.log(10)) < 0.1 and random["unhealthy"] == []


# --------------------------------------------------------------------------- the report


def _row(batch_size: int, sparsity: float, loss: float | None, cut: int = 0,
         workload: str = "w") -> dict:
    health = {"num_classes": 10, "initial_loss": loss, "classes_cut_off": cut,
              "layers": [{"name": "fc.weight", "units": 10, "cut_off": cut}]}
    return {"workload": workload, "sparsity": sparsity, "batch_size": batch_size,
            "study_key": f"{sparsity}-{batch_size}",
            "mask_json": json.dumps({"kept": 1, "health": health})}


def test_the_finding_names_the_unhealthy_studies_of_a_curve():
    rows = [_row(64, 0.9, 20.4), _row(64, 0.9, 2.3), _row(128, 0.9, 3.1, cut=2),
            _row(256, 0.9, 2.4), _row(64, 0.5, 2.3), _row(128, 0.5, 4.0),
            {**_row(64, 0.8, 2.3), "mask_json": json.dumps({"kept": 1})},  # stored before
            {**_row(64, 0.8, 2.3), "mask_json": None}]
    findings = mask_health_findings(rows)
    assert [(f.workload, f.sparsity, f.level) for f in findings] == [("w", 0.9, "warning")]
    finding = findings[0]
    assert finding.kind == MASK_HEALTH
    assert finding.values["trials"] == 4 and finding.values["unhealthy_trials"] == 2
    assert finding.values["batch_sizes"] == [64, 128]
    assert finding.values["max_initial_loss"] == 20.4
    assert finding.values["max_classes_cut_off"] == 2
    assert finding.text == (
        "At 90% sparsity: 2 of 4 trials started from an unhealthy mask (studies B = 64, 128): "
        "initial loss up to 20.4 (healthy: at most 2·ln 10 = 4.61); up to 2 output classes "
        "cut off. Their steps to result measure a network that starts broken.")
    only = mask_health_source(rows, {"0.9-128"})(None)  # type: ignore[arg-type]
    assert [f.values["batch_sizes"] for f in only] == [[128]]


@pytest.mark.slow
def test_the_report_flags_grasps_unhealthy_masks(tmp_path, shared_data_dir, monkeypatch):
    """A real run and report: GraSP at 90% on Simple-CNN (unhealthy, docs/pruners.md) is
    flagged; the dense curve (nothing pruned) is not."""
    monkeypatch.setenv("SPARSEDP_DATA_DIR", str(shared_data_dir))
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "exp.toml"
    path.write_text("""
name = "health"
workloads = ["mnist-simplecnn-momentum"]
sparsities = [0.0, 0.9]
batch_sizes = [128]
trials = 2
results = "results"
goal_error = 0.6
max_steps = 16
eval_every = 16
[pruning]
method = "grasp"
[engine]
eval_batch_size = 1000
""")
    assert main(["run", str(path)]) == 0
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 0
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    flagged = [f for f in summary["findings"] if f["kind"] == MASK_HEALTH]
    assert [(f["sparsity"], f["level"]) for f in flagged] == [(0.9, "warning")]
    assert flagged[0]["values"]["unhealthy_trials"] == 2
    assert flagged[0]["values"]["max_initial_loss"] > 2 * math.log(10)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Mask health" in page and "started from an unhealthy mask" in page
    store = sqlite3.connect(tmp_path / "results" / "sparsedp.sqlite")
    stored = [json.loads(r[0]) for r in store.execute("SELECT mask_json FROM trials")]
    assert len(stored) == 4 and all(r["health"]["examples"] == 500 for r in stored)
