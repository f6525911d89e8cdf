#!/usr/bin/env bash
# A long in-situ run on the virtual bench, measured (issue 17's benchmark;
# not run by CI): HOURS of CV cycling (0.2 V/s, a potentiostat sample every
# 10 ms, deflection at 1 kS/s in 1 s blocks) at --speed SPEED, then each
# post-run stage on its own. Prints wall time, CPU per deflection row, peak
# RSS of the run (which finalises in-process), of a second finalisation
# (`vegard recover`), of `analyze` and of `report`, disk per hour of
# experiment, and kappa against the bench's truth.
#
# Usage: bash scripts/bench-long-run.sh [HOURS] [SPEED] [path/to/vegard]
#   defaults: 24 h at --speed 100 (14.4 min of run) with target/release/vegard.
#   Keep the run folder: KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-24}
speed=${2:-100}
if [ -n "${3:-}" ]; then vegard=$3; else cargo build --release -q; vegard=target/release/vegard; fi
work=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT

# One CV cycle 0.4 -> 0.9 -> -0.1 -> 0.4 V at 0.2 V/s is 10 s.
cycles=$(python3 -c "print(max(1, round($hours * 3600 / 10)))")
cat > "$work/long.toml" <<TOML
[run]
name = "long-${hours}h"
sample = "virtual film"
operator = "bench-long-run.sh"
deflection_sample_interval_s = 0.001

[limits]
current_max_A = 0.01
potential_window_V = [-0.2, 1.0]

[[step]]
kind = "cv"
begin_V = 0.4
vertex_V = [0.9, -0.1]
scan_rate_V_per_s = 0.2
step_V = 0.002
cycles = $cycles
TOML

measure() { # label, command...: prints wall s, user+sys s, peak RSS MiB
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/$label.time" "$@" > "$work/$label.out" 2> "$work/$label.err" || {
    echo "$label failed:"; tail -5 "$work/$label.err"; exit 1; }
  read -r wall user sys rss_kb < "$work/$label.time"
  python3 -c "print(f'$label: {$wall:.1f} s wall, {$user + $sys:.1f} s CPU, peak RSS {$rss_kb / 1024:.0f} MiB')"
}

echo "== $hours h of CV at --speed $speed ($cycles cycles), deflection 1 kS/s, potentiostat 10 ms"
"$vegard" validate "$work/long.toml"
measure run "$vegard" run "$work/long.toml" --speed "$speed" --no-tui --json --out "$work/runs"
run=$(ls -d "$work"/runs/*/)
measure finalise "$vegard" recover "$run"
measure analyze "$vegard" analyze "$run" --json
measure report "$vegard" report "$run" --format html --out "$work/report.html"
"$vegard" sim --bench configs/sim.toml --truth --json > "$work/truth.json"
python3 - "$run" "$work" "$hours" <<'PY'
import json, pathlib, sys, tomllib
run, work, hours = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), float(sys.argv[3])
res = json.loads((work / "run.out").read_text().strip().splitlines()[-1])
meta = tomllib.loads((run / "run.toml").read_text())
segs = meta.get("alignment", {}).get("segments", [])
rows = sum(s.get("n_deflection", 0) for s in segs)
raw = sum(f.stat().st_size for f in (run / "raw").iterdir())
data = sum(f.stat().st_size for f in run.rglob("*.parquet"))
print(f"status {res['status']}; {rows} deflection rows; raw streams {raw / hours / 2**20:.1f} MiB "
      f"per hour of experiment ({raw / max(rows, 1):.1f} bytes per deflection row, all streams), "
      f"Parquet {data / hours / 2**20:.1f} MiB per hour")
wall, user, sys_, _ = (float(x) for x in (work / "run.time").read_text().split())
print(f"run: {(user + sys_) / max(rows, 1) * 1e6:.2f} us CPU per deflection row (everything: bench, "
      f"emulators, drivers, engine, finalisation), {hours * 3600 / wall:.0f}x real time")
analysis = json.loads((work / "analyze.out").read_text())
truth = json.loads((work / "truth.json").read_text())["kappa_nm_per_mC"]
dvc = analysis.get("deformation_vs_charge") or {}
k = dvc.get("slope_nm_per_mC")
if k is not None:
    print(f"kappa {k:.5f} vs truth {truth:.5f} nm/mC ({(k / truth - 1) * 100:+.3f} %), R^2 {dvc.get('r2')}")
else:
    print(f"kappa: none; analysis errors: {analysis.get('analysis_errors')}")
PY
