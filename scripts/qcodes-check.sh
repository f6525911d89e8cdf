#!/usr/bin/env bash
# Acceptance of the virtual bench by the community's own instrument drivers:
# QCoDeS's Keysight 34465A, SR860 and Lake Shore 336 drivers, unmodified,
# over pyvisa-py, against a standalone `vegard sim`. Installs QCoDeS and
# pyvisa-py in a throwaway virtual environment (pinned versions below), starts
# the bench, and runs scripts/qcodes_check/main.py against its resources.
# Exit status 0 only when every check passed with no error and no timeout.
#
# Usage: bash scripts/qcodes-check.sh [path/to/vegard]   (default: target/release/vegard)
#   VEGARD_SIM="cargo run -q -p vegard-sim --example standalone --" takes the
#   bench-only example instead (fast to build while working on an emulator).
set -euo pipefail
cd "$(dirname "$0")/.."
vegard=${1:-target/release/vegard}
if [ -n "${VEGARD_SIM:-}" ]; then
  sim_cmd="$VEGARD_SIM configs/sim.toml"
else
  [ -x "$vegard" ] || cargo build --release
  sim_cmd="$vegard sim --bench configs/sim.toml --json"
fi
work=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill -- -"$sim_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "== venv (qcodes, pyvisa-py)"
venv=${QCODES_VENV:-$work/venv}   # QCODES_VENV: reuse a venv between tries
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "qcodes==0.58.0" "pyvisa==1.16.2" "pyvisa-py==0.8.1"
"$venv/bin/python" -c "import qcodes, pyvisa, pyvisa_py; print('qcodes', qcodes.__version__, 'pyvisa', pyvisa.__version__, 'pyvisa-py', pyvisa_py.__version__)"

echo "== vegard sim"
setsid $sim_cmd > "$work/sim.jsonl" 2> "$work/sim.err" &
sim_pid=$!
for _ in $(seq 1200); do [ -s "$work/sim.jsonl" ] && break; sleep 0.1; done
head -n 1 "$work/sim.jsonl" > "$work/resources.json"
cat "$work/resources.json"

echo "== QCoDeS drivers against the emulators"
"$venv/bin/python" scripts/qcodes_check/main.py "$work/resources.json"
