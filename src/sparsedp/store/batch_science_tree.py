"""Where the studies and trials of a batch_science layout are.

A walk of the import folder that follows links only while they stay inside it (a link that
leaves it, dangles or leads back to a folder already walked is refused), finds every
``study.json`` and its trial folders, and names every other entry, which the import skips.
Decisions: docs/batch-science.md ("Validation").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sparsedp.store.batch_science import BatchScienceError

STUDY_FILE = "study.json"
TRIAL_FILES = ("metadata.json", "measurements.csv")
_WHERE = "<dataset>/<model>/<optimizer>/<batch_size>/study.json"


@dataclass(frozen=True)
class StudyFolder:
    """A folder holding ``study.json``, with its trial folders (in trial-id order)."""

    path: Path
    rel: PurePosixPath  # below the import folder
    trials: tuple[Path, ...]


@dataclass(frozen=True)
class Tree:
    """The studies under an import folder and the entries that are not part of the layout."""

    root: Path
    studies: tuple[StudyFolder, ...]
    skipped: tuple[str, ...]  # paths below the import folder


def walk(source: str | Path) -> Tree:
    """The layout under ``source``; raises :class:`BatchScienceError` (one line) for a
    folder that is not one, holds no study, or has a link that leaves it."""
    root = Path(source)
    if not root.is_dir():
        raise BatchScienceError(f"{root} is not a directory; give the folder that holds "
                                f"{_WHERE}")
    walker = _Walker(root)
    walker.visit(root, PurePosixPath())
    if not walker.studies:
        raise BatchScienceError(f"no study.json under {root}; give the folder that holds "
                                f"{_WHERE}")
    return Tree(root, tuple(walker.studies), tuple(walker.skipped))


def _shown(rel: PurePosixPath, path: Path) -> str:
    """How a skipped entry is named: its path below the import folder, ``/`` after a
    folder."""
    return (rel / path.name).as_posix() + ("/" if path.is_dir() else "")


def _trial_order(path: Path) -> tuple[bool, str]:
    return not path.name.isdigit(), path.name.zfill(12)


class _Walker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.real = root.resolve()
        self.seen: set[Path] = set()
        self.studies: list[StudyFolder] = []
        self.skipped: list[str] = []

    def _names(self, folder: Path) -> list[str]:
        try:
            return sorted(os.listdir(folder))
        except OSError as exc:
            raise BatchScienceError(f"{folder}: cannot list it ({exc.strerror}); make it "
                                    "readable or remove it from the import folder") from None

    def _entries(self, folder: Path) -> list[Path]:
        """The entries of ``folder`` (walked once), each link checked to stay inside."""
        real = folder.resolve()
        if real in self.seen:
            raise BatchScienceError(f"{folder}: reached a second time (a link inside the "
                                    f"import folder leads to {real} again); remove the link")
        self.seen.add(real)
        entries = [folder / name for name in self._names(folder)]
        for path in entries:
            if path.is_symlink():
                target = path.resolve()
                if target != self.real and self.real not in target.parents:
                    raise BatchScienceError(
                        f"{path}: a link to {target}, outside the import folder "
                        f"{self.root}; copy what it points to into the folder or remove the "
                        "link")
                if not target.exists():
                    raise BatchScienceError(f"{path}: a link to {target}, which does not "
                                            "exist; remove the link")
        return entries

    def visit(self, folder: Path, rel: PurePosixPath) -> None:
        entries = self._entries(folder)
        if any(path.name == STUDY_FILE for path in entries):
            self._study(folder, rel, entries)
            return
        for path in entries:
            if not path.is_dir():
                self.skipped.append(_shown(rel, path))
                continue
            studies, skipped = len(self.studies), len(self.skipped)
            self.visit(path, rel / path.name)
            if len(self.studies) == studies:  # no study below: name the folder, not its files
                del self.skipped[skipped:]
                self.skipped.append(_shown(rel, path))

    def _study(self, folder: Path, rel: PurePosixPath, entries: list[Path]) -> None:
        if not (folder / STUDY_FILE).is_file():
            raise BatchScienceError(f"{folder / STUDY_FILE}: not a file; remove it or make "
                                    "it the study's JSON file")
        if len(rel.parts) < 4:
            raise BatchScienceError(f"{folder / STUDY_FILE}: expected {_WHERE} below the "
                                    "import folder")
        trials = []
        for path in entries:
            if path.name == STUDY_FILE:
                continue
            if path.is_dir() and set(self._names(path)) & set(TRIAL_FILES):
                for inner in self._entries(path):
                    if inner.name not in TRIAL_FILES:
                        self.skipped.append(_shown(rel / path.name, inner))
                trials.append(path)
            else:
                self.skipped.append(_shown(rel, path))
        self.studies.append(StudyFolder(folder, rel, tuple(sorted(trials, key=_trial_order))))
