"""Experiment files: parsing, validation messages, the study grid and study keys."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from sparsedp.pruning.prune import PruneSettings
from sparsedp.search import DEFAULT_DIMENSIONS, Dimension
from sparsedp.specs import (
    EngineOptions,
    ExperimentFileError,
    ExperimentSpec,
    StudySpec,
    load_experiment,
    resolve_batch_sizes,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

BASE = """\
name = "t"
workloads = ["mnist-simplecnn-momentum"]
sparsities = [0.0, 0.9]
batch_sizes = [64, 256]
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> ExperimentFileError:
    path = write(tmp_path, text)
    with pytest.raises(ExperimentFileError) as info:
        load_experiment(path)
    return info.value


# --------------------------------------------------------------------------- malformed files

MALFORMED = [
    # (id, text, key shown, line or None, fragment of the message)
    ("unknown-top-key", BASE + "trails = 4\n", "trails", 5, "did you mean 'trials'"),
    ("unknown-engine-key", BASE + "[engine]\nordr = 'index'\n", "engine.ordr", 6, "'order'"),
    (
        "unknown-pruning-key",
        BASE + "[pruning]\nmethods = 'snip'\n",
        "pruning.methods",
        6,
        "'method'",
    ),
    (
        "unknown-dimension-key",
        BASE + "[search.lr]\nlow = 1e-3\nhigg = 1\n",
        "search.lr.higg",
        7,
        "'high'",
    ),
    (
        "unknown-metaparameter",
        BASE + "[search.learning_rate]\nlow = 0.1\n",
        "search.learning_rate",
        5,
        "unknown key",
    ),
    ("bool-is-not-int", BASE + "trials = true\n", "trials", 5, "expected a whole number"),
    ("float-is-not-int", BASE + "max_steps = 100.0\n", "max_steps", 5, "expected a whole number"),
    ("bool-is-not-number", BASE + "goal_error = false\n", "goal_error", 5, "finite number"),
    (
        "string-is-not-bool",
        BASE + "[engine]\nearly_exit = 'yes'\n",
        "engine.early_exit",
        6,
        "true or false",
    ),
    (
        "unknown-workload",
        BASE.replace('momentum"]', 'adam"]'),
        "workloads[0]",
        2,
        "unknown workload",
    ),
    (
        "duplicate-workload",
        BASE.replace(
            '["mnist-simplecnn-momentum"]', '["mnist-simplecnn-sgd", "mnist-simplecnn-sgd"]'
        ),
        "workloads[1]",
        2,
        "duplicate",
    ),
    (
        "unknown-pruner",
        BASE + "[pruning]\nmethod = 'snipp'\n",
        "pruning.method",
        6,
        "did you mean 'snip'",
    ),
    (
        "sparsity-one",
        BASE.replace("[0.0, 0.9]", "[0.0, 1.0]"),
        "sparsities[1]",
        3,
        "outside [0, 1)",
    ),
    ("sparsity-negative", BASE.replace("[0.0, 0.9]", "[-0.1]"), "sparsities[0]", 3, "outside"),
    (
        "duplicate-sparsity",
        BASE.replace("[0.0, 0.9]", "[0.5, 0.5]"),
        "sparsities[1]",
        3,
        "duplicate",
    ),
    ("empty-sparsities", BASE.replace("[0.0, 0.9]", "[]"), "sparsities", 3, "empty"),
    ("batch-size-zero", BASE.replace("[64, 256]", "[0, 64]"), "batch_sizes", 4, "below 1"),
    ("batch-size-too-big", BASE.replace("[64, 256]", "[64, 65536]"), "batch_sizes", 4, "54,000"),
    (
        "batch-size-too-big-for-cifar",
        BASE.replace(
            '["mnist-simplecnn-momentum"]', '["mnist-simplecnn-sgd", "cifar10-resnet8-nesterov"]'
        ).replace("[64, 256]", "[50000]"),
        "batch_sizes",
        4,
        "cifar10 training split (45,000",
    ),
    ("duplicate-batch-size", BASE.replace("[64, 256]", "[64, 64]"), "batch_sizes", 4, "duplicate"),
    ("empty-batch-sizes", BASE.replace("[64, 256]", "[]"), "batch_sizes", 4, "empty"),
    ("malformed-range", BASE.replace("[64, 256]", '"2^4-2^13"'), "batch_sizes", 4, "malformed"),
    (
        "inverted-range",
        BASE.replace("[64, 256]", '"2^13..2^4"'),
        "batch_sizes",
        4,
        "write '2^4..2^13'",
    ),
    ("goal-error-too-big", BASE + "goal_error = 1.5\n", "goal_error", 5, "outside (0, 1)"),
    ("goal-error-zero", BASE + "goal_error = 0\n", "goal_error", 5, "outside (0, 1)"),
    ("trials-zero", BASE + "trials = 0\n", "trials", 5, ">= 1"),
    ("workers-zero", BASE + "workers = 0\n", "workers", 5, ">= 1"),
    (
        "inverted-search-bounds",
        BASE + "\n[search.lr]\nlow = 1.0\nhigh = 0.1\n",
        "search.lr",
        6,
        "swap",
    ),
    (
        "log-bound-not-positive",
        BASE + "[search.lr]\nlow = 0.0\nhigh = 1.0\nscale = 'log'\n",
        "search.lr.low",
        6,
        "low > 0",
    ),
    (
        "reverse-log-high",
        BASE + "[search.momentum]\nhigh = 1.0\n",
        "search.momentum.high",
        6,
        "high < 1",
    ),
    ("unknown-scale", BASE + "[search.lr]\nscale = 'exp'\n", "search.lr.scale", 6, "unknown value"),
    (
        "unsearched-override",
        BASE.replace('momentum"]', 'sgd"]') + "[search.momentum]\nlow = 0.5\n",
        "search.momentum",
        5,
        "none of the workloads",
    ),
    ("unknown-order", BASE + "[engine]\norder = 'random'\n", "engine.order", 6, "unknown value"),
    (
        "unknown-backend",
        BASE + "[engine]\nbackend = 'dask'\n",
        "engine.backend",
        6,
        "unknown value",
    ),
    ("bad-device", BASE + "[engine]\ndevice = 'gpu'\n", "engine.device", 6, "cuda:N"),
    ("negative-checkpoint-every", BASE + "[engine]\ncheckpoint_every = -1\n",
     "engine.checkpoint_every", 6, ">= 0"),
    ("channels-last-batched", BASE + "[engine]\nchannels_last = true\nbatched_trials = 4\n",
     "engine.channels_last", 6, "set batched_trials = 1"),
    ("channels-last-cuda-batched-default", BASE + "[engine]\nchannels_last = true\n"
     "device = 'cuda'\n", "engine.channels_last", 6, "16 (the default on CUDA)"),
    ("channels-last-not-a-boolean", BASE + "[engine]\nchannels_last = 1\n",
     "engine.channels_last", 6, "true or false"),
    ("bad-device-index", BASE + "[engine]\ndevice = 'cuda:x'\n", "engine.device", 6, "cuda:N"),
    ("missing-name", BASE.replace('name = "t"\n', ""), "name", None, "missing required key"),
    (
        "missing-batch-sizes",
        BASE.replace("batch_sizes = [64, 256]\n", ""),
        "batch_sizes",
        None,
        "missing required key",
    ),
    ("bad-name", BASE.replace('"t"', '"my experiment"'), "name", 1, "characters"),
    ("pruning-not-a-table", BASE + "pruning = 'snip'\n", "pruning", 5, "expected a table"),
    (
        "hidden-units-on-resnet",
        BASE.replace('momentum"]', 'momentum", "cifar10-resnet8-nesterov"]')
        + "hidden_units = 64\n",
        "hidden_units",
        5,
        "simple-cnn only",
    ),
    (
        "snip-batches-zero",
        BASE + "[pruning]\nsnip_batches = 0\n",
        "pruning.snip_batches",
        6,
        ">= 1",
    ),
    (
        "inline-engine-table",
        BASE + "engine = { order = 'fast' }\n",
        "engine.order",
        5,
        "unknown value",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "line", "fragment"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_files_give_one_line_naming_the_key(
    tmp_path: Path, text: str, key: str, line: int | None, fragment: str
) -> None:
    error = load_error(tmp_path, text)
    message = str(error)
    assert "\n" not in message
    file = str(tmp_path / "exp.toml")
    prefix = f"{file}:{line}: {key}: " if line is not None else f"{file}: {key}: "
    assert message.startswith(prefix), message
    assert fragment in message
    assert ";" in message  # every message says how to fix it
    assert error.key == key and error.line == line
    assert isinstance(error, ValueError)


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, BASE + "trials = = 4\n")
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'exp.toml'}:5: TOML syntax: ")
    assert "(at line 5, column 10);" in message  # the second '=' of "trials = = 4"
    assert (error.line, error.key) == (5, "TOML syntax")


