"""Plugins: registries, parts in the experiment file, study keys, preflight, worker import.

Broken plugins run through the CLI's ``main`` in this process (cheap); the example in
examples/custom runs through the ``sparsedp`` command in a subprocess on real MNIST.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sparsedp.cli.main import main
from sparsedp.data import DataError
from sparsedp.data.custom import DatasetSpec, ImageFolder, NpzFile, load_registered
from sparsedp.models import MODELS, build_model, prunable_parameters
from sparsedp.plugins import (
    Pruner,
    Workload,
    load_entry_points,
    register_dataset,
    register_model,
    register_pruner,
    register_workload,
)
from sparsedp.pruning import registry as pruner_registry
from sparsedp.specs import ExperimentFileError, StudySpec, load_experiment
from sparsedp.store import ResultStore
from sparsedp.training.workloads import get_workload

REPO = Path(__file__).resolve().parents[1]
_unique = itertools.count()


class Tiny(nn.Module):
    def __init__(self, channels: int, size: int, classes: int, out: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.fc = nn.Linear(4 * size * size, out or classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def blobs(n_train: int = 300, n_test: int = 30, classes: int = 3, size: int = 6):
    """Separable float images: class k is a bright square in row k, plus noise."""
    rng = np.random.default_rng(0)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % classes
        x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
        for i, label in enumerate(y):
            x[i, 0, 2 * label : 2 * label + 2] += 2.0
        return x, y.astype(np.int64)

    return (*make(n_train), *make(n_test))


def _workload(name: str, dataset: str, model: str, **kw) -> Workload:
    fields = dict(optimizer="sgd", schedule="constant", searched=("lr",), goal_error=0.5,
                  eval_every=5, max_steps=20, description="")
    return Workload(name=name, dataset=dataset, model=model, **{**fields, **kw})


# ------------------------------------------------------------------------- study keys


def test_versions_of_plugin_parts_enter_the_study_key(registries):
    register_model("tp-model", Tiny, version="1")
    register_dataset("tp-data", blobs, version="1")
    register_workload(_workload("tp-work", "tp-data", "tp-model"))
    keys = [StudySpec("tp-work", 0.5, 8).key]
    register_model("tp-model", Tiny, version="2", replace=True)
    keys.append(StudySpec("tp-work", 0.5, 8).key)
    register_dataset("tp-data", blobs, version="2", replace=True)
    keys.append(StudySpec("tp-work", 0.5, 8).key)
    register_workload(_workload("tp-work", "tp-data", "tp-model", version="2"), replace=True)
    keys.append(StudySpec("tp-work", 0.5, 8).key)
    register_workload(_workload("tp-work", "tp-data", "tp-model", version="2", max_steps=30),
                      replace=True)  # the definition itself, not only the version
    keys.append(StudySpec("tp-work", 0.5, 8).key)
    assert len(set(keys)) == len(keys)

    # a plugin pruner's version too; built-in parts leave the paper's keys as they were
    saliency = pruner_registry.get_pruner("magnitude").saliency
    register_pruner(Pruner("tp-prune", saliency, version="1", needs_data=False))
    from sparsedp.pruning import PruneSettings

    first = StudySpec("mnist-simplecnn-momentum", 0.9, 128, pruning=PruneSettings("tp-prune"))
    register_pruner(Pruner("tp-prune", saliency, version="2", needs_data=False), replace=True)
    second = StudySpec("mnist-simplecnn-momentum", 0.9, 128, pruning=PruneSettings("tp-prune"))
    assert first.key != second.key
    assert StudySpec("mnist-simplecnn-momentum", 0.9, 128).parts == ()
    assert StudySpec("mnist-simplecnn-momentum", 0.9, 128).key == "0965bf6cfe61ec76"


# --------------------------------------------------------------- registries and data


def test_prunable_rule_default_and_override(registries):
    class WithNorm(Tiny):
        def __init__(self, channels: int, size: int, classes: int) -> None:
            super().__init__(channels, size, classes)
            self.embed = nn.Parameter(torch.zeros(3, 3))  # rank 2, but not conv or linear

    register_model("tp-norm", WithNorm)
    register_model("tp-own", WithNorm, prunable=lambda m: {"fc.weight": m.fc.weight})
    kw = dict(channels=1, image_size=6, num_classes=3, seed=0)
    assert list(prunable_parameters(build_model("tp-norm", **kw))) == ["conv.weight",
                                                                       "fc.weight"]
    assert list(prunable_parameters(build_model("tp-own", **kw))) == ["fc.weight"]
    with_biases = prunable_parameters(build_model("tp-own", **kw), include_biases=True)
    assert list(with_biases) == ["conv.bias", "fc.weight", "fc.bias"]
    # the factory's own initialisation is made under the trial's seed
    register_model("tp-factory-init", Tiny, init="factory")
    a, b = (build_model("tp-factory-init", **kw) for _ in range(2))
    assert torch.equal(a.fc.weight, b.fc.weight)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(train_labels=d["train_labels"].astype(np.float32)),
     "train_labels has dtype float32; labels must be integers"),
    (lambda d: d.update(train_images=d["train_images"].astype(np.int32)),
     "train_images has dtype int32; images must be uint8"),
    (lambda d: d.update(test_labels=d["test_labels"][:5]), "30 test images but 5 test labels"),
    (lambda d: d.update(train_images=d["train_images"][:, 0, :, :4],
                        test_images=d["test_images"][:, 0, :, :4]), "images are 6x4"),
    (lambda d: d.update(train_labels=d["train_labels"] - 1), "negative label -1"),
    (lambda d: d.update(train_images=d["train_images"].reshape(300, -1)), "has shape (300, 36)"),
])
def test_bad_data_sets_give_one_line(change, message):
    arrays = dict(zip(("train_images", "train_labels", "test_images", "test_labels"), blobs(),
                      strict=True))
    change(arrays)
    spec = DatasetSpec("tp-bad", lambda: arrays, origin="plugin tp_mod")
    with pytest.raises(DataError) as caught:
        load_registered(spec)
    text = str(caught.value)
    assert message in text and "data set 'tp-bad' (plugin tp_mod)" in text and "\n" not in text


@pytest.mark.parametrize("channels_last", [False, True])
def test_checks_run_in_evaluation_mode(channels_last):
    """Dropout off and batch norm's running statistics during a check, untouched after."""
    from sparsedp.training.evaluation import Evaluator

    linear = nn.Linear(4, 2)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(torch.tensor([0.0, 1.0]))  # class 1, unless dropout zeroes it all
    model = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4), linear, nn.Dropout(0.999999))
    before = model[1].running_mean.clone()
    x, y = torch.randn(8, 1, 2, 2), torch.ones(8, dtype=torch.int64)
    check = Evaluator(x, y, 0.5, batch_size=4, early_exit=False, channels_last=channels_last)
    assert check(model).errors == 0 and model.training
    assert torch.equal(model[1].running_mean, before)


