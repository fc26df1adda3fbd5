#!/usr/bin/env bash
# Copy a live results database to the committed snapshot (SQLite's online backup, so the copy
# is consistent even while `run.sh` writes), and export the trial table as CSV for reading.
#
#   bash reproduction/snapshot.sh [NAME]    # NAME: w2-momentum-cpu (default), w1-sgd-cpu, …
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${1:-w2-momentum-cpu}"
live="$here/results/$name/sparsedp.sqlite"
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
echo "snapshot: $here/$name.sqlite, $here/$name-trials.csv"