def test_missing_file_is_an_experiment_file_error(tmp_path: Path) -> None:
    with pytest.raises(ExperimentFileError) as info:
        load_experiment(tmp_path / "absent.toml")
    assert str(info.value) == (f"{tmp_path / 'absent.toml'}: cannot read the experiment file "
                               "(No such file or directory); check the path")
    assert info.value.line is None


# --------------------------------------------------------------------------- batch sizes


def test_resolve_batch_sizes() -> None:
    assert resolve_batch_sizes("2^4..2^13") == tuple(2**k for k in range(4, 14))
    assert resolve_batch_sizes(" 2^4 .. 2^6 ") == (16, 32, 64)
    assert resolve_batch_sizes("2^7..2^7") == (128,)
    assert resolve_batch_sizes([64, 3, 1000]) == (64, 3, 1000)
    for bad, fragment in [
        ("2^13..2^4", "inverted"),
        ("16..8192", "malformed"),
        ("2^4..", "malformed"),
        ("", "malformed"),
        ([], "empty"),
        ([1.5], "whole number"),
        ([True], "whole number"),
        ([0], "below 1"),
        ([8, 8], "duplicate"),
        (64, "expected a list"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            resolve_batch_sizes(bad)


# --------------------------------------------------------------------------- loading


def test_full_file_loads(tmp_path: Path) -> None:
    text = BASE + (
        'trials = 7\nresults = "out/here"\nworkers = 3\ndata_dir = "../data"\nseed = 2\n'
        "data_seed = 5\ngoal_error = 0.03\nmax_steps = 3000\neval_every = 8\nhidden_units = 128\n"
        "[pruning]\nmethod = 'magnitude'\nprune_biases = true\nsnip_batches = 10\n"
        "[search.lr]\nlow = 1e-3\nhigh = 1.0\nscale = 'log'\n"
        "[engine]\nearly_exit = false\nstop_hopeless = false\norder = 'index'\nmicro_batch = 256\n"
        "eval_batch_size = 500\nthreads = 1\ndevice = 'cuda:1'\nbackend = 'ray'\nmax_retries = 0\n"
        "checkpoint_every = 0\nchannels_last = true\nbatched_trials = 1\n"
    )
    spec = load_experiment(write(tmp_path, text))
    assert spec.name == "t"
    assert spec.path == (tmp_path / "exp.toml").resolve()
    assert spec.trials == 7 and spec.workers == 3
    assert spec.results_dir == (tmp_path / "out" / "here").resolve()
    assert spec.data_dir == (tmp_path.parent / "data").resolve()
    d = spec.study_defaults
    assert (d.goal_error, d.max_steps, d.eval_every, d.hidden_units) == (0.03, 3000, 8, 128)
    assert (d.seed, d.data_seed) == (2, 5)
    assert d.pruning == PruneSettings("magnitude", True, snip_batches=10)
    assert d.search == {"lr": Dimension("lr", 1e-3, 1.0, "log")}
    assert spec.engine == EngineOptions(
        early_exit=False,
        stop_hopeless=False,
        order="index",
        micro_batch=256,
        eval_batch_size=500,
        threads=1,
        device="cuda:1",
        backend="ray",
        max_retries=0,
        checkpoint_every=0,
        channels_last=True,
        batched_trials=1,
    )
    as_dict = spec.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict  # JSON-ready, nothing lost
    assert (as_dict["trials"], as_dict["workers"], as_dict["results_dir"]) == (
        7, 3, str((tmp_path / "out" / "here").resolve()))
    assert as_dict["engine"] == dataclasses.asdict(spec.engine)
    assert as_dict["study_defaults"]["pruning"] == dataclasses.asdict(d.pruning)
    assert as_dict["study_defaults"]["search"] == {
        "lr": {"name": "lr", "low": 1e-3, "high": 1.0, "scale": "log", "integer": False}}
    assert {k: as_dict["study_defaults"][k] for k in ("goal_error", "max_steps", "seed")} == {
        "goal_error": 0.03, "max_steps": 3000, "seed": 2}
    study = spec.studies()[0]
    assert study.search == (Dimension("lr", 1e-3, 1.0, "log"),)
    assert study.space().points(1)[0]["lr"] == pytest.approx(10**-1.5)


def test_defaults(tmp_path: Path) -> None:
    spec = load_experiment(write(tmp_path, BASE))
    assert spec.trials == 100 and spec.workers == 1 and spec.data_dir is None
    assert spec.results_dir == (tmp_path / "results" / "t").resolve()
    assert spec.engine == EngineOptions()
    assert spec.studies()[0] == StudySpec("mnist-simplecnn-momentum", 0.0, 64)


def test_partial_search_override_keeps_default_fields(tmp_path: Path) -> None:
    text = BASE.replace('momentum"]', 'momentum", "cifar10-resnet8-nesterov"]')
    text += "[search.decay_steps]\nhigh = 40000\n[search.lr]\nlow = 1e-2\n"
    spec = load_experiment(write(tmp_path, text))
    assert spec.study_defaults.search["decay_steps"] == Dimension(
        "decay_steps", 30_000, 40_000, "linear", integer=True
    )
    mnist, cifar = spec.studies()[0], spec.studies()[-1]
    assert [d.name for d in mnist.search or ()] == ["lr"]  # momentum workload: lr only
    assert [d.name for d in cifar.search or ()] == ["lr", "decay_steps"]
    assert all(30_000 <= p["decay_steps"] <= 40_000 for p in cifar.space().points(20))


def test_integer_sparsity_and_range_in_file(tmp_path: Path) -> None:
    text = BASE.replace("[0.0, 0.9]", "[0, 0.5]").replace("[64, 256]", '"2^4..2^6"')
    spec = load_experiment(write(tmp_path, text))
    assert spec.sparsities == (0.0, 0.5)
    assert spec.batch_sizes == (16, 32, 64)


def test_studies_order_is_workloads_sparsities_batch_sizes(tmp_path: Path) -> None:
    text = BASE.replace(
        '["mnist-simplecnn-momentum"]', '["mnist-simplecnn-sgd", "mnist-simplecnn-momentum"]'
    )
    studies = load_experiment(write(tmp_path, text)).studies()
    assert [(s.workload[16:], s.sparsity, s.batch_size) for s in studies] == [
        ("sgd", 0.0, 64),
        ("sgd", 0.0, 256),
        ("sgd", 0.9, 64),
        ("sgd", 0.9, 256),
        ("momentum", 0.0, 64),
        ("momentum", 0.0, 256),
        ("momentum", 0.9, 64),
        ("momentum", 0.9, 256),
    ]
    assert len({s.key for s in studies}) == len(studies)


@pytest.mark.parametrize(
    ("name", "count", "batch_sizes"),
    [
        ("quick", 1 * 2 * 3, (16, 64, 256)),
        ("paper-w1", 1 * 4 * 10, tuple(2**k for k in range(4, 14))),
        ("paper-w2", 2 * 4 * 10, tuple(2**k for k in range(4, 14))),
        ("paper-w3", 1 * 2 * 10, tuple(2**k for k in range(4, 14))),
    ],
)
def test_example_files_load(name: str, count: int, batch_sizes: tuple[int, ...]) -> None:
    spec = load_experiment(EXAMPLES / f"{name}.toml")
    assert len(spec.studies()) == count
    assert spec.batch_sizes == batch_sizes


def test_quick_example_settings() -> None:
    spec = load_experiment(EXAMPLES / "quick.toml")
    assert spec.workloads == ("mnist-simplecnn-momentum",)
    assert spec.sparsities == (0.0, 0.9)
    assert spec.trials == 4
    assert spec.study_defaults.goal_error == 0.05
    assert spec.study_defaults.max_steps == 1500
    assert spec.study_defaults.pruning.snip_batches == 10
    assert spec.results_dir == (EXAMPLES / "results" / "quick").resolve()


# --------------------------------------------------------------------------- study specs


def test_study_key_is_stable() -> None:
    # Pinned: changing it renames every stored study. Only change deliberately.
    assert StudySpec("mnist-simplecnn-momentum", 0.9, 128).key == "0965bf6cfe61ec76"
    # The key is the hash of the fields that differ from their defaults, computed here
    # independently of config_hash: spelling out a default keeps it, any change renames it.
    text = '{"batch_size":128,"sparsity":0.9,"workload":"mnist-simplecnn-momentum"}'
    assert StudySpec("mnist-simplecnn-momentum", 0.9, 128).key == (
        hashlib.sha256(text.encode()).hexdigest()[:16]
    )
    assert StudySpec("mnist-simplecnn-momentum", 0.9, 128, seed=0, goal_error=None).key == (
        "0965bf6cfe61ec76"
    )
    assert StudySpec("mnist-simplecnn-momentum", 0.9, 128, goal_error=0.05).key != (
        "0965bf6cfe61ec76"
    )


def test_study_key_ignores_explicit_defaults_and_new_default_fields() -> None:
    plain = StudySpec("mnist-simplecnn-momentum", 0.9, 128)
    explicit = StudySpec(
        workload="mnist-simplecnn-momentum",
        sparsity=0.9,
        batch_size=128,
        goal_error=None,
        max_steps=None,
        eval_every=None,
        hidden_units=0,
        pruning=PruneSettings(),
        search=None,
        seed=0,
        data_seed=0,
    )
    assert explicit.key == plain.key
    # Spelling out the default search space or an int sparsity changes nothing either.
    assert (
        StudySpec(
            "mnist-simplecnn-momentum",
            0.9,
            128,
            search=tuple(DEFAULT_DIMENSIONS[n] for n in ("lr", "momentum")),
        ).key
        == plain.key
    )
    assert (
        StudySpec("mnist-simplecnn-momentum", 0, 128).key
        == StudySpec("mnist-simplecnn-momentum", 0.0, 128).key
    )
    # A future version with one more option (at its default) keeps the key.
    future = dataclasses.make_dataclass(
        "StudySpec",
        [("new_option", int, dataclasses.field(default=0))],
        bases=(StudySpec,),
        frozen=True,
    )
    assert future("mnist-simplecnn-momentum", 0.9, 128).key == plain.key
    assert future("mnist-simplecnn-momentum", 0.9, 128, new_option=3).key != plain.key


@pytest.mark.parametrize(
    "change",
    [
        {"workload": "mnist-simplecnn-nesterov"},
        {"sparsity": 0.5},
        {"batch_size": 256},
        {"goal_error": 0.03},
        {"max_steps": 1000},
        {"eval_every": 8},
        {"hidden_units": 64},
        {"pruning": PruneSettings(method="random")},
        {"pruning": PruneSettings(snip_batches=10)},
        {"search": (Dimension("lr", 1e-3, 1.0, "log"),)},
        {"seed": 1},
        {"data_seed": 1},
    ],
)
def test_study_key_changes_with_result_affecting_options(change: dict) -> None:
    base = StudySpec("mnist-simplecnn-momentum", 0.9, 128)
    assert dataclasses.replace(base, **change).key != base.key


def test_study_keys_ignore_trials_workers_results_and_engine(tmp_path: Path) -> None:
    first = load_experiment(write(tmp_path, BASE, "a.toml"))
    other = BASE + (
        'trials = 3\nworkers = 4\nresults = "elsewhere"\ndata_dir = "d"\n'
        "[engine]\norder = 'index'\nbackend = 'ray'\ndevice = 'cuda'\nthreads = 2\n"
        "early_exit = false\nstop_hopeless = false\nmicro_batch = 32\nmax_retries = 5\n"
    )
    second = load_experiment(write(tmp_path, other, "b.toml"))
    assert [s.key for s in first.studies()] == [s.key for s in second.studies()]
    changed = load_experiment(write(tmp_path, BASE + "max_steps = 10\n", "c.toml"))
    assert not {s.key for s in first.studies()} & {s.key for s in changed.studies()}


def test_trial_seed_and_trial_config() -> None:
    study = StudySpec(
        "mnist-simplecnn-momentum",
        0.9,
        128,
        goal_error=0.05,
        max_steps=1500,
        pruning=PruneSettings(snip_batches=10),
        seed=2,
        data_seed=7,
    )
    assert study.trial_seed(0) == 2 * 1_000_003
    assert study.trial_seed(5) == 2 * 1_000_003 + 5
    point = study.space().points(1)[0]
    config = study.trial_config(3, point)
    assert config.lr == pytest.approx(0.01)
    assert config.momentum == pytest.approx(1 - 10**-2.5)
    assert config.seed == study.trial_seed(3)
    assert config.data_seed == 7
    assert (config.goal_error, config.max_steps) == (0.05, 1500)
    assert config.pruning.snip_batches == 10
    assert (config.sparsity, config.batch_size) == (0.9, 128)
    # Trial i shares its seed (init and SNIP saliency) across a column of studies.
    other = dataclasses.replace(study, sparsity=0.0, batch_size=1024)
    assert other.trial_config(3, point).seed == config.seed
    configs = study.trial_configs(4)
    assert [c.seed for c in configs] == [study.trial_seed(i) for i in range(4)]
    assert {c.data_seed for c in configs} == {7}
    with pytest.raises(ValueError, match="unknown metaparameters"):
        study.trial_config(0, {"lr": 0.1, "momentum": 0.9, "dropout": 0.5})


def test_trial_config_for_w3_has_integer_decay_steps() -> None:
    study = StudySpec("cifar10-resnet8-nesterov", 0.9, 128)
    config = study.trial_configs(1)[0]
    assert config.decay_steps == 45_000 and isinstance(config.decay_steps, int)
    assert config.end_lr_factor == pytest.approx(10**-2.5)


def test_study_label_and_to_dict() -> None:
    study = StudySpec("mnist-simplecnn-momentum", 0.9, 128)
    assert study.label == "mnist-simplecnn-momentum s=0.9 B=128"
    assert StudySpec("mnist-simplecnn-sgd", 0, 16).label == "mnist-simplecnn-sgd s=0 B=16"
    searched = StudySpec(
        "mnist-simplecnn-momentum", 0.9, 128, search=(Dimension("lr", 1e-3, 1.0, "log"),)
    ).to_dict()
    as_json = json.loads(json.dumps(searched))
    assert {k: as_json[k] for k in ("workload", "sparsity", "batch_size", "search")} == {
        "workload": "mnist-simplecnn-momentum",
        "sparsity": 0.9,
        "batch_size": 128,
        "search": [{"name": "lr", "low": 1e-3, "high": 1.0, "scale": "log", "integer": False}],
    }
    assert as_json["pruning"] == dataclasses.asdict(PruneSettings())


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"workload": "nope"}, "unknown workload"),
        ({"sparsity": 1.0}, "sparsity"),
        ({"batch_size": 0}, "batch size"),
        ({"goal_error": 2.0}, "goal error"),
        ({"max_steps": 0}, "max_steps"),
        ({"hidden_units": -1}, "hidden_units"),
        ({"seed": -1}, "seed"),
        ({"search": (DEFAULT_DIMENSIONS["decay_steps"],)}, "does not search"),
    ],
)
def test_study_spec_validation(kwargs: dict, fragment: str) -> None:
    args = {"workload": "mnist-simplecnn-momentum", "sparsity": 0.5, "batch_size": 64} | kwargs
    with pytest.raises(ValueError, match=fragment):
        StudySpec(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": "random"}, "unknown order 'random'; use one of neighbour, index"),
        ({"backend": "dask"}, "unknown backend 'dask'; use one of local, ray"),
        ({"device": "gpu"}, "device must be cpu, cuda or cuda:N, got 'gpu'"),
        ({"micro_batch": 0}, "micro_batch must be a whole number >= 1, got 0"),
        ({"threads": 0}, "threads must be a whole number >= 1, got 0"),
        ({"max_retries": -1}, "max_retries must be a whole number >= 0, got -1"),
        ({"checkpoint_every": -5}, "checkpoint_every must be a whole number >= 0, got -5"),
        ({"early_exit": 1}, "early_exit must be true or false, got 1"),
    ],
)
def test_engine_options_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        EngineOptions(**kwargs)
    assert str(info.value) == message  # the option that is wrong, its value, what it takes


