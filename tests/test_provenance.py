"""The stored ``git_commit`` provenance: the checkout's ``git rev-parse HEAD``, with
``+dirty`` when a tracked file is modified (docs/decisions.md, "Experiments")."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

import sparsedp
from sparsedp.cli.main import main
from sparsedp.execution import provenance

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c",
                           "user.email=t@example.org", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def expected_commit(root: Path) -> str | None:
    """What a checkout at ``root`` must record: HEAD, '+dirty' with modified tracked files;
    None when sparsedp does not run from a git checkout (an installed copy)."""
    if not (root / ".git").exists():
        return None
    dirty = git(root, "status", "--porcelain", "--untracked-files=no")
    return git(root, "rev-parse", "HEAD") + ("+dirty" if dirty else "")


def provenance_copy_in(root: Path) -> ModuleType:
    """``sparsedp/execution/provenance.py`` loaded from a copy under ``root/src`` (the
    layout of a checkout), so that it describes the repository at ``root``."""
    target = root / "src" / "sparsedp" / "execution" / "provenance.py"
    target.parent.mkdir(parents=True)
    shutil.copy(provenance.__file__, target)
    spec = importlib.util.spec_from_file_location("provenance_copy", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_git_commit_is_head_and_dirty_only_with_modified_tracked_files(tmp_path: Path):
    root = tmp_path / "checkout"
    copy = provenance_copy_in(root)

    def commit_now() -> str | None:
        copy.git_commit.cache_clear()  # computed once per process otherwise
        return copy.git_commit()

    assert commit_now() is None  # not a git checkout
    git(root, "init", "-q")
    (root / "README.md").write_text("a checkout\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    head = git(root, "rev-parse", "HEAD")
    assert len(head) == 40 and commit_now() == head
    (root / "notes.txt").write_text("untracked\n")  # untracked files do not count
    assert commit_now() == head
    (root / "README.md").write_text("a checkout, modified\n")
    assert commit_now() == f"{head}+dirty"
    git(root, "add", "README.md")  # staged but not committed: still modified
    assert commit_now() == f"{head}+dirty"
    git(root, "commit", "-q", "-m", "second")
    second = git(root, "rev-parse", "HEAD")
    assert second != head and commit_now() == second


def test_a_run_stores_the_commit_of_this_checkout(tmp_path: Path, shared_data_dir: Path,
                                                  monkeypatch):
    monkeypatch.setenv("SPARSEDP_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "exp.toml"
    path.write_text(f"""name = "provenance"
workloads = ["mnist-simplecnn-sgd"]
sparsities = [0.0]
batch_sizes = [16]
trials = 1
results = "{tmp_path / 'results'}"
data_dir = "{shared_data_dir / 'mnist'}"
max_steps = 8
eval_every = 8
[engine]
eval_batch_size = 1000
""")
    root = Path(sparsedp.__file__).resolve().parents[2]  # src/sparsedp -> the checkout
    expected = expected_commit(root)
    assert main(["run", str(path)]) == 0
    db = sqlite3.connect(tmp_path / "results" / "sparsedp.sqlite")
    (stored,) = db.execute("SELECT provenance_json FROM trials").fetchone()
    db.close()
    assert json.loads(stored)["git_commit"] == expected
    assert expected_commit(root) == expected  # the tree did not change meanwhile
