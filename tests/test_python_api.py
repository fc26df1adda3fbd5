"""The Python API: docs/python-api.md runs as written, plain progress lines name their study,
and bad input raises SparsedpError with the CLI's one-line message and exit code."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import sparsedp
from small_mnist import small_mnist_tables
from sparsedp.cli.main import main
from sparsedp.execution.records import TrialRecord
from sparsedp.specs import StudySpec

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "python-api.md"
W = "mnist-simplecnn-momentum"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One decoded-array cache for the module."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def real_data(monkeypatch, shared_data_dir, cache_dir) -> None:
    monkeypatch.setenv("SPARSEDP_DATA_DIR", str(shared_data_dir))
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(cache_dir))


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


# --------------------------------------------------------------------------- the doc


@pytest.mark.slow
def test_python_api_doc_runs_on_real_mnist(tmp_path, monkeypatch, real_data, capsys):
    """Every code block of docs/python-api.md, in order, in one namespace, from a fresh
    directory holding examples/quick.toml (as a clone does)."""
    (tmp_path / "examples").mkdir()
    shutil.copy(REPO / "examples" / "quick.toml", tmp_path / "examples" / "quick.toml")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 7
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    result, trials = namespace["result"], namespace["trials"]
    assert result.planned == result.finished == 6 and result.missing == 0
    assert len(trials) == 6 and set(trials["sparsity"]) == {0.0, 0.5}
    assert (tmp_path / "notebook-demo-report" / "report.html").is_file()
    assert namespace["imported"].trials == 6  # the batch-science layout, exported and back
    m = namespace["m"]
    assert m.status in ("complete", "incomplete", "infeasible")
    assert m.measured_sparsity == pytest.approx(0.9, abs=1e-4)
    assert (m.steps_to_result is not None) == (m.status == "complete")
    lines = out.splitlines()
    # the dict error example: its one line, then its exit code
    at = next(i for i, line in enumerate(lines) if line.startswith("experiment dict:"))
    assert lines[at].startswith("experiment dict: engine.device: unknown device 'gpu'; use")
    assert lines[at + 1] == "2"
    # the doc's print_progress callback printed one line per trial, each naming its study
    # and showing the stored trial's status and steps
    assert _trial_lines(out, namespace["exp"]) == _stored(namespace["exp"])
    # analysis reached the fit table
    table = sparsedp.critical_batch_sizes(namespace["analysis"])
    assert list(table["sparsity"]) == sorted(set(trials["sparsity"]))


# --------------------------------------------------------------------------- progress lines


def test_plain_run_output_names_the_study_of_every_trial(tmp_path, mnist_small, cache_dir,
                                                         monkeypatch, capsys):
    """`sparsedp run` with stderr not a terminal: two studies run interleaved (both study
    headers print first), and each trial line says which study it belongs to."""
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(cache_dir))
    w = "lines-cnn"  # on the cut MNIST (tests/small_mnist.py)
    path = tmp_path / "exp.toml"
    path.write_text("""
