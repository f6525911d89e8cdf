#!/usr/bin/env bash
# Stress check (not a timed test): the README's demo at --speed 1 (real time,
# about 35 s each) N times (default 10) while two busy loops keep both cores
# of a 2-core machine fully loaded. Every run must complete, with kappa within
# 3 % of the bench's truth. Prints one line per run and a summary; exit 1 if
# any run failed.
#
# Usage: bash scripts/stress-demo.sh [N] [BUSY_LOOPS]   (defaults 10 and 2)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
busy=${2:-2}
cargo build --release -q
vegard=target/release/vegard
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT
truth=$("$vegard" sim --bench configs/sim.toml --truth --json | python3 -c "import json,sys; print(json.load(sys.stdin)['kappa_nm_per_mC'])")
for _ in $(seq "$busy"); do
  ( while :; do :; done ) &
  pids+=($!)
done
echo "truth kappa $truth nm/mC; $busy busy loops; nproc $(nproc)"
ok=0
for i in $(seq "$n"); do
  t0=$(date +%s)
  set +e
  "$vegard" run recipes/demo-cv.toml --speed 1 --out "$out" --json > "$out/run-$i.json" 2> "$out/run-$i.err"
  code=$?
  set -e
  t1=$(date +%s)
  line=$(tail -n 1 "$out/run-$i.json")
  if python3 - "$line" "$truth" "$code" "$((t1 - t0))" "$i" <<'PY'
import json, sys
line, truth, code, wall, i = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
try:
    r = json.loads(line)
except ValueError:
    print(f"run {i}: exit {code}, no JSON result ({wall} s)")
    sys.exit(1)
d = r.get("deformation_vs_charge") or {}
k = d.get("slope_nm_per_mC")
err = abs(k - truth) / abs(truth) if k is not None else float("inf")
ok = code == 0 and r["status"] == "complete" and err < 0.03
kappa = f"{k:.5f}" if k is not None else "none"
print(f"run {i}: exit {code} {r['status']} kappa {kappa} ({100 * err:.2f} %) {wall} s"
      + ("" if ok else f"  FAIL reason: {r.get('reason')}"))
sys.exit(0 if ok else 1)
PY
  then ok=$((ok + 1)); else sed 's/^/    /' "$out/run-$i.err" | tail -n 5; fi
done
echo "$ok of $n demo runs complete with kappa within 3 % under $busy busy loops"
[ "$ok" -eq "$n" ]