def test_experiment_spec_direct_construction(tmp_path: Path) -> None:
    spec = ExperimentSpec(
        name="direct",
        path=tmp_path / "x.toml",
        workloads=("mnist-simplecnn-sgd",),
        sparsities=(0.0,),
        batch_sizes=(32,),
    )
    assert spec.results_dir == (tmp_path / "results" / "direct").resolve()
    assert len(spec.studies()) == 1
    with pytest.raises(ValueError, match="trials"):
        dataclasses.replace(spec, trials=0)


# -------------------------------------------- the search box gives trainable trials (issue 22)

W3 = BASE.replace('momentum"]', 'momentum", "cifar10-resnet8-nesterov"]')
UNTRAINABLE = [
    # (id, text, key shown, line, the trainer's own words in the message)
    ("lr-negative", BASE + "[search.lr]\nlow = -5\nscale = 'linear'\n", "search.lr.low", 6,
     "low = -5 gives mnist-simplecnn-momentum trials it cannot train (learning rate must be a "
     "positive number, got -5.0)"),
    ("lr-zero", BASE + "[search.lr]\nlow = 0\nscale = 'linear'\n", "search.lr.low", 6,
     "learning rate must be a positive number, got 0.0"),
    ("momentum-negative", BASE + "[search.momentum]\nlow = -0.5\n", "search.momentum.low", 6,
     "momentum must be in [0, 1)"),
    ("momentum-one", BASE + "[search.momentum]\nlow = 0.5\nhigh = 1.0\nscale = 'linear'\n",
     "search.momentum.high", 7, "high = 1 gives mnist-simplecnn-momentum trials it cannot "
     "train (momentum must be in [0, 1), got 1.0)"),
    ("decay-steps-zero", W3 + "[search.decay_steps]\nlow = 0\nhigh = 100\n",
     "search.decay_steps.low", 6, "cifar10-resnet8-nesterov trials it cannot train "
     "(linear-decay needs decay_steps >= 1)"),
    ("decay-steps-truncated",
     W3 + "[search]\ninteger_mapping = 'truncate'\n[search.decay_steps]\nlow = 0.6\n"
     "high = 100\n", "search.decay_steps.low", 8, "low = 0.6 (0 as a whole number)"),
    ("end-factor-above-one", W3 + "[search.end_lr_factor]\nhigh = 2\n",
     "search.end_lr_factor.high", 6, "linear-decay needs end_lr_factor in [0, 1]"),
]