name = "lines"
sparsities = [0.0, 0.5]
batch_sizes = [16]
trials = 1
results = "results"
goal_error = 0.6
max_steps = 8
eval_every = 8
[pruning]
snip_batches = 1
[engine]
eval_batch_size = 1000
""" + small_mnist_tables(mnist_small, w))
    assert main(["run", str(path)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if re.search(r"\[\d+/\d+\]", line)]
    assert len(lines) == 2
    for line, label in zip(lines, (f"{w} s=0 B=16", f"{w} s=0.5 B=16"), strict=True):
        assert re.fullmatch(rf"\[\d/2\] {re.escape(label)} trial +0 +\w+ +steps +\S+ +"
                            r"\(\d+\.\d s\)", line), line
    exp = sparsedp.Experiment.from_file(path)
    assert _trial_lines(err, exp) == _stored(exp)  # each line shows its stored trial


TRIAL_LINE = re.compile(r"\[(\d+)/(\d+)\] (.+?) trial +(\d+) +(\w+) +steps +(\S+) +"
                        r"\((\d+\.\d) s\)")


def _trial_lines(text: str, exp: sparsedp.Experiment) -> dict[tuple[str, int], tuple]:
    """The printed trial lines: (study label, trial) → (status, steps, wall time); the
    counters run 1, 2, … up to the total."""
    found = [TRIAL_LINE.fullmatch(line) for line in text.splitlines()]
    found = [m for m in found if m is not None]
    assert [int(m[1]) for m in found] == list(range(1, len(found) + 1))
    assert {int(m[2]) for m in found} == {len(found)}
    return {(m[3], int(m[4])): (m[5], None if m[6] == "-" else int(m[6]), float(m[7]))
            for m in found}


def _stored(exp: sparsedp.Experiment) -> dict[tuple[str, int], tuple]:
    """The same from the stored trials (wall time rounded as printed)."""
    labels = {s.key: s.label for s in exp.studies()}
    return {(labels[r.study_key], int(r.trial_index)):
            (r.status, None if r.steps_to_result != r.steps_to_result
             else int(r.steps_to_result), float(f"{r.wall_time:.1f}"))
            for r in exp.trials().itertuples()}


def test_format_event_names_the_study_of_every_trial_and_failure():
    study = StudySpec(W, 0.9, 64)
    record = TrialRecord(
        study_key=study.key, trial_index=3, seed=3, metaparameters={"lr": 0.1},
        status="complete", steps_to_result=96, steps_taken=96, final_val_error=0.02,
        final_error_exact=True, curve=[], wall_time=1.25, train_time=1.0, eval_time=0.2,
        prune_time=0.05, samples_per_second=1.0, eval_share=0.1, eval_examples=10,
        message="", attempts=1,
    )
    line = sparsedp.format_event(sparsedp.TrialFinished(study, record, done=5, total=24))
    assert line == f"[5/24] {W} s=0.9 B=64 trial   3 complete   steps     96  (1.2 s)"
    failed = sparsedp.AttemptFailed(study, 7, 1, "RuntimeError: boom", done=5, total=24)
    assert sparsedp.format_event(failed) == (
        f"[5/24] {W} s=0.9 B=64 trial 7 attempt 1 failed: RuntimeError: boom")
    assert sparsedp.format_event(sparsedp.StudyStarted(study, 0, 24, "x")) == (
        f"study {W} s=0.9 B=64 (neighbour-first order)")
    assert sparsedp.format_event(sparsedp.RunPlanned(24)) == "24 trials to run"
    assert sparsedp.format_event(sparsedp.RunFinished(24, 24)) is None


# --------------------------------------------------------------------------- errors


def _doc(**extra) -> dict:
    return {"name": "x", "workloads": [W], "sparsities": [0.0], "batch_sizes": [64], **extra}


@pytest.mark.parametrize(("doc", "message"), [
    (_doc(trials=0), "experiment dict: trials: must be >= 1, got 0; use a value >= 1"),
    (_doc(search={"momentum": {"low": "a"}}), "experiment dict: search.momentum.low: "
     "expected a finite number, got 'a' (a string)"),
    (_doc(engine={"devise": "cpu"}), "experiment dict: engine.devise: unknown key; did you "
     "mean 'device'?"),
    ({"name": "x"}, "experiment dict: workloads: missing required key"),
    (_doc(sparsities=[0.0, 1.5]), "experiment dict: sparsities[1]:"),
    ([("name", "x")], "experiment dict: expected a dict"),
])
def test_dict_errors_name_the_key_path(doc, message):
    with pytest.raises(sparsedp.SparsedpError) as caught:
        sparsedp.Experiment.from_dict(doc)
    assert str(caught.value).startswith(message)
    assert caught.value.exit_code == sparsedp.EXIT_BAD_INPUT
    assert "\n" not in str(caught.value)


def test_dict_takes_tuples_and_paths_and_resolves_against_base_dir(tmp_path):
    exp = sparsedp.Experiment.from_dict(
        _doc(batch_sizes=(16, 32), results=Path("out"), data_dir="data"), base_dir=tmp_path)
    assert [s.batch_size for s in exp.studies()] == [16, 32]
    assert exp.results_dir == tmp_path.resolve() / "out"
    assert exp.spec.data_dir == tmp_path.resolve() / "data"
    # the same as the equivalent file beside base_dir
    path = tmp_path / "x.toml"
    path.write_text(f'name = "x"\nworkloads = ["{W}"]\nsparsities = [0.0]\n'
                    'batch_sizes = [16, 32]\nresults = "out"\ndata_dir = "data"\n')
    assert sparsedp.Experiment.from_file(path).spec == replace(exp.spec, path=path.resolve())


def test_file_errors_and_reading_before_a_run(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nworkloads = ["nope"]\nsparsities = [0.0]\nbatch_sizes = [8]\n')
    with pytest.raises(sparsedp.SparsedpError, match=rf"^{re.escape(str(path))}:2: "
                       r"workloads\[0\]: unknown workload 'nope'"):
        sparsedp.Experiment.from_file(path)
    good = tmp_path / "good.toml"
    good.write_text(f'name = "x"\nworkloads = ["{W}"]\nsparsities = [0.0]\nbatch_sizes = [8]\n')
    with pytest.raises(sparsedp.SparsedpError, match=f"run `sparsedp run {re.escape(str(good))}"
                       "` first"):
        sparsedp.Experiment.from_file(good).trials()
    with pytest.raises(sparsedp.SparsedpError, match=r"run it first \(Experiment.run\(\)\)"):
        sparsedp.Experiment.from_dict(_doc(), base_dir=tmp_path).status()


def test_measure_trial_bad_arguments_raise_before_loading_data():
    with pytest.raises(sparsedp.SparsedpError, match="sparsity") as caught:
        sparsedp.measure_trial(W, sparsity=1.5, batch_size=64, lr=0.1)
    assert caught.value.exit_code == 2
    with pytest.raises(sparsedp.SparsedpError, match="unknown device"):
        sparsedp.measure_trial(W, sparsity=0.5, batch_size=64, lr=0.1, momentum=0.9,
                               device="tpu")


def test_run_result_exit_codes_and_interrupts():
    def result(failed: int, missing: int) -> sparsedp.RunResult:
        return sparsedp.RunResult(4, 4, 0, {"complete": 4}, failed, missing, 1.0)

    assert [result(0, 0).exit_code, result(1, 0).exit_code, result(1, 1).exit_code] == [0, 3, 4]
    assert result(0, 0).describe() == ("ran 4 of 4 missing trials in 1 s (4 complete); "
                                       "failed attempts: 0")
    interrupted = sparsedp.RunInterrupted("interrupted by Ctrl-C", sparsedp.EXIT_SIGINT)
    assert isinstance(interrupted, KeyboardInterrupt)
    assert isinstance(interrupted, sparsedp.SparsedpError)
    with pytest.raises(AttributeError):
        _ = sparsedp.no_such_name
    assert set(sparsedp.api.__all__) == sparsedp._API_NAMES
