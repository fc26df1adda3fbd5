"""Fault suite: a broken environment or an interrupted run never loses or invents a trial.

Each case uses real files and, where a process matters, real processes running
``sparsedp run`` on a tiny experiment (2 studies × 2 trials) on real MNIST cut short
(tests/small_mnist.py; broken data directories are built-in MNIST's). For each: one clear
line, the documented exit code (docs/faults.md), no stored trial lost or duplicated, and a
normal rerun ends with the same table as an undisturbed run.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from small_mnist import small_mnist_tables
from sparsedp.api import SparsedpError
from sparsedp.cli import experiment_cmds
from sparsedp.cli.main import main
from sparsedp.execution import preflight
from sparsedp.execution.failures import FailureWatch, RunStopped, is_environment_failure
from sparsedp.execution.runlock import RunLock, RunLockBusy
from sparsedp.execution.runner import run_experiment
from sparsedp.specs import load_experiment
from sparsedp.store import ResultStore

EXPERIMENT = """
name = "faults"
{workloads}
sparsities = [0.0]
batch_sizes = [16, 32]
trials = 2
results = "{results}"
goal_error = 0.6
max_steps = 24
eval_every = 8
[engine]
eval_batch_size = 1000
{engine}
"""
BUILT_IN = 'workloads = ["mnist-simplecnn-momentum"]\ndata_dir = "{data}"'
N_TRIALS = 4
RUN = [sys.executable, "-m", "sparsedp.cli.main", "run"]


def write_experiment(path: Path, results: Path, data: Path, engine: str = "") -> Path:
    """``data``: the cut MNIST's ``.npz`` (tests/small_mnist.py; workload ``faults-cnn``), or
    a directory of built-in MNIST's files (the tests of a broken data directory)."""
    if data.suffix == ".npz":
        path.write_text(EXPERIMENT.format(results=results, workloads="", engine=engine)
                        + small_mnist_tables(data, "faults-cnn"))
    else:
        path.write_text(EXPERIMENT.format(results=results, engine=engine,
                                          workloads=BUILT_IN.format(data=data)))
    return path


@pytest.fixture(scope="module", autouse=True)
def _shared_cache(tmp_path_factory):
    """One array cache for the module (also for the child processes it starts)."""
    previous = os.environ.get("SPARSEDP_CACHE_DIR")
    os.environ["SPARSEDP_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("SPARSEDP_CACHE_DIR", None)
    else:
        os.environ["SPARSEDP_CACHE_DIR"] = previous


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_small):
    """An undisturbed run: (its results directory, its table)."""
    directory = tmp_path_factory.mktemp("reference")
    path = write_experiment(directory / "ref.toml", directory / "results", mnist_small)
    spec = load_experiment(path)
    with ResultStore(spec.results_dir) as store:
        assert run_experiment(spec, store).finished == N_TRIALS
    return spec.results_dir, table(spec.results_dir)


def table(results: Path) -> list[tuple]:
    db = sqlite3.connect(f"file:{results / 'sparsedp.sqlite'}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT study_key, trial_index, status, steps_to_result, steps_taken, final_val_error, "
        "lr, momentum, message FROM trials ORDER BY study_key, trial_index"
    ).fetchall()
    db.close()
    return rows


def copy_of_reference(reference, tmp_path: Path, data: Path, engine: str = "") -> Path:
    """The reference experiment's results copied into ``tmp_path`` and its file."""
    shutil.copytree(reference[0], tmp_path / "results")
    return write_experiment(tmp_path / "exp.toml", tmp_path / "results", data, engine)


