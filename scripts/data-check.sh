#!/usr/bin/env bash
# A run's data files as a user reads them: every Parquet file of the given
# run folders (default: a fresh demo run), and the CSV `vegard export`
# writes, read by python polars and pandas with default options (pinned
# below, in a throwaway virtual environment); types, missing values and the
# Parquet key-value metadata are checked (scripts/data_check.py says what
# and the one documented exception). Exit status 0 only when all passed.
#
# Usage: bash scripts/data-check.sh [path/to/vegard] [RUN_DIR ...]
set -euo pipefail
cd "$(dirname "$0")/.."
vegard=${1:-target/release/vegard}
shift || true
[ -x "$vegard" ] || cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== venv (polars, pandas, pyarrow)"
venv=${DATA_VENV:-$work/venv}   # DATA_VENV: reuse a venv between tries
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "polars==2.1.0" "pandas==3.1.1" "pyarrow==26.0.1"

runs=("$@")
if [ ${#runs[@]} -eq 0 ]; then
  echo "== demo run (speed 20)"
  "$vegard" run recipes/demo-cv.toml --out "$work/runs" --speed 20 --no-tui > "$work/run.txt"
  runs=("$(ls -d "$work"/runs/*/)")
fi
"$venv/bin/python" scripts/data_check.py "$vegard" "${runs[@]}"
