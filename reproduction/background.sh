#!/usr/bin/env bash
# The CPU reproductions of issue 23 in the background: one queue per core, each run niced with
# one torch thread (every file sets [engine] threads = 1), results stored as each trial ends and
# unfinished trials saved every 5 minutes (docs/faults.md, "Unfinished trials").
#
#   bash reproduction/background.sh start    # core 1: w1-sgd-cpu, then w3-resnet8-cpu
#                                            # core 0: w2-nesterov-cpu, then w3-resnet8-cpu
#                                            # (both cores for W3 once both got there)
#   bash reproduction/background.sh focus    # stop both queues; run every experiment in turn
#                                            # on both cores, two workers (W1 before W3)
#   bash reproduction/background.sh status   # each run's stored trials and saved unfinished ones
#   bash reproduction/background.sh stop     # SIGTERM, then a snapshot of each, staged for git
#   bash reproduction/background.sh snapshot # a snapshot of each, staged, the runs going on
#                                            # (a snapshot: database, CSV, unfinished trials' saves)
#
# A queue runs its experiments in turn; one that is finished is skipped. The shared last one
# (W3) starts on the core that is free first, with one worker; when the other queue gets to
# it, it stops that run (unfinished trials are saved every 5 minutes, so at most that much
# of each trial is redone) and runs it again with two workers on both cores.
# Logs: reproduction/results/NAME/run.log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
queues=("1:w1-sgd-cpu w3-resnet8-cpu" "0:w2-nesterov-cpu w3-resnet8-cpu")
shared="w3-resnet8-cpu"  # in both queues: taken over by the second queue to get there
names="w1-sgd-cpu w2-nesterov-cpu w3-resnet8-cpu"
pids="$here/results/background.pids"

queue() {  # CORES NAME...: run each NAME on CORES (e.g. 1 or 0,1), one worker a core, in turn
    local core="$1" workers
    shift
    workers=$(( $(tr -cd , <<< "$core" | wc -c) + 1 ))
    for name in "$@"; do
        mkdir -p "$here/results/$name"
        status=0
        OMP_NUM_THREADS=1 taskset -c "$core" bash "$here/run.sh" "$name" --workers "$workers" \
            >> "$here/results/$name/run.log" 2>&1 || status=$?
        if [ "$status" -eq 5 ] && [ "$name" = "$shared" ]; then
            # held by the other queue on its one core: stop it, go on with both cores
            pkill -TERM -f "sparsedp run $here/$name.toml" || true
            while pgrep -f "sparsedp run $here/$name.toml" > /dev/null; do sleep 1; done
            status=0
            OMP_NUM_THREADS=1 taskset -c 0,1 bash "$here/run.sh" "$name" --workers 2 \
                >> "$here/results/$name/run.log" 2>&1 || status=$?
        fi
        # 0 finished, 5 held by the other queue: go on; anything else (stopped, failed): end
        if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then
            return "$status"
        fi
    done
}

is_queue() {  # PID: whether PID is still one of our queues (a pid left in the file from an
    # earlier session may since have been given to an unrelated process)
    [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -Eq "queue [0-9,]+ "
}

snapshot_all() {  # SQLite's online backup of each live database, staged for a commit
    for name in $names; do
        [ -f "$here/results/$name/sparsedp.sqlite" ] || continue
        bash "$here/snapshot.sh" "$name"
        git -C "$here/.." add -f "reproduction/$name.sqlite" "reproduction/$name-trials.csv"
        git -C "$here/.." add -A "reproduction/inflight/$name" 2>/dev/null || true
    done
}

stop_all() {  # the queues first (so that none starts its next run), then the runs
    if [ -f "$pids" ]; then
        while read -r pid; do
            if is_queue "$pid"; then kill "$pid" 2>/dev/null || true; fi
        done < "$pids"
        rm -f "$pids"
    fi
    pkill -TERM -f "sparsedp run $here/" || true
    while pgrep -f "sparsedp run $here/" > /dev/null; do sleep 1; done
}

case "${1:-}" in
focus)
    stop_all
    mkdir -p "$here/results"
    : > "$pids"
    nohup bash -c "$(declare -f queue); here='$here'; queue 0,1 $names" > /dev/null 2>&1 &
    echo "$!" >> "$pids"
    echo "cores 0,1: $names (queue pid $!)"
    ;;
start)
    mkdir -p "$here/results"
    if [ -f "$pids" ]; then
        while read -r pid; do
            if is_queue "$pid"; then
                echo "already running (queue pid $pid): background.sh status shows them"
                exit 0
            fi
        done < "$pids"
    fi
    : > "$pids"
    for entry in "${queues[@]}"; do
        core="${entry%%:*}"
        # shellcheck disable=SC2086
        nohup bash -c "$(declare -f queue); here='$here'; queue $core ${entry#*:}" \
            > /dev/null 2>&1 &
        echo "$!" >> "$pids"
        echo "core $core: ${entry#*:} (queue pid $!)"
        sleep 5  # the first queue takes its lock before the second looks
    done
    ;;
status)
    for name in $names; do
        [ -f "$here/results/$name/sparsedp.sqlite" ] || [ -f "$here/$name.sqlite" ] || continue
        echo "== $name"
        sparsedp status "$here/$name.toml" 2>&1 | grep -E "saved mid-run|trials per study" || true
        tail -n 1 "$here/results/$name/run.log" 2>/dev/null || true
    done
    ;;
stop)
    stop_all
    snapshot_all
    ;;
snapshot)
    snapshot_all
    ;;
*)
    echo "usage: bash reproduction/background.sh start|focus|status|stop|snapshot" >&2
    exit 2
    ;;
esac
