#!/usr/bin/env bash
# Head-to-head: the same CNLS fit (impedance.py's published example:
# exampleData.csv with Z'' < 0, circuit R0-p(R1-Wo1,C1), initial guess
# [0.01, 0.005, 0.01, 200, 0.1]) in impedance.py and in `vegard fit-eis`,
# timed in the same run on the same machine. Fit time only: no process
# start, no file reading (vegard reports `fit_time_s`; the Python side times
# `CustomCircuit.fit` alone). Prints both medians, the ratio, and the
# largest relative difference of the fitted parameters.
#
# Needs python3 with venv and network access to PyPI (impedance.py is
# installed into a throwaway virtual environment that is removed after).
# Usage: scripts/bench-eis-vs-impedancepy.sh [repetitions]   (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-50}
data=../shared/fixtures/eis/exampleData.csv
[ -f "$data" ] || { echo "missing $data (clone with ../shared beside the repo)"; exit 2; }

venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
echo "== installing impedance.py into a throwaway venv"
python3 -m venv "$venv"
# impedance.py imports its plotting helpers (pandas, altair) at import time.
"$venv/bin/pip" install -q impedance pandas altair
echo "== building vegard (release)"
cargo build --release -q

echo "== impedance.py: $reps fits"
"$venv/bin/python" - "$data" "$reps" > "$venv/py.json" <<'PY'
import json, sys, time, statistics
import numpy as np
from impedance import preprocessing
from impedance.models.circuits import CustomCircuit
f, Z = preprocessing.readCSV(sys.argv[1])
f, Z = preprocessing.ignoreBelowX(f, Z)
times = []
for _ in range(int(sys.argv[2])):
    c = CustomCircuit("R0-p(R1-Wo1,C1)", initial_guess=[0.01, 0.005, 0.01, 200, 0.1])
    t0 = time.perf_counter()
    c.fit(f, Z)
    times.append(time.perf_counter() - t0)
print(json.dumps({"median_s": statistics.median(times),
                  "parameters": list(map(float, c.parameters_))}))
PY

echo "== vegard fit-eis: $reps fits"
vt=()
for _ in $(seq "$reps"); do
    ./target/release/vegard fit-eis "$data" --capacitive-only \
        --guess 0.01,0.005,0.01,200,0.1 --json > "$venv/rs.json"
    vt+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fit_time_s"])' "$venv/rs.json")")
done
printf '%s\n' "${vt[@]}" > "$venv/rs_times.txt"

python3 - "$venv/py.json" "$venv/rs.json" "$venv/rs_times.txt" <<'PY'
import json, sys, statistics
py = json.load(open(sys.argv[1]))
rs = json.load(open(sys.argv[2]))
t_rs = statistics.median(float(x) for x in open(sys.argv[3]))
names = ["R0", "R1", "Wo1_0", "Wo1_1", "C1"]
diff = max(abs(rs["parameters"][n] - p) / abs(p) for n, p in zip(names, py["parameters"]))
print(f"impedance.py fit: {py['median_s'] * 1e3:8.3f} ms (median)")
print(f"vegard fit-eis:   {t_rs * 1e3:8.3f} ms (median, fit_time_s)")
print(f"ratio: {py['median_s'] / t_rs:.1f}x faster")
print(f"largest relative parameter difference: {diff:.2e}")
PY
