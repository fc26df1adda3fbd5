#!/usr/bin/env bash
# Run (or resume) the CPU reproduction in the background-friendly way: lowest priority,
# results written as each trial ends. The committed snapshot reproduction/w2-momentum-cpu.sqlite
# seeds a fresh clone's results directory, so a new session continues where the last stopped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
live="$here/results/w2-momentum-cpu/sparsedp.sqlite"
if [ ! -f "$live" ] && [ -f "$here/w2-momentum-cpu.sqlite" ]; then
    mkdir -p "$(dirname "$live")"
    cp "$here/w2-momentum-cpu.sqlite" "$live"
fi
exec nice -n 19 sparsedp run "$here/w2-momentum-cpu.toml" "$@"
