#!/usr/bin/env bash
# The binary raw streams against the reference Arrow implementation: runs the
# demo recipe, then reads every raw/<stream>.arrows with pyarrow (pinned
# below, in a throwaway virtual environment) and compares it, column type by
# column type and value by value (NaN included), with `vegard export --raw`.
# Exit status 0 only when every stream matched.
#
# Usage: bash scripts/arrow-check.sh [path/to/vegard]   (default: target/release/vegard)
set -euo pipefail
cd "$(dirname "$0")/.."
vegard=${1:-target/release/vegard}
[ -x "$vegard" ] || cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== venv (pyarrow)"
venv=${ARROW_VENV:-$work/venv}   # ARROW_VENV: reuse a venv between tries
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "pyarrow==26.0.1"
"$venv/bin/python" -c "import pyarrow; print('pyarrow', pyarrow.__version__)"

echo "== demo run (speed 20)"
"$vegard" run recipes/demo-cv.toml --out "$work/runs" --speed 20 --no-tui > "$work/run.txt"
run=$(ls -d "$work"/runs/*/)

echo "== pyarrow reads vegard's raw streams"
"$venv/bin/python" scripts/arrow_check.py "$run" "$vegard"
