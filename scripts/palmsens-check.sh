#!/usr/bin/env bash
# Usage: bash scripts/palmsens-check.sh [path/to/vegard]   (VEGARD_SIM="cargo run -q -p vegard-sim --example standalone --" for the bench-only example)
#
# Acceptance of vegard's MethodSCRIPT emulator by PalmSens' own Python code:
# the `palmsens` library of PalmSens' MethodSCRIPT_Examples repository
# (instrument.py, serialport.py, mscript.py), unmodified, over pyserial,
# identifies the emulated instrument and runs PalmSens' own example scripts
# (CV, CV nscans, SWV, DPV, NPV, LSV, CA, OCP, EIS); scripts/palmsens_check.py
# checks what the library's parser makes of the output. Exit 0 only when
# every check passed.
#
# PalmSens' files are not part of vegard (their licence ties use to PalmSens
# components; nothing of them is committed here). They are taken at test time
# from the pinned commit below and checked against the SHA-256 sums below,
# from the first of:
#   PALMSENS_EXAMPLES=<dir>      a checkout of the repository;
#   PALMSENS_EXAMPLES_GIT=<dir>  a git directory holding the commit
#                                (default: the search tool's mirror, if present);
#   GitHub, with curl.
# PALMSENS_VENV=<dir> reuses a virtual environment (pyserial) between tries;
# PALMSENS_SPEED (default 10) is the bench's time acceleration.
set -euo pipefail
cd "$(dirname "$0")/.."
vegard=${1:-target/release/vegard}
commit=bd1a44a09e1138a0af6c4900e5a9ca93054f85f0
sums="9748045b757fe1932c7ea5f304f5087307e55f33ec869d61ec63ba618abfcb38  Example_Python/Example_Python/palmsens/instrument.py
3d49abddb8b94811e19c8d02fd6dc338fb50e1e2cf8128cbe523ead41b9f14c1  Example_Python/Example_Python/palmsens/mscript.py
3c4a5a72d1ec4563dbdb79438f9f07d34c1351efd40dfc890d6b3155b32f7596  Example_Python/Example_Python/palmsens/serialport.py
7eb7e5e42c1ccd0e0fa0b2d05c5c13f51c89889cf77e73fd17d6e1069e2c3bb2  Example_Python/Example_Python/scripts/example_cv.mscr
5a0c91f59a0549c06bc0a63f70a4b0f76394d0130fdf357656a5e4ac75a4facd  Example_Python/Example_Python/scripts/example_cv_nscans.mscr
6c0ee528aedd32ecacfd236f5ae2f54f7af818af3d56247ee2dbc1ceee9510cd  Example_Python/Example_Python/scripts/example_advanced_swv.mscr
825aea33e13608be066e3546832bc59097191c0a89736289fa6a17295c21c801  Example_Python/Example_Python/scripts/example_eis.mscr
f47ad605c04e825d86f649129ab0e8add39d1d1336f3e7bf2a781005e2cf9a17  MethodSCRIPTs/Measurement_Loops/MSLoopExample001-LSV.mscr
89fe3a825a3d7ac3822f17aad015334703fad77a2f3f1b01d7a18d46c69b121b  MethodSCRIPTs/Measurement_Loops/MSLoopExample004-CV.mscr
7c57988f93069786bff9a3d295f43e97614a3293eeaa89b8e32825aa54623ad5  MethodSCRIPTs/Measurement_Loops/MSLoopExample005-DPV.mscr
fb0790f692616000762c1cf8ae568977b23c7cab1f01d975808b269c82079650  MethodSCRIPTs/Measurement_Loops/MSLoopExample006-SWV.mscr
47a5c1c6a0c9f100043d0034495be3c5eb6393408cbca962efb9537fe7379e94  MethodSCRIPTs/Measurement_Loops/MSLoopExample007-NPV.mscr
8afd258bfaaeb4f39701a9e3a5e741cadee55ce4cef8ad1a8dd4088cec4e8aff  MethodSCRIPTs/Measurement_Loops/MSLoopExample008-CA.mscr
9638d561505b3060a628f9c73ffb3cc20ea1d6a941d06e955d05759553aa5201  MethodSCRIPTs/Measurement_Loops/MSLoopExample011-OCP.mscr
8fe25750c917eecfc6af381e3c5baab8c6cbe763827c816742cc73acbd5ebb68  MethodSCRIPTs/Measurement_Loops/MSLoopExample012-EIS.mscr"

work=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill -- -"$sim_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "== PalmSens MethodSCRIPT_Examples @ $commit"
ps="$work/palmsens"
mkdir -p "$ps"
files=$(printf '%s\n' "$sums" | awk '{print $2}')
mirror=${PALMSENS_EXAMPLES_GIT:-/work/.mirror/PalmSens+MethodSCRIPT_Examples/repo}
if [ -n "${PALMSENS_EXAMPLES:-}" ]; then
  echo "from the checkout $PALMSENS_EXAMPLES"
  for f in $files; do mkdir -p "$ps/$(dirname "$f")"; cp "$PALMSENS_EXAMPLES/$f" "$ps/$f"; done
elif git --git-dir="$mirror" cat-file -e "$commit^{commit}" 2>/dev/null; then
  echo "from the git directory $mirror"
  for f in $files; do mkdir -p "$ps/$(dirname "$f")"; git --git-dir="$mirror" show "$commit:$f" > "$ps/$f"; done
else
  echo "from GitHub"
  for f in $files; do
    mkdir -p "$ps/$(dirname "$f")"
    curl -fsSL "https://raw.githubusercontent.com/PalmSens/MethodSCRIPT_Examples/$commit/$f" -o "$ps/$f"
  done
fi
if ! (cd "$ps" && printf '%s\n' "$sums" | sha256sum --quiet -c -); then
  echo "PalmSens' files differ from the pinned ones: not running modified code" >&2
  exit 1
fi
echo "SHA-256 of all $(printf '%s\n' "$files" | wc -l) files as pinned (unmodified)"

echo "== venv (pyserial)"
venv=${PALMSENS_VENV:-$work/venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "pyserial==3.5"
"$venv/bin/python" -c "import serial, sys; print('python', sys.version.split()[0], 'pyserial', serial.__version__)"

echo "== vegard sim"
speed=${PALMSENS_SPEED:-10}
sed -E "s/^time_acceleration *=.*/time_acceleration = $speed/" configs/sim.toml > "$work/sim.toml"
if [ -n "${VEGARD_SIM:-}" ]; then
  sim_cmd="$VEGARD_SIM $work/sim.toml"
else
  [ -x "$vegard" ] || cargo build --release
  sim_cmd="$vegard sim --bench $work/sim.toml --json"
fi
setsid $sim_cmd > "$work/sim.jsonl" 2> "$work/sim.err" &
sim_pid=$!
for _ in $(seq 1200); do [ -s "$work/sim.jsonl" ] && break; sleep 0.1; done
head -n 1 "$work/sim.jsonl" > "$work/resources.json"
cat "$work/resources.json"
[ -s "$work/resources.json" ] || { cat "$work/sim.err"; exit 1; }

echo "== PalmSens' library against the MethodSCRIPT emulator"
"$venv/bin/python" scripts/palmsens_check.py "$work/resources.json" "$ps"