def test_uint8_nhwc_and_npz_kinds(tmp_path):
    x, y, _, ty = blobs()
    u8 = (np.clip(x, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # NHWC
    np.savez(tmp_path / "d.npz", x_train=u8, y_train=y, x_test=u8[:30], y_test=ty)
    data = load_registered(DatasetSpec("tp-npz", NpzFile(str(tmp_path / "d.npz"))))
    assert data.train_images.shape == (300, 1, 6, 6) and data.train_images.dtype == np.uint8
    assert data.classes == ("0", "1", "2")
    np.savez(tmp_path / "e.npz", images=u8)
    with pytest.raises(DataError, match="it needs x_train, y_train, x_test, y_test"):
        load_registered(DatasetSpec("tp-npz", NpzFile(str(tmp_path / "e.npz"))))


def test_image_folder_kind(tmp_path):
    from PIL import Image

    for split, count in (("train", 6), ("test", 2)):
        for label, cls in enumerate(("cat", "dog")):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(count):
                pixels = np.full((8, 8), 20 * i + 100 * label, dtype=np.uint8)
                Image.fromarray(pixels, "L").save(tmp_path / split / cls / f"{i}.png")
    data = load_registered(DatasetSpec("tp-folder", ImageFolder(str(tmp_path))))
    assert data.classes == ("cat", "dog") and data.train_images.shape == (12, 1, 8, 8)
    assert list(data.train_labels) == [0] * 6 + [1] * 6 and not data.lossy
    assert int(data.train_images[7, 0, 0, 0]) == 120  # dog/1.png, files in name order
    Image.fromarray(np.zeros((8, 9), np.uint8), "L").save(tmp_path / "test" / "dog" / "x.png")
    with pytest.raises(DataError, match=r"x.png: image is 9x8, the others are 8x8; resize it"):
        load_registered(DatasetSpec("tp-folder", ImageFolder(str(tmp_path))))


def test_entry_points_are_loaded(registries, tmp_path, monkeypatch):
    (tmp_path / "tp_ep_parts.py").write_text(
        "from sparsedp.plugins import register_model\n"
        "from torch import nn\n"
        "register_model('tp-ep-model', lambda c, s, k: nn.Linear(c * s * s, k))\n")
    dist = tmp_path / "tp_ep_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tp-ep-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sparsedp.plugins]\nparts = tp_ep_parts\n")
    sys.path.insert(0, str(tmp_path))
    import sparsedp.plugins as plugins

    monkeypatch.setattr(plugins, "_entry_points_loaded", False)
    assert "parts" in load_entry_points()
    assert MODELS["tp-ep-model"].origin.startswith("plugin tp_ep_parts (entry point 'parts'")


# ------------------------------------------------------------- the experiment file


def _experiment(tmp_path: Path, body: str, plugin: str | None = None,
                name: str | None = None) -> tuple[Path, str]:
    module = name or f"tp_mod{next(_unique)}"
    if plugin is not None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(plugin))
    path = tmp_path / "exp.toml"
    plugins = f'plugins = ["{module}"]\n' if plugin is not None else ""
    path.write_text(f'name = "tp"\n{plugins}sparsities = [0.5]\nbatch_sizes = [8]\n'
                    f"trials = 2\n{textwrap.dedent(body)}")
    return path, module


