#!/usr/bin/env bash
# Submits a dynaprune grid to Slurm: an array of TASKS shards and a dependent job that merges the
# report. Builds the binaries once first, so the tasks do not each run cargo.
#
#   scripts/slurm/submit.sh PRESET TASKS [OUT] [-- extra `xtask reproduce` flags]
#   scripts/slurm/submit.sh cpu 12                       # results/cpu, 12 tasks
#   scripts/slurm/submit.sh smoke 3 /tmp/smoke -- --methods full,ucb
#
# Prints the two job ids. Watch with `squeue -t all`; resubmitting continues an unfinished grid.
set -euo pipefail
cd "$(dirname "$0")/../.."
preset=${1:?usage: submit.sh PRESET TASKS [OUT] [-- flags]}
tasks=${2:?usage: submit.sh PRESET TASKS [OUT] [-- flags]}
out=${3:-}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
[[ "$tasks" =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: TASKS must be a positive integer, got '$tasks'" >&2; exit 2; }
cargo build --release --quiet -p dynaprune-harness -p xtask
export PRESET="$preset" OUT="$out" EXTRA_ARGS="$*" XTASK="$PWD/target/release/xtask" DYNAPRUNE_BIN="$PWD/target/release/dynaprune"
logs=${out:-results/$preset}/slurm-logs
mkdir -p "$logs"
array=$(sbatch --parsable --array="0-$((tasks - 1))" --export=ALL --output="$logs/grid-%A_%a.out" scripts/slurm/grid.sbatch)
report=$(sbatch --parsable --dependency="afterok:$array" --export=ALL --output="$logs/report-%j.out" scripts/slurm/report.sbatch)
echo "$array $report"
