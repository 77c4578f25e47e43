#!/usr/bin/env bash
# Runs one criterion benchmark and writes its summary lines under a provenance header (command,
# commit, machine, date), atomically.
#   scripts/bench-criterion.sh dynaprune pruning            -> results/bench/bench-pruning.txt
#   scripts/bench-criterion.sh dynaprune-data batches       -> results/bench/bench-batches.txt
set -euo pipefail
cd "$(dirname "$0")/.."
package="${1:?usage: scripts/bench-criterion.sh PACKAGE BENCH [OUT]}"
bench="${2:?usage: scripts/bench-criterion.sh PACKAGE BENCH [OUT]}"
out="${3:-results/bench/bench-$bench.txt}"
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo bench -p "$package" --bench "$bench" 2>&1 | tee "$log"
mkdir -p "$(dirname "$out")"
{
  echo "# command: scripts/bench-criterion.sh $package $bench (cargo bench -p $package --bench $bench)"
  echo "# commit: $commit"
  echo "# machine: ${cpu:-unknown}, $(nproc) cores"
  echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # Criterion prints each benchmark id (group/name/parameter, lower case first), on its own
  # line when it is long, then its time: and thrpt: lines.
  grep -E '^[a-z][A-Za-z0-9_]*/|time:|thrpt:' "$log" | grep -v '%'
} > "$out.part"
mv "$out.part" "$out"
echo "wrote $out"
