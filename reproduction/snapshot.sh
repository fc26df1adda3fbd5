#!/usr/bin/env bash
# Copy the live results database to the committed snapshot (SQLite's online backup, so the copy
# is consistent even while `run.sh` writes), and export the trial table as CSV for reading.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
live="$here/results/w2-momentum-cpu/sparsedp.sqlite"
python - "$live" "$here/w2-momentum-cpu.sqlite" <<'PY'
import sqlite3, sys
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.execute("PRAGMA journal_mode=DELETE")
dst.close()
src.close()
PY
sparsedp export "$here/w2-momentum-cpu.toml" --format csv --out "$here/w2-momentum-cpu-trials.csv" >/dev/null
echo "snapshot: $here/w2-momentum-cpu.sqlite, $here/w2-momentum-cpu-trials.csv"
