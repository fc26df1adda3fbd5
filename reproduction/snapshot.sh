#!/usr/bin/env bash
# Copy a live results database to the committed snapshot (SQLite's online backup, so the copy
# is consistent even while `run.sh` writes), export the trial table as CSV for reading, and
# mirror the run's unfinished-trial saves into reproduction/inflight/NAME/ so that a fresh
# clone continues them (`run.sh` puts them back).
#
#   bash reproduction/snapshot.sh [NAME]    # NAME: w2-momentum-cpu (default), w1-sgd-cpu, …
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${1:-w2-momentum-cpu}"
live="$here/results/$name/sparsedp.sqlite"
# The saves first, then the database: a trial that ends in between is then both stored and
# saved (its save is ignored: a stored trial is never run again), never neither.
python - "$here/results/$name/cache" "$here/inflight/$name" <<'PY'
import os, shutil, sys
from pathlib import Path

def mirror(source: Path, target: Path) -> int:
    """Copy source's *.pt into target whole (temporary file, rename); drop target's others."""
    live = {p.name: p for p in source.glob("*.pt")} if source.is_dir() else {}
    for old in target.glob("*.pt") if target.is_dir() else []:
        if old.name not in live:  # the trial ended (or its save was dropped): not needed
            old.unlink()
    for name, path in live.items():
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / (name + ".tmp")
        try:
            shutil.copyfile(path, tmp)  # a save replaced meanwhile is read whole (rename)
        except FileNotFoundError:  # the trial ended meanwhile
            continue
        os.replace(tmp, target / name)
    return len(live)

cache, kept = Path(sys.argv[1]), Path(sys.argv[2])
saved = mirror(cache / "inflight", kept)
# the SNIP saliencies the saved trials' masks are rebuilt from (W3: a minute each on one
# core), only while there are saved trials
if saved:
    mirror(cache / "saliency", kept / "saliency")
else:
    shutil.rmtree(kept / "saliency", ignore_errors=True)
for folder in (kept / "saliency", kept):
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
PY
python - "$live" "$here/$name.sqlite" <<'PY'
import sqlite3, sys
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.execute("PRAGMA journal_mode=DELETE")
dst.close()
src.close()
PY
sparsedp export "$here/$name.toml" --format csv --out "$here/$name-trials.csv" >/dev/null
echo "snapshot: $here/$name.sqlite, $here/$name-trials.csv," \
    "$(find "$here/inflight/$name" -maxdepth 1 -name '*.pt' 2>/dev/null | wc -l) unfinished trials saved"