WORKLOAD = """
[workloads.tp-mnist]
dataset = "mnist"
model = "simple-cnn"
optimizer = "momentum"
schedule = "constant"
searched = ["lr", "momentum"]
goal_error = 0.35
max_steps = 20000
"""


def test_workload_defined_in_the_file(registries, tmp_path):
    path, _ = _experiment(tmp_path, WORKLOAD + "eval_every = 8\n"
                          "[workloads.tp-mnist.model_options]\nhidden_units = 16\n")
    spec = load_experiment(path)
    assert spec.workloads == ("tp-mnist",)
    workload = spec.plugins.workloads[0]
    assert (workload.goal_error, workload.eval_every, workload.model_options) == \
        (0.35, 8, {"hidden_units": 16})
    study = spec.studies()[0]
    assert study.parts and study.parts[0][0] == "workload"
    # the definition is part of the key: another goal is another study
    path.write_text(path.read_text().replace("goal_error = 0.35", "goal_error = 0.3"))
    assert load_experiment(path).studies()[0].key != study.key
    # an empty table runs a registered (here built-in) workload as it is
    path.write_text(path.read_text() + "[workloads.mnist-simplecnn-sgd]\n")
    assert load_experiment(path).workloads == ("tp-mnist", "mnist-simplecnn-sgd")


@pytest.mark.parametrize("edit, message", [
    (("max_steps = 20000", ""), "exp.toml:6: workloads.tp-mnist: missing required key "
                                "'max_steps'; add e.g. max_steps = 20000"),
    (('model = "simple-cnn"', 'model = "lenet"'), "exp.toml:8: workloads.tp-mnist.model: "
                                                  "workload 'tp-mnist' uses the unknown model"),
    (('dataset = "mnist"', 'dataset = "mnits"'), "exp.toml:7: workloads.tp-mnist.dataset: "
                                                 "workload 'tp-mnist' uses the unknown data "
                                                 "set 'mnits'; did you mean 'mnist'?"),
    (('searched = ["lr", "momentum"]', 'searched = ["lr"]'),
     "workloads.tp-mnist.searched: momentum with a constant schedule needs 'momentum' searched"),
    (("[workloads.tp-mnist]", "[workloads.mnist-simplecnn-sgd]"),
     "workload 'mnist-simplecnn-sgd' is already defined (built in)"),
    (("goal_error = 0.35", "goal_error = 35"), "goal_error: 35 is outside (0, 1)"),
    (("max_steps = 20000", "max_steps = 20000\nlayers = 3"),
     "workloads.tp-mnist.layers: unknown key"),
])
def test_workload_errors_name_file_line_key_and_fix(registries, tmp_path, edit, message):
    path, _ = _experiment(tmp_path, WORKLOAD.replace(*edit))
    with pytest.raises(ExperimentFileError) as caught:
        load_experiment(path)
    assert message in str(caught.value)