def delete_trials(results: Path, keep: int) -> list[tuple]:
    """Delete stored trials so that the first ``keep`` (table order) remain; returns those."""
    db = sqlite3.connect(results / "sparsedp.sqlite")
    rows = db.execute("SELECT study_key, trial_index FROM trials "
                      "ORDER BY study_key, trial_index").fetchall()
    for key, index in rows[keep:]:
        db.execute("DELETE FROM trials WHERE study_key = ? AND trial_index = ?", (key, index))
    db.commit()
    db.close()
    return table(results)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` and a digest of its bytes; not the lock file, nor what
    any SQLite reader may create: the shared-memory index ``-shm`` and an empty ``-wal``."""
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.name.endswith("-shm") and p.name != "run.lock"
            and not (p.name.endswith("-wal") and p.stat().st_size == 0)}


def cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip()]


def one_error_line(lines: list[str], *expected: str) -> str:
    """Exactly one line starts with 'sparsedp:' (the last), and it says what is expected."""
    errors = [line for line in lines if line.startswith("sparsedp:")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def mount_tmpfs(path: Path, options: str) -> str | None:
    """Mount a tmpfs at ``path``; None when done, else why it could not be
    (``SPARSEDP_TEST_NO_MOUNT=1`` forces the fallbacks)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.environ.get("SPARSEDP_TEST_NO_MOUNT"):
        return "SPARSEDP_TEST_NO_MOUNT is set"
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                         capture_output=True, text=True)
    return None if out.returncode == 0 else (out.stderr.strip() or "mount failed")


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


class Run:
    """``sparsedp run`` in a child process, its stderr collected line by line."""

    def __init__(self, path: Path, *extra: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("SPARSEDP_DEBUG", None)
        self.process = subprocess.Popen([*RUN, str(path), *extra], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.strip():
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, test, timeout: float = 240.0) -> bool:
        """Wait until ``test()`` holds (True) or the process has ended (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if test():
                return True
            if self.process.poll() is not None:
                return bool(test())
            time.sleep(0.1)
        raise AssertionError(f"timed out; output so far: {self.lines}")

    def pause(self) -> None:
        """Freeze the run where it is (SIGSTOP), so what follows surely overlaps it."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def finish(self, timeout: float = 300.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert not any("Traceback" in line for line in self.lines), self.lines
        return code


def stored_rows(results: Path) -> int:
    try:
        return len(table(results))
    except sqlite3.Error:
        return 0


# ------------------------------------------------------------------- preflight (exit 2)


def _missing_file(data: Path) -> None:
    (data / "train-labels-idx1-ubyte.gz").unlink()


def _truncated_file(data: Path) -> None:
    path = data / "train-images-idx3-ubyte.gz"
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _swapped_files(data: Path) -> None:
    train, test = data / "train-images-idx3-ubyte.gz", data / "t10k-images-idx3-ubyte.gz"
    train.rename(data / "tmp.gz")
    test.rename(train)
    (data / "tmp.gz").rename(test)


def _no_directory(data: Path) -> None:
    shutil.rmtree(data)


NO_GPU = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"


@pytest.mark.parametrize(
    "damage, engine, expected",
    [
        (_missing_file, "", "missing train-labels-idx1-ubyte"),
        (_truncated_file, "", "truncated"),
        (_swapped_files, "", "10000 images, expected 60000"),
        (_no_directory, "", "does not exist"),
        (None, f'device = "{NO_GPU}"', f"device '{NO_GPU}'"),
    ],
    ids=["missing-file", "truncated-file", "swapped-files", "no-data-directory", "no-device"],
)
def test_bad_environment_stops_before_any_trial(reference, tmp_path, shared_data_dir, capsys,
                                                 damage, engine, expected):
    data = tmp_path / "mnist"
    shutil.copytree(shared_data_dir / "mnist", data)
    if damage is not None:
        damage(data)
    path = copy_of_reference(reference, tmp_path, data, engine)
    path.write_text(path.read_text().replace("trials = 2", "trials = 3"))  # work to do
    before = snapshot(tmp_path / "results")
    code, lines = cli(["run", str(path)], capsys)
    assert code == 2
    assert len(lines) == 1  # nothing but the one line
    one_error_line(lines, expected)
    assert snapshot(tmp_path / "results") == before  # the store untouched

    fresh = write_experiment(tmp_path / "fresh.toml", tmp_path / "new" / "results", data,
                             engine)
    code, lines = cli(["run", str(fresh)], capsys)
    assert code == 2 and len(lines) == 1
    assert not (tmp_path / "new").exists()  # a failed start leaves nothing behind


def test_unwritable_results_directory_parent_is_a_file(tmp_path, mnist_small, capsys):
    """Tests run as root, where file modes do not stop writes: a regular file in the path
    makes the directory impossible to create."""
    (tmp_path / "plain-file").write_text("not a directory")
    path = write_experiment(tmp_path / "exp.toml", tmp_path / "plain-file" / "results", mnist_small)
    code, lines = cli(["run", str(path)], capsys)
    assert code == 2 and len(lines) == 1
    one_error_line(lines, "is a file", "results")


def test_read_only_results_directory(tmp_path, mnist_small, capsys):
    """A read-only file system (a tmpfs mounted ro) refuses writes even to root."""
    mount = tmp_path / "ro"
    why = mount_tmpfs(mount, "ro,size=1m")
    if why is not None:
        pytest.skip(f"cannot mount a read-only tmpfs here ({why}); the parent-is-a-file "
                    "case covers unwritable results directories")
    try:
        path = write_experiment(tmp_path / "exp.toml", mount, mnist_small)
        code, lines = cli(["run", str(path)], capsys)
        assert code == 2 and len(lines) == 1
        one_error_line(lines, "not writable", "Read-only file system")
    finally:
        unmount(mount)


def test_results_directory_without_room(tmp_path, mnist_small, capsys, monkeypatch):
    monkeypatch.setattr(preflight, "MIN_FREE_MIB", 2**40)  # more than any disk has
    path = write_experiment(tmp_path / "exp.toml", tmp_path / "a" / "results", mnist_small)
    code, lines = cli(["run", str(path)], capsys)
    assert code == 2 and len(lines) == 1
    one_error_line(lines, "MiB free")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("kind", ["corrupt", "wrong-schema", "newer-schema"])
def test_unusable_database_is_refused_untouched(reference, tmp_path, mnist_small, capsys,
                                                kind):
    path = copy_of_reference(reference, tmp_path, mnist_small)
    database = tmp_path / "results" / "sparsedp.sqlite"
    if kind == "corrupt":
        blob = bytearray(database.read_bytes())
        blob[:100] = os.urandom(100)  # the header: no longer a SQLite file
        database.write_bytes(bytes(blob))
        expected = "damaged or not a SQLite file"
    elif kind == "wrong-schema":
        database.unlink()
        db = sqlite3.connect(database)
        db.execute("CREATE TABLE trials (id INTEGER, result TEXT)")
        db.commit()
        db.close()
        expected = "not a sparsedp results database"
    else:
        db = sqlite3.connect(database)
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        db.commit()
        db.close()
        expected = "newer sparsedp"
    before = snapshot(tmp_path / "results")
    code, lines = cli(["run", str(path)], capsys)
    assert code == 2 and len(lines) == 1
    one_error_line(lines, expected, str(database))
    assert snapshot(tmp_path / "results") == before


def test_a_new_store_passes_the_database_check(tmp_path):
    """What the check requires (schema version 1's tables and columns) is in every store."""
    from sparsedp.store.check import check_store

    ResultStore(tmp_path).close()
    assert check_store(tmp_path).endswith("intact")


# ------------------------------------------------------------------ failures in a run


def test_failure_watch_rules():
    watch = FailureWatch(streak=3)
    watch.failed("a", 0, 1, "RuntimeError: boom")
    watch.failed("a", 0, 2, "RuntimeError: boom")  # retries do not count
    watch.failed("a", 1, 1, "RuntimeError: boom")
    watch.succeeded()  # a result in between: the environment works
    watch.failed("a", 2, 1, "RuntimeError: boom")
    watch.failed("b", 0, 1, "ValueError: other")  # a different error starts over
    watch.failed("b", 1, 1, "RuntimeError: boom")
    watch.failed("b", 2, 1, "RuntimeError: boom")
    with pytest.raises(RunStopped, match=r"3 trials in a row .* RuntimeError: boom"):
        watch.failed("c", 0, 1, "RuntimeError: boom")
    for index in range(3):  # one worker's death loses its trials at once: not a streak
        watch.failed("d", index, 1, "worker process died: terminated abruptly", lost=True)
    with pytest.raises(RunStopped, match="environment"):
        FailureWatch().failed("a", 0, 1, "OSError: [Errno 28] No space left on device")
    assert is_environment_failure("DataError: data directory /x does not exist")
    assert is_environment_failure("AssertionError: Torch not compiled with CUDA enabled")
    assert not is_environment_failure("RuntimeError: simulated crash")


def test_systematic_failure_stops_the_run_and_stores_nothing(reference, tmp_path,
                                                             mnist_small, capsys,
                                                             monkeypatch):
    from sparsedp.execution.backends import worker

    path = copy_of_reference(reference, tmp_path, mnist_small)
    kept = delete_trials(tmp_path / "results", keep=1)  # 3 trials to run

    def broken(*args, **kwargs):
        raise RuntimeError("simulated systematic failure")

    monkeypatch.setattr(worker, "TrialRun", broken)
    code, lines = cli(["run", str(path)], capsys)
    assert code == 4
    one_error_line(lines, "run stopped", "3 trials in a row",
                   "RuntimeError: simulated systematic failure")
    assert table(tmp_path / "results") == kept  # no failed rows stored, nothing lost
    monkeypatch.undo()
    code, lines = cli(["run", str(path)], capsys)
    assert code == 0, lines
    assert table(tmp_path / "results") == reference[1]


def test_trial_specific_failure_is_stored_and_exits_3(reference, tmp_path, mnist_small,
                                                      capsys, monkeypatch):
    from sparsedp.execution.backends import worker

    path = copy_of_reference(reference, tmp_path, mnist_small)
    kept = delete_trials(tmp_path / "results", keep=N_TRIALS - 1)
    key, index = reference[1][-1][:2]
    batch = next(s.batch_size for s in load_experiment(path).studies() if s.key == key)
    original = worker.TrialRun

    def flaky(config, data, **kwargs):
        if config.seed == index and config.batch_size == batch:
            raise RuntimeError("simulated trial-specific crash")
        return original(config, data, **kwargs)

    monkeypatch.setattr(worker, "TrialRun", flaky)
    code, lines = cli(["run", str(path)], capsys)
    assert code == 3
    one_error_line(lines, "1 trial failed", "--retry-failed")
    rows = table(tmp_path / "results")
    assert rows[:-1] == kept and rows[-1][:3] == (key, index, "failed")
    assert "simulated trial-specific crash" in rows[-1][-1]
    monkeypatch.setattr(worker, "TrialRun", original)
    code, lines = cli(["run", str(path)], capsys)
    assert code == 3  # still failed: a plain rerun does not retry it
    code, lines = cli(["run", str(path), "--retry-failed"], capsys)
    assert code == 0, lines
    assert table(tmp_path / "results") == reference[1]


def test_data_directory_disappears_after_the_checks(tmp_path, shared_data_dir, capsys,
                                                    monkeypatch):
    """The directory vanishes between the checks and the first trial's load: the run stops
    with one line and stores no trial (a worker that has loaded its data keeps it)."""
    data = tmp_path / "mnist"
    shutil.copytree(shared_data_dir / "mnist", data)
    path = write_experiment(tmp_path / "exp.toml", tmp_path / "results", data)
    real = experiment_cmds.preflight

    def checks_then_vanish(spec):
        lines = real(spec)
        shutil.rmtree(data)
        return lines

    monkeypatch.setattr(experiment_cmds, "preflight", checks_then_vanish)
    code, lines = cli(["run", str(path)], capsys)
    assert code == 4
    one_error_line(lines, "run stopped", f"data directory {data} does not exist")
    assert table(tmp_path / "results") == []
    code, lines = cli(["run", str(path)], capsys)
    assert code == 2 and len(lines) == 1  # and now the checks say so before anything runs


def test_disk_full_while_trials_are_written(reference, tmp_path, mnist_small, capsys,
                                            monkeypatch):
    """A size-limited tmpfs fills up during the run (an OSError(ENOSPC) injected at the
    store's write where no tmpfs can be mounted)."""
    mount = tmp_path / "small"
    why = mount_tmpfs(mount, f"size={preflight.MIN_FREE_MIB + 8}m")
    path = write_experiment(tmp_path / "exp.toml", mount / "results", mnist_small)
    results = mount / "results"
    try:
        if why is None:
            run = Run(path)
            assert run.wait_for(lambda: stored_rows(results) >= 1), run.lines
            run.pause()
            with open(mount / "filler", "wb") as fh:  # fill the file system to the brim
                try:
                    while True:
                        fh.write(b"\0" * 2**20)
                        fh.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
            run.resume()
            code = run.finish()
            lines = run.lines
        else:
            print(f"no tmpfs ({why}): injecting OSError(ENOSPC) at the store's write")
            real_write = ResultStore.write_trial
            calls = {"n": 0}

            def write(self, trial, **kwargs):
                calls["n"] += 1
                if calls["n"] > 1:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_write(self, trial, **kwargs)

            monkeypatch.setattr(ResultStore, "write_trial", write)
            code, lines = cli(["run", str(path)], capsys)
            monkeypatch.setattr(ResultStore, "write_trial", real_write)
        assert code == 4, lines
        line = one_error_line(lines, "run stopped")
        with capsys.disabled():
            print(f"\ntmpfs: {'yes' if why is None else why}; the line: {line}")
        assert "full" in line or "No space left" in line, line
        partial = table(results)
        assert 1 <= len(partial) < N_TRIALS
        assert set(partial) <= set(reference[1])  # what was stored is right
        (mount / "filler").unlink(missing_ok=True)
        code, lines = cli(["run", str(path)], capsys)
        assert code == 0, lines
        assert table(results) == reference[1]
    finally:
        if why is None:
            unmount(mount)


# ------------------------------------------------------------- processes and signals


def test_two_runs_at_once_and_reads_while_a_run_writes(reference, tmp_path, mnist_small,
                                                       capsys):
    import json

    import pandas as pd

    from cli_output import status_rows

    path = write_experiment(tmp_path / "exp.toml", tmp_path / "results", mnist_small)
    results = tmp_path / "results"
    first = Run(path)
    assert first.wait_for(lambda: stored_rows(results) >= 1), first.lines
    first.pause()  # mid-run, lock held: everything below overlaps it
    try:
        rows = table(results)  # what the paused run has stored: what the reads must show
        assert len(rows) >= 1 and set(rows) <= set(reference[1])
        second = Run(path)
        assert second.finish() == 5
        assert len(second.lines) == 1
        one_error_line(second.lines, "another `sparsedp run` is using", "pid")
        assert main(["status", str(path)]) == 0
        shown = status_rows(capsys.readouterr().out)
        studies = {s.key: s for s in load_experiment(path).studies()}
        assert set(shown) == {(s.sparsity, s.batch_size) for s in studies.values()}
        for key, study in studies.items():
            mine = [r for r in rows if r[0] == key]
            done = [r[3] for r in mine if r[2] == "complete"]
            row = shown[(study.sparsity, study.batch_size)]
            assert row["done"] == f"{len(mine)}/2"
            assert int(row["complete"]) == len(done)
            assert row["best steps"] == (str(min(done)) if done else "-")
        assert main(["export", str(path), "--format", "csv"]) == 0
        exported = pd.read_csv(results / "trials.csv")
        assert sorted(zip(exported["study_key"], exported["trial_index"], exported["status"],
                          strict=True)) == [r[:3] for r in rows]
        assert main(["report", str(path), "--bootstrap", "5", "--formats", "png"]) == 0
        capsys.readouterr()
        summary = json.loads((results / "report" / "summary.json").read_text())
        assert summary["counts"]["n_trials"] == len(rows)
        reported = {(s["sparsity"], s["batch_size"]): s["steps"] for s in summary["studies"]
                    if s["steps"] is not None}
        assert reported == {(study.sparsity, study.batch_size): min(done)
                            for key, study in studies.items()
                            if (done := [r[3] for r in rows if r[0] == key
                                         and r[2] == "complete"])}
        assert first.process.poll() is None
        assert table(results) == rows  # the paused run stored nothing meanwhile
    finally:
        first.resume()
    assert first.finish() == 0, first.lines
    assert table(results) == reference[1]


def test_lock_of_a_killed_run_is_free():
    """The kernel drops the lock with its process: a crashed run never leaves it stuck."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from sparsedp.execution.runlock import "
             "RunLock; RunLock(sys.argv[1]).acquire(); print('held', flush=True); "
             "time.sleep(300)", directory], stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockBusy, match=f"pid {holder.pid}"):
            RunLock(directory).acquire()
        holder.kill()
        holder.wait()
        with RunLock(directory):
            pass


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT],
                         ids=["SIGTERM", "SIGKILL", "SIGINT"])
def test_signal_at_a_random_moment_then_resume(reference, tmp_path, mnist_small,
                                               signum):
    """SIGTERM, SIGKILL or SIGINT (Ctrl-C) at a random moment of a run that has stored at
    least one trial of its own and still has trials to run: the exact exit code and line,
    every trial stored before the signal survives, none is duplicated or wrong, and the
    rerun ends with the undisturbed table.

    The run starts with 0, 1 or 2 of the 4 trials stored and runs them one at a time
    (stopping off, so no interleaving); once it has stored one, after a further random
    delay of up to half a second (cut short when the next trial is stored), it is frozen
    with SIGSTOP, so it is surely alive with work left when the signal is sent, and then
    continued. The seed changes from run to run; SPARSEDP_TEST_SEED repeats one.
    """
    seed = int(os.environ.get("SPARSEDP_TEST_SEED", random.randrange(2**32)))
    rng = random.Random(seed * 3 + signum)
    where = f"SPARSEDP_TEST_SEED={seed}"
    path = copy_of_reference(reference, tmp_path, mnist_small,
                             "stop_hopeless = false")
    results = tmp_path / "results"
    kept = delete_trials(results, keep=rng.choice((0, 1, 2)))
    run = Run(path)
    assert run.wait_for(lambda: stored_rows(results) > len(kept)), (where, run.lines)
    target, stored = time.monotonic() + rng.uniform(0.0, 0.5), stored_rows(results)
    while time.monotonic() < target and stored_rows(results) == stored:
        time.sleep(0.01)
    run.pause()
    at_signal = table(results)  # stored before the signal: must all survive
    assert run.process.poll() is None, (where, "the run ended before the signal")
    assert len(kept) < len(at_signal) < N_TRIALS, (where, len(kept), len(at_signal))
    if signum == signal.SIGTERM:
        os.kill(run.process.pid, signum)
    else:  # SIGKILL to the whole group, like a crash; SIGINT as a terminal's Ctrl-C sends it
        os.killpg(run.process.pid, signum)
    run.resume()
    code = run.finish()
    after = table(results)
    assert len(set(after)) == len(after), where  # nothing duplicated
    assert set(at_signal) <= set(after) <= set(reference[1]), where  # nothing lost or wrong
    assert len(after) <= len(at_signal) + 1, where  # at most a write under way finished
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL, (where, code, run.lines)
    else:
        assert code == {signal.SIGTERM: 143, signal.SIGINT: 130}[signum], \
            (where, code, run.lines)
        name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
        new = len(after) - len(kept)
        one_error_line(run.lines, f"sparsedp: interrupted by {name} after storing {new} "
                                  f"trial{'' if new == 1 else 's'};")
    rerun = Run(path)  # a process, like the reference, on torch's default threads
    assert rerun.finish() == 0, rerun.lines
    assert table(results) == reference[1]


def test_trial_on_a_missing_device_is_bad_input(capsys):
    code, lines = cli(["trial", "--workload", "mnist-simplecnn-sgd", "--sparsity", "0",
                       "--batch-size", "8", "--lr", "0.1", "--device", NO_GPU], capsys)
    assert code == 2 and len(lines) == 1
    one_error_line(lines, f"device '{NO_GPU}'", "--device")


# ----------------------------------------------------------------------- internal errors


@pytest.mark.parametrize("error", [KeyError("study_key"), ValueError("bad internal state")])
def test_internal_error_is_not_bad_input(reference, tmp_path, mnist_small, capsys,
                                         monkeypatch, error):
    """A KeyError/ValueError from inside sparsedp is a bug, not bad input: its own line and
    exit code, with a pointer to SPARSEDP_DEBUG=1."""
    path = copy_of_reference(reference, tmp_path, mnist_small)

    def broken(rows):
        raise error

    monkeypatch.delenv("SPARSEDP_DEBUG", raising=False)
    monkeypatch.setattr(experiment_cmds, "best_per_study", broken)
    code, lines = cli(["status", str(path)], capsys)
    assert code == 1
    assert len(lines) == 1
    one_error_line(lines, "internal error", type(error).__name__, "SPARSEDP_DEBUG=1")
    monkeypatch.setenv("SPARSEDP_DEBUG", "1")
    with pytest.raises(type(error)):
        main(["status", str(path)])


# ------------------------------------------------- damaged databases: every command (issue 22)


def damage_page(database: Path, name: str, garbage: str) -> int:
    """Overwrite the root page of table or index ``name`` with garbage (``random``: seeded
    random bytes; ``text``: a repeated word); returns the page number."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
    db.close()
    wal = database.with_name(database.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # every page is in the file itself
    blob = random.Random(22).randbytes(page_size) if garbage == "random" else \
        b"garbage!" * (page_size // 8)
    with open(database, "r+b") as fh:
        fh.seek((page - 1) * page_size)
        fh.write(blob)
    return page


READ_COMMANDS = {
    "status": ["status", "{exp}"],
    "export": ["export", "{exp}", "--format", "csv"],
    "report": ["report", "{exp}", "--bootstrap", "5", "--formats", "png"],
    "report-dir": ["report", "{results}", "--bootstrap", "5", "--formats", "png"],
    "plan": ["plan", "{exp}", "--measure-steps", "1"],
    "probe": ["probe", "{exp}", "--checkpoints", "1", "--lipschitz-points", "0"],
    "probe-show": ["probe", "{exp}", "--show"],
    "repeat": ["repeat", "{exp}", "--seeds", "1"],
    "run": ["run", "{exp}"],
}


@pytest.mark.parametrize("garbage, name", [("random", "experiments"),
                                           ("text", "sqlite_autoindex_experiment_studies_1")],
                         ids=["random-bytes-in-a-table", "text-in-an-index"])
def test_damaged_database_is_refused_by_every_command(reference, tmp_path, mnist_small,
                                                      capsys, garbage, name):
    """A page of the results database overwritten: every command that reads it (and `run`)
    says so in one line naming the file, exits 2, and changes nothing; none shows the
    experiment as empty (before issue 22, `status` showed the trials of a file whose
    `experiments` table was garbage, and a damaged index gave an anonymous SQLite error)."""
    path = copy_of_reference(reference, tmp_path, mnist_small)
    results = tmp_path / "results"
    database = results / "sparsedp.sqlite"
    page = damage_page(database, name, garbage)
    before = snapshot(results)
    for command, argv in READ_COMMANDS.items():
        args = [a.format(exp=path, results=results) for a in argv]
        code = main(args)
        out, err = capsys.readouterr()
        lines = [line for line in (out + err).splitlines() if line.strip()]
        assert code == 2, (command, page, lines)
        assert len(lines) == 1, (command, lines)  # not a table, not a traceback: one line
        assert lines[0].startswith("sparsedp: error: results database"), (command, lines)
        assert str(database) in lines[0] and "damaged" in lines[0], (command, lines)
        assert snapshot(results) == before, command  # nothing written, nothing lost


def test_quick_check_problems_become_one_line():
    from sparsedp.store.check import quick_check_summary

    assert quick_check_summary([("ok",)]) is None
    rows = [("*** in database main ***\nPage 9: btreeInitPage() returns error code 11\n"
             "Page 17 is never used",), ("Page 18 is never used",)]
    assert quick_check_summary(rows) == ("Page 9: btreeInitPage() returns error code 11 "
                                         "(and 2 more problems)")


def test_intact_database_is_checked_once_per_state(reference, tmp_path, mnist_small,
                                                   monkeypatch):
    """A command that reads the database several times (report: trials, repeats, probes,
    provenance) runs SQLite's quick_check once; a write to the file checks it again."""
    from sparsedp.api import stored

    copy_of_reference(reference, tmp_path, mnist_small)
    results = tmp_path / "results"
    calls = []
    real = stored.inspect_store
    monkeypatch.setattr(stored, "inspect_store", lambda d: calls.append(d) or real(d))
    for _ in range(3):
        assert stored.results_state(results) == "intact"
    assert len(calls) == 1
    with ResultStore(results) as store:  # a writer: the file (or its log) changes
        store.record_failure("k", 0, 1, "RuntimeError: x", "")
    assert stored.results_state(results) == "intact"
    assert len(calls) == 2
    damage_page(results / "sparsedp.sqlite", "experiments", "random")
    with pytest.raises(SparsedpError, match="damaged"):
        stored.results_state(results)


# --------------------------------------------- a database that takes no writes (issue 22)


def _without_file_permission_override() -> None:
    """In a child started as root: drop the capabilities that let root ignore file modes
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER) from the bounding set, so the child
    runs as root but obeys a file's mode like any user."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _run_child(path: Path, **popen) -> tuple[int, list[str]]:
    env = {**os.environ}
    env.pop("SPARSEDP_DEBUG", None)
    done = subprocess.run([*RUN, str(path)], env=env, capture_output=True, text=True,
                          timeout=300, **popen)
    return done.returncode, [x for x in (done.stdout + done.stderr).splitlines() if x.strip()]


@pytest.mark.parametrize("how", ["chmod", "chattr"])
def test_database_that_takes_no_writes_is_refused_before_training(
        reference, tmp_path, mnist_small, how):
    """A read-only (chmod a-w) or immutable (chattr +i) results database: `run` proves with
    a real write that the file takes one, and refuses in one line, exit 2, before training
    (before issue 22 it trained nothing either, but ended "run stopped …" with exit 4).
    Once writable again, the same check passes."""
    path = copy_of_reference(reference, tmp_path, mnist_small)
    path.write_text(path.read_text().replace("trials = 2", "trials = 3"))  # work to do
    database = tmp_path / "results" / "sparsedp.sqlite"
    popen: dict = {}
    if how == "chmod":
        database.chmod(0o444)
        if os.geteuid() == 0:  # root ignores file modes unless it gives that power up
            probe = subprocess.run([sys.executable, "-c", "open(__import__('sys').argv[1], 'a')",
                                    str(database)], capture_output=True,
                                   preexec_fn=_without_file_permission_override)
            if probe.returncode == 0 or b"PermissionError" not in probe.stderr:
                pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE here, so a "
                            "read-only file is writable to this process; the chattr case "
                            f"covers it ({probe.stderr.decode().strip()[-200:]})")
            popen["preexec_fn"] = _without_file_permission_override
    else:
        done = subprocess.run(["chattr", "+i", str(database)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i does not work here ({done.stderr.strip() or 'no chattr'}); "
                        "the chmod case covers a database that takes no writes")
    try:
        before = table(tmp_path / "results")
        code, lines = _run_child(path, **popen)
        assert code == 2, lines
        assert len(lines) == 1, lines
        one_error_line(lines, f"results database {database} is not writable",
                       "readonly database", "chattr -i")
        assert table(tmp_path / "results") == before
    finally:
        if how == "chattr":
            subprocess.run(["chattr", "-i", str(database)], capture_output=True)
        database.chmod(0o644)
    assert preflight.check_database_writable(database).endswith("takes writes")
    assert table(tmp_path / "results") == before


# ------------------------------------------------------- failures of a run (issue 22)


def test_systematic_failure_stop_ignores_the_numbers_in_the_message():
    watch = FailureWatch(streak=3)
    for index, lr in enumerate((-4.53, -0.271, -1e-3)):
        line = f"ValueError: learning rate must be a positive number, got {lr}"
        if index < 2:
            watch.failed("a", index, 1, line)
            continue
        with pytest.raises(RunStopped, match=r"3 trials in a row failed with the same error "
                                             r"\(but for the numbers in it\): ValueError: "
                                             r"learning rate .* got -4\.53$"):
            watch.failed("a", index, 1, line)
    other = FailureWatch(streak=3)  # the same numbers in different errors: no streak
    other.failed("a", 0, 1, "ValueError: lr -1 is too small")
    other.failed("a", 1, 1, "ValueError: lr -1 is too large")
    other.failed("a", 2, 1, "KeyError: lr -1 is too large")


def test_trials_failing_with_their_own_numbers_stop_the_run(reference, tmp_path,
                                                            mnist_small, capsys,
                                                            monkeypatch):
    """Every trial raises with its own learning rate in the message: a systematic failure
    (exit 4, nothing of the failing trials stored), not three `failed` rows (exit 3)."""
    from sparsedp.execution.backends import worker

    path = copy_of_reference(reference, tmp_path, mnist_small)
    kept = delete_trials(tmp_path / "results", keep=1)  # 3 trials to run

    def broken(config, data, **kwargs):
        raise ValueError(f"cannot train with learning rate {config.lr!r}")

    monkeypatch.setattr(worker, "TrialRun", broken)
    code, lines = cli(["run", str(path)], capsys)
    assert code == 4, lines
    one_error_line(lines, "run stopped", "3 trials in a row", "but for the numbers",
                   "ValueError: cannot train with learning rate")
    assert table(tmp_path / "results") == kept


def test_failed_record_never_rebuilds_the_trial():
    """A trial whose configuration cannot be built (it raised in the worker for that reason)
    still gets its `failed` row: the seed is the study's, the point as it was."""
    from sparsedp.execution.tasks import TaskFailure, TrialTask, failed_record
    from sparsedp.specs import StudySpec

    study = StudySpec("mnist-simplecnn-momentum", 0.0, 16, seed=3)
    task = TrialTask(study, 5, {"lr": -5.0, "momentum": 0.9})
    with pytest.raises(ValueError, match="learning rate"):
        study.trial_config(task.index, task.point)
    failure = TaskFailure(study.key, 5, 3, "ValueError: learning rate must be a positive "
                          "number, got -5.0", "Traceback …")
    record = failed_record(task, failure)
    assert (record.status, record.trial_index, record.attempts) == ("failed", 5, 3)
    assert record.seed == study.trial_seed(5) == 3 * 1_000_003 + 5
    assert record.metaparameters == {"lr": -5.0, "momentum": 0.9}
    assert record.message == failure.error
