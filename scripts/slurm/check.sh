#!/usr/bin/env bash
# End-to-end check of the Slurm path on this machine (`cargo xtask slurm-check` runs it): bring up
# a one-node cluster, submit a small grid (the smoke preset's data, 7 cells including two EL2N
# cells that share one score file) as a 3-task array plus the dependent report job, wait, show
# the array with `squeue -t all`, check that the merged report has every cell and that the score
# file was computed once, and tear the cluster down. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d /tmp/dynaprune-slurm-check.XXXXXX)
start=$(date +%s.%N)
scripts/slurm/cluster.sh up
trap 'scripts/slurm/cluster.sh down' EXIT
read -r array report < <(scripts/slurm/submit.sh smoke 3 "$out" -- --methods full,ucb,random,el2n --prune-fractions 0.3,0.5)
echo "submitted: array $array, report $report (waits on the array)"
while [ -n "$(squeue -h -j "$array,$report" -t pending,running,configuring,completing 2>/dev/null)" ]; do sleep 1; done
echo "--- squeue -t all"
squeue -t all -j "$array,$report" -o "%.14i %.16j %.10T %.10M %r" | tee "$out/squeue.txt"
fail=0
state=$(scontrol show job "$report" | grep -o 'JobState=[A-Z_]*' | head -1)
[ "$state" = JobState=COMPLETED ] || { echo "the report job ended as $state" >&2; fail=1; }
want=7
got=$(find "$out/runs" -name summary.json | wc -l)
rows=$(( $(wc -l < "$out/runs.csv") - 1 ))
echo "cells finished: $got of $want; runs.csv rows: $rows"
[ "$got" = "$want" ] && [ "$rows" = "$want" ] || fail=1
computed=$(cat "$out"/slurm-logs/grid-*.out | grep -c "^el2n: [0-9]* scores in" || true)
echo "el2n score file computed by $computed task(s)"
[ "$computed" = 1 ] || fail=1
grep -q "Paired differences" "$out/REPORT.md" || fail=1
echo "slurm check took $(echo "$(date +%s.%N) - $start" | bc) s; output in $out"
[ "$fail" = 0 ] && echo "SLURM CHECK PASSED" || { echo "SLURM CHECK FAILED" >&2; exit 1; }