def test_workloads_with_their_own_pruning_and_extends(registries, tmp_path):
    """Several pruners in one experiment: one workload each, derived with ``extends``."""
    path, _ = _experiment(tmp_path, WORKLOAD + "[workloads.tp-mnist.pruning]\n"
                          'method = "grasp"\ngrasp_temperature = 100\n'
                          '[workloads.tp-synflow]\nextends = "tp-mnist"\n'
                          'pruning = { method = "synflow", synflow_iterations = 5 }\n'
                          '[workloads.tp-sgd]\nextends = "mnist-simplecnn-sgd"\n'
                          "goal_error = 0.3\n[pruning]\nmethod = \"magnitude\"\n")
    spec = load_experiment(path)
    by_workload = {s.workload: s for s in spec.studies()}
    grasp, synflow, sgd = (by_workload[w] for w in ("tp-mnist", "tp-synflow", "tp-sgd"))
    assert (grasp.pruning.method, grasp.pruning.grasp_temperature) == ("grasp", 100)
    assert (synflow.pruning.method, synflow.pruning.synflow_iterations) == ("synflow", 5)
    assert sgd.pruning.method == "magnitude"  # no table of its own: the experiment's
    derived = get_workload("tp-synflow")
    assert (derived.goal_error, derived.model, derived.searched) == \
        (0.35, "simple-cnn", ("lr", "momentum"))
    assert get_workload("tp-sgd").optimizer == "sgd" and get_workload("tp-sgd").goal_error == 0.3
    assert len({s.key for s in spec.studies()}) == 3
    # only the pruner differs: still another study
    path.write_text(path.read_text().replace('method = "synflow", synflow_iterations = 5',
                                             'method = "grasp", grasp_temperature = 100'))
    again = {s.workload: s for s in load_experiment(path).studies()}
    assert again["tp-synflow"].pruning == grasp.pruning
    assert again["tp-synflow"].key != synflow.key


