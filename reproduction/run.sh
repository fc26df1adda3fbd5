#!/usr/bin/env bash
# Run (or resume) one CPU reproduction in the background-friendly way: lowest priority,
# results written as each trial ends. The committed snapshot reproduction/NAME.sqlite and the
# unfinished trials saved beside it (reproduction/inflight/NAME/, by snapshot.sh) seed a fresh
# clone's results directory, so a new session continues where the last stopped.
#
#   bash reproduction/run.sh [NAME] [sparsedp run options]   # NAME: w2-momentum-cpu (default),
#                                                             # w2-nesterov-cpu, w1-sgd-cpu, …
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="w2-momentum-cpu"
if [ $# -gt 0 ] && [ -f "$here/$1.toml" ]; then
    name="$1"
    shift
fi
live="$here/results/$name/sparsedp.sqlite"
if [ ! -f "$live" ] && [ -f "$here/$name.sqlite" ]; then
    mkdir -p "$(dirname "$live")"
    cp "$here/$name.sqlite" "$live"
    if [ -d "$here/inflight/$name" ]; then  # each is checked before use (same trial, same way)
        mkdir -p "$(dirname "$live")/cache/inflight"
        cp "$here/inflight/$name"/*.pt "$(dirname "$live")/cache/inflight/"
        if [ -d "$here/inflight/$name/saliency" ]; then  # keyed by what they were computed from
            mkdir -p "$(dirname "$live")/cache/saliency"
            cp "$here/inflight/$name/saliency"/*.pt "$(dirname "$live")/cache/saliency/"
        fi
    fi
fi
exec nice -n 19 sparsedp run "$here/$name.toml" "$@"