@pytest.mark.parametrize(("text", "key", "line", "fragment"),
                         [case[1:] for case in UNTRAINABLE],
                         ids=[case[0] for case in UNTRAINABLE])
def test_search_box_that_gives_untrainable_trials_is_refused_at_load(
        tmp_path: Path, text: str, key: str, line: int, fragment: str) -> None:
    """Before issue 22 these loaded (and `plan` ran), then `run` ended with an internal
    error at the first trial."""
    error = load_error(tmp_path, text)
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'exp.toml'}:{line}: {key}: "), message
    assert fragment in message, message
    assert message.endswith("values the trainer accepts")  # and how to fix it
    assert (error.key, error.line) == (key, line)


@pytest.mark.parametrize("command", ["run", "plan"])
def test_untrainable_search_box_stops_the_command_before_any_trial(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    from sparsedp.cli.main import main

    path = write(tmp_path, BASE + f'results = "{tmp_path / "results"}"\n'
                 "[search.lr]\nlow = -5\nscale = \"linear\"\n")
    assert main([command, str(path)]) == 2
    out, err = capsys.readouterr()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert lines == [f"sparsedp: error: {path}:7: search.lr.low: low = -5 gives "
                     "mnist-simplecnn-momentum trials it cannot train (learning rate must be a "
                     "positive number, got -5.0); narrow [search.lr] to values the trainer "
                     "accepts"]
    assert not (tmp_path / "results").exists()  # nothing started


def test_untrainable_search_box_in_a_dict_is_refused(tmp_path: Path) -> None:
    import sparsedp

    doc = {"name": "t", "workloads": ["mnist-simplecnn-momentum"], "sparsities": [0.0],
           "batch_sizes": [64], "search": {"momentum": {"low": -0.5}}}
    with pytest.raises(sparsedp.SparsedpError,
                       match=r"^experiment dict: search\.momentum\.low: low = -0\.5 gives "):
        sparsedp.Experiment.from_dict(doc, base_dir=tmp_path)


def test_search_box_at_the_trainers_limits_loads_and_every_trial_builds(tmp_path: Path) -> None:
    """The limits are the trainer's own: momentum 0 and an end factor of 0 or 1 are
    accepted (a learning rate decayed to zero trains, if slowly); every trial of the box
    then builds, with its schedule."""
    text = W3 + ("[search.momentum]\nlow = 0.0\nhigh = 0.99\nscale = 'linear'\n"
                 "[search.end_lr_factor]\nlow = 0.0\nhigh = 1.0\nscale = 'linear'\n"
                 "[search.lr]\nlow = 1e-6\nhigh = 10\nscale = 'linear'\n"
                 "[search.decay_steps]\nlow = 1\nhigh = 3\n")
    spec = load_experiment(write(tmp_path, text))
    for study in spec.studies():
        for config in study.trial_configs(64):
            config.schedule()


@pytest.mark.parametrize("name", ["quick", "paper-w1", "paper-w2", "paper-w2-momentum",
                                  "paper-w3"])
def test_every_trial_of_the_example_files_builds(name: str) -> None:
    spec = load_experiment(EXAMPLES / f"{name}.toml")
    for study in {s.workload: s for s in spec.studies()}.values():
        for config in study.trial_configs(spec.trials):
            config.schedule()


REPRODUCTION = EXAMPLES.parent / "reproduction"


@pytest.mark.parametrize("path", sorted([*EXAMPLES.glob("*.toml"), *REPRODUCTION.glob("*.toml")]),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_experiment_file_in_the_repository_loads(path: Path) -> None:
    """Every shipped experiment file parses and names at least one study (an edited file that
    no longer loads fails here, not hours into a background run)."""
    spec = load_experiment(path)
    assert spec.studies(), path