@pytest.mark.parametrize("extra, message", [
    ('[workloads.tp-b]\nextends = "tp-mnistt"\n',
     "exp.toml:15: workloads.tp-b.extends: unknown workload 'tp-mnistt'; did you mean "
     "'tp-mnist'?"),
    ('[workloads.tp-b]\nextends = "tp-mnist"\npruning = { method = "snap" }\n',
     "workloads.tp-b.pruning.method: "),
    ('[workloads.tp-b]\nextends = "tp-mnist"\npruning = { synflow_iterations = 5 }\n',
     "workloads.tp-b.pruning.synflow_iterations: applies to method 'synflow' only"),
])
def test_workload_pruning_and_extends_errors(registries, tmp_path, extra, message):
    path, _ = _experiment(tmp_path, WORKLOAD + extra)
    with pytest.raises(ExperimentFileError) as caught:
        load_experiment(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# ------------------------------------------------------------ broken plugins, CLI

GOOD_DATA = """
    import numpy as np
    from sparsedp.plugins import register_dataset

    def load():
        rng = np.random.default_rng(0)
        x = rng.integers(0, 255, (40, 1, 6, 6), dtype=np.uint8)
        y = np.arange(40) % 3
        return x, y{label_cast}, x[:10], y[:10]

    register_dataset("{name}", load, version="1")
"""
TINY_MODEL = """
    from torch import nn
    from sparsedp.plugins import register_model

    def tiny(channels, size, classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, {out}))

    register_model("{name}", tiny, version="1")
"""
BAD_PRUNER = """
    from sparsedp.plugins import Pruner, register_pruner

    register_pruner(Pruner("{name}", lambda model, data, settings: {{}}, version="1"))
"""
USES = """
[workloads.tp-w]
dataset = "{data}"
model = "{model}"
optimizer = "sgd"
goal_error = 0.5
max_steps = 10
"""


def _broken_cases(n: int) -> dict[str, tuple[str, str, str]]:
    data, model = f"tp-data{n}", f"tp-model{n}"
    uses = USES.format(data=data, model=model)
    good = GOOD_DATA.format(name=data, label_cast="") + TINY_MODEL.format(name=model, out="3")
    return {
        "import error": ("import numpy\nimport tp_not_installed_anywhere\n", USES.format(
            data="mnist", model="simple-cnn"),
            "plugins[0]: plugin '{module}': ModuleNotFoundError: No module named "
            "'tp_not_installed_anywhere' at {module}.py:2; install what it imports"),
        "wrong output shape": (GOOD_DATA.format(name=data, label_cast="")
                               + TINY_MODEL.format(name=model, out="5"), uses,
                               f"model '{model}' (plugin {{module}}): returned shape (2, 5) "
                               "(torch.float32) for a batch of 2 with 3 classes"),
        "wrong label dtype": (GOOD_DATA.format(name=data, label_cast=".astype('float32')")
                              + TINY_MODEL.format(name=model, out="3"), uses,
                              f"data: data set '{data}' (plugin {{module}}): train_labels has "
                              "dtype float32; labels must be integers"),
        "duplicate name": (good + TINY_MODEL.format(name=model, out="3"), uses,
                           f"plugin '{{module}}': ValueError: model '{model}' is already "
                           f"registered (by plugin {{module}}); give yours another name or "
                           "pass replace=True at {module}.py:"),
        "broken pruner": (good + BAD_PRUNER.format(name=f"tp-prune{n}"),
                          uses + f'[pruning]\nmethod = "tp-prune{n}"\n',
                          f"pruner 'tp-prune{n}' returned no scores for 1.weight (tried on "
                          "workload tp-w's model and data before any trial)"),
        "unknown part": (good, USES.format(data=data, model="tp-lenet"),
                         "workloads.tp-w.model: workload 'tp-w' uses the unknown model "
                         "'tp-lenet'"),
    }


@pytest.mark.parametrize("case", list(_broken_cases(0)))
def test_broken_plugins_one_line_before_any_trial(registries, tmp_path, capsys, case):
    plugin, body, expected = _broken_cases(next(_unique))[case]
    path, module = _experiment(tmp_path, body, plugin)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert expected.format(module=module) in err, err
    assert not list(tmp_path.rglob("*.sqlite"))  # nothing stored, nothing run


def test_cli_plugin_option(registries, tmp_path, capsys, monkeypatch):
    (tmp_path / "tp_cli_parts.py").write_text(
        textwrap.dedent(GOOD_DATA.format(name="tp-cli-data", label_cast=""))
        + textwrap.dedent(TINY_MODEL.format(name="tp-cli-model", out="3"))
        + "from sparsedp.plugins import Workload, register_workload\n"
        "register_workload(Workload('tp-cli-w', 'tp-cli-data', 'tp-cli-model', 'sgd',\n"
        "    'constant', ('lr',), 0.5, 5, 10, 'a workload from a plugin'))\n")
    monkeypatch.chdir(tmp_path)  # a module in the current directory is found
    assert main(["workloads", "--json", "--plugin", "tp_cli_parts"]) == 0
    assert '"tp-cli-w"' in capsys.readouterr().out
    assert main(["workloads", "--plugin", "tp_no_such_module"]) == 2
    assert "plugin 'tp_no_such_module': no module of that name" in capsys.readouterr().err


# ---------------------------------------------------------- running plugin parts


WORKER_PLUGIN = """
    import numpy as np
    import torch
    from torch import nn
    from sparsedp.plugins import Workload, register_dataset, register_model, register_workload

    def blobs(n=300, classes=3, size=6):
        rng = np.random.default_rng(0)
        y = np.arange(n) % classes
        x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
        for i, label in enumerate(y):
            x[i, 0, 2 * label: 2 * label + 2] += 2.0
        return x, y, x[:30], y[:30]

    class Tiny(nn.Module):
        def __init__(self, channels, size, classes):
            super().__init__()
            self.conv = nn.Conv2d(channels, 4, 3, padding=1)
            self.fc = nn.Linear(4 * size * size, classes)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).flatten(1))

    register_dataset("tp-blobs", blobs, version="1", classes=["top", "middle", "bottom"])
    register_model("tp-tiny", Tiny, version="1")
    register_workload(Workload("tp-blobs-tiny", "tp-blobs", "tp-tiny", "sgd", "constant",
                               ("lr",), 0.2, 5, 30, "tiny model on float blobs", version="1"))
"""


def test_plugin_parts_run_in_worker_processes(registries, tmp_path, capsys):
    path, _ = _experiment(tmp_path, 'workloads = ["tp-blobs-tiny"]\n[pruning]\n'
                          'method = "magnitude"\n[search.lr]\nlow = 0.05\nhigh = 0.5\n',
                          WORKER_PLUGIN, name="tp_worker_parts")
    assert main(["run", str(path), "--workers", "2"]) == 0, capsys.readouterr().err
    with ResultStore(tmp_path / "results" / "tp", read_only=True) as store:
        rows = store.trial_rows("tp")
    assert len(rows) == 2 and {r["status"] for r in rows} <= {"complete", "incomplete"}
    workers = {r["provenance"]["worker"] for r in rows} if "provenance" in rows[0] else set()
    assert all(w.startswith("local pid") and w != f"local pid {os.getpid()}" for w in workers)
    # seed repeats run the plugin's parts in worker processes too
    assert main(["repeat", str(path), "--seeds", "1", "--workers", "2"]) == 0, \
        capsys.readouterr().err
    with ResultStore(tmp_path / "results" / "tp", read_only=True) as store:
        repeats = store.repeat_rows("tp")
    assert repeats and {r["status"] for r in repeats} <= {"complete", "incomplete"}


def test_example_runs_end_to_end(registries, tmp_path, shared_data_dir):
    """examples/custom: LeNet-5 from a plugin, MNIST through the .npz kind, SNIP, GraSP and
    SynFlow in one experiment (one workload each), run by the ``sparsedp`` command."""
    for f in (REPO / "examples" / "custom").iterdir():
        if f.suffix in (".py", ".toml"):
            (tmp_path / f.name).write_text(f.read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1",  # as conftest does in-process: on a busy
           # machine two spinning threads per process make these runs 10x slower
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, str(tmp_path / "make_mnist_npz.py"), "--train", "10000",
                    "--data-dir", str(shared_data_dir / "mnist")], check=True, env=env,
                   capture_output=True)
    done = subprocess.run([sys.executable, "-m", "sparsedp.cli.main", "run",
                           str(tmp_path / "lenet-pruners.toml")], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    spec = load_experiment(tmp_path / "lenet-pruners.toml")
    methods = {s.workload: s.pruning.method for s in spec.studies()}
    assert methods == {"lenet5-snip": "snip", "lenet5-grasp": "grasp",
                       "lenet5-synflow": "synflow"}
    assert len({s.key for s in spec.studies()}) == 3
    with ResultStore(spec.results_dir, read_only=True) as store:
        rows = store.trial_rows(spec.name)
    assert sorted(r["study_key"] for r in rows) == sorted([s.key for s in spec.studies()] * 2)
    assert all(r["status"] != "failed" for r in rows)
    assert "checked workload lenet5-grasp: model lenet-5 fits mnist-npz" in done.stderr


def test_the_quick_start_of_the_docs_runs(registries, tmp_path, capsys):
    """docs/plugins.md's plugin and experiment, as written, with SNIP, then with the
    workloads the docs add for GraSP, SynFlow and the plugin's own pruner, in one file."""
    import re

    text = (REPO / "docs" / "plugins.md").read_text()
    files = dict(re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", text, flags=re.S))
    assert set(files) == {"my_parts.py", "stripes-snip.toml", "stripes-more.toml"}
    (tmp_path / "my_parts.py").write_text(files["my_parts.py"])
    path = tmp_path / "stripes-snip.toml"
    engine = "\n[engine]\neval_batch_size = 500\n"
    path.write_text(files["stripes-snip.toml"] + "\n" + files["stripes-more.toml"] + engine)
    assert main(["run", str(path)]) == 0, capsys.readouterr().err
    spec = load_experiment(path)
    methods = {s.workload: s.pruning.method for s in spec.studies()}
    assert methods == {"stripes-smallcnn-momentum": "snip", "stripes-grasp": "grasp",
                       "stripes-synflow": "synflow", "stripes-mine": "grad-magnitude"}
    with ResultStore(spec.results_dir, read_only=True) as store:
        rows = store.trial_rows(spec.name)
    assert len(rows) == 6 * 4 and all(r["status"] != "failed" for r in rows)
    assert any(r["status"] == "complete" for r in rows)
