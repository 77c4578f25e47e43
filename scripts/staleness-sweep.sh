#!/usr/bin/env bash
# How the staleness model and its defaults were chosen (docs/RULES.md, "Dynamic rules that stay dynamic"): UCB and
# epsilon-greedy variants on a 12,000-sample slice of Fashion-MNIST, ResNet-8, 8 epochs, 50%
# pruned per pruned epoch (nominal budget, as when the sweep was run), seed 0. It reports
# selection dynamics (overlap, never/sometimes/always selected); the test accuracies, on 2,000 test
# images, are one seed each and differ by less than their standard error (about 0.7 points).
#
#   scripts/staleness-sweep.sh [OUT_DIR]      # about 10 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/staleness-sweep}
cargo build --release --quiet -p dynaprune-harness
bin=target/release/dynaprune
common=(--dataset fashion-mnist --max-train-samples 12000 --max-test-samples 2000 --epochs 8
        --prune-fraction 0.5 --budget nominal --progress plain)
run() {
  local name=$1; shift
  [ -f "$out/$name/summary.json" ] || "$bin" train "${common[@]}" "$@" --out "$out/$name" > /dev/null
  python3 - "$out/$name" "$name" <<'PY'
import csv, json, sys
d, name = sys.argv[1], sys.argv[2]
s = json.load(open(f"{d}/summary.json"))
h = s["selection_histogram"]; n = sum(h)
print(f"{name:24s} mean overlap {s['mean_overlap']:.3f}  never {100*h[0]/n:5.1f}%  sometimes "
      f"{100*(1-h[0]/n-h[-1]/n):5.1f}%  always {100*h[-1]/n:5.1f}%  re-scored {s['rescore_samples']:6d}  "
      f"test acc {100*s['final_test_acc']:.2f}%")
PY
}
run ucb-plain          --policy ucb --staleness off
run ucb-prior-r05-d0   --policy ucb --staleness prior --staleness-retention 0.5 --staleness-drift 0
run ucb-prior-r05-d01  --policy ucb --staleness prior --staleness-retention 0.5 --staleness-drift 0.1
run ucb-prior-r08-d01  --policy ucb --staleness prior --staleness-retention 0.8 --staleness-drift 0.1
run ucb-drift-d025     --policy ucb --staleness prior --staleness-retention 1.0 --staleness-drift 0.25
run ucb-bonus1         --policy ucb --staleness count-bonus --staleness-bonus 1.0
run ucb-rescore2       --policy ucb --rescore-every 2
run random             --policy random
run eps-plain-ema09    --policy epsilon-greedy --staleness off --ema-decay 0.9
run eps-prior-ema09    --policy epsilon-greedy --ema-decay 0.9
run eps-plain-ema05    --policy epsilon-greedy --staleness off --ema-decay 0.5
run eps-prior-ema05    --policy epsilon-greedy --ema-decay 0.5
