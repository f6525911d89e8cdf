#!/usr/bin/env bash
# Coverage of the analysis' 95 % intervals on the virtual bench (issue 13).
#
# For each seed (1..N, default 20) the default bench configs/sim.toml is
# copied with [sim] seed = <seed> and two recipes are run on it:
#   - recipes/demo-cv.toml (kappa from deformation vs charge),
#   - recipes/coverage-campaign.toml (CV + EIS + ESM at 25, 38, 52, 65 C:
#     tau_EIS, tau_ESM, Ea from both),
# `vegard analyze --json` is read and compared with the bench's truth
# (`vegard sim --truth --json`; tau at each step's measured temperature
# from D0 and Ea_D). scripts/coverage.py prints, per quantity, the
# fraction of seeds whose 95 % interval covers the truth and the mean and
# rms of (estimate - truth)/SE.
#
# Usage (on a fresh clone, after `cargo build --release`):
#   scripts/coverage.sh [N_SEEDS] [SPEED] [OUT_DIR]
#   defaults: 20 seeds, --speed 50, coverage-runs/
# Set SKIP_CAMPAIGN=1 to run the demo CV only. Re-running skips the seeds
# whose JSON is already in OUT_DIR (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
SPEED=${2:-50}
OUT=${3:-coverage-runs}
VEGARD=${VEGARD:-${CARGO_TARGET_DIR:-target}/release/vegard}
if [ ! -x "$VEGARD" ]; then
    echo "no $VEGARD: run cargo build --release first (or set VEGARD=path)" >&2
    exit 2
fi
mkdir -p "$OUT"
"$VEGARD" sim --bench configs/sim.toml --truth --json > "$OUT/truth.json"
for seed in $(seq 1 "$N"); do
    bench="$OUT/sim-seed$seed.toml"
    sed -E "s/^seed = [0-9]+/seed = $seed/" configs/sim.toml > "$bench"
    grep -q "^seed = $seed\$" "$bench" || { echo "could not set the seed in $bench" >&2; exit 1; }
    for what in demo campaign; do
        json="$OUT/$what-seed$seed.json"
        [ -s "$json" ] && continue
        if [ "$what" = campaign ] && [ "${SKIP_CAMPAIGN:-0}" = 1 ]; then continue; fi
        recipe=recipes/demo-cv.toml
        [ "$what" = campaign ] && recipe=recipes/coverage-campaign.toml
        runs="$OUT/runs-$what-seed$seed"
        rm -rf "$runs"
        start=$(date +%s)
        "$VEGARD" run "$recipe" --bench "$bench" --speed "$SPEED" --no-tui --out "$runs" > "$OUT/$what-seed$seed.log" 2>&1 \
            || echo "seed $seed $what: run exit status $? (see $OUT/$what-seed$seed.log)" >&2
        if [ -f "$runs/run.toml" ]; then dir=$runs; else dir=$(ls -d "$runs"/*/ | head -n 1); fi
        "$VEGARD" analyze "$dir" --json > "$json.tmp" 2>> "$OUT/$what-seed$seed.log" || true
        mv "$json.tmp" "$json"
        echo "seed $seed $what: $(( $(date +%s) - start )) s wall"
    done
done
python3 scripts/coverage.py "$OUT"
