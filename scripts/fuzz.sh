#!/usr/bin/env bash
# Fuzz every parser of user and instrument input for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   scripts/fuzz.sh --merge [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; no TARGET means all of them (the list
# is fuzz/Cargo.toml's [[bin]]s). A target also stops after FUZZ_RUNS
# executions (default 10^7), whichever comes first: the project's bar is
# "10 minutes or 10^7 executions" (scripts/fuzz.sh 600). One target runs
# at a time (libFuzzer, one process), each with libFuzzer's limits: an input taking over 1 s is a
# timeout, an RSS over 1024 MB or a single allocation over 1 GiB an
# out-of-memory; either, and any panic, is a finding. New inputs go to a
# scratch corpus (fuzz/work/<target>, kept between runs, not committed);
# the committed corpus fuzz/corpus/<target> is only read; `--merge` adds
# the scratch inputs that reach new code to it, for CI to replay. Findings are
# written to fuzz/artifacts/<target>/ and make the exit status 1.
#
# Needs the nightly toolchain (rustup toolchain install nightly) and
# cargo-fuzz (installed here if missing). FUZZ_SANITIZER (default none:
# the targets are safe Rust and the allocation limit is checked by
# fuzz/src/lib.rs's allocator) may be address for an ASan build.
# FUZZ_EXTRA_ARGS is appended to libFuzzer's arguments.
# See README "Fuzzing".
set -euo pipefail
cd "$(dirname "$0")/.."

merge=0
if [ "${1:-}" = "--merge" ]; then
    merge=1
    shift
    seconds=0
else
    seconds=${1:-60}
    shift || true
fi
case $seconds in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac
sanitizer=${FUZZ_SANITIZER:-none}

all_targets=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^vegard-fuzz$' || true)
if [ $# -gt 0 ]; then
    targets="$*"
    for t in $targets; do
        if ! grep -qx "$t" <<<"$all_targets"; then
            echo "unknown target $t; targets: $(echo $all_targets)" >&2
            exit 2
        fi
    done
else
    targets=$all_targets
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "the nightly toolchain is needed: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== building the fuzz targets (cargo +nightly fuzz build -s $sanitizer -a)"
(cd fuzz && cargo +nightly fuzz build -s "$sanitizer" -a)

if [ "$merge" -eq 1 ]; then
    # libFuzzer's merge: the inputs of fuzz/work/<target> that reach code
    # the committed corpus does not are copied into it (named by content
    # hash); nothing already there is removed.
    for t in $targets; do
        [ -d "fuzz/work/$t" ] || continue
        before=$(find "fuzz/corpus/$t" -type f | wc -l)
        (cd fuzz && cargo +nightly fuzz run -s "$sanitizer" -a "$t" "corpus/$t" "work/$t" -- \
            -merge=1 -timeout=1 -rss_limit_mb=1024) >"fuzz/logs/$t.merge.log" 2>&1
        after=$(find "fuzz/corpus/$t" -type f | wc -l)
        echo "== $t: corpus $before -> $after files"
    done
    exit 0
fi

mkdir -p fuzz/logs
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
found_any=0
for t in $targets; do
    mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
    dict=()
    [ -f "fuzz/dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
    log="fuzz/logs/$t.log"
    echo "== $t: $seconds s (log $log)"
    set +e
    (cd fuzz && cargo +nightly fuzz run -s "$sanitizer" -a "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -runs="${FUZZ_RUNS:-10000000}" -timeout=1 -rss_limit_mb=1024 -malloc_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" "${dict[@]}" \
        ${FUZZ_EXTRA_ARGS:-}) >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        result="nothing found"
    else
        found_any=1
        what=$(grep -m1 -oE 'ERROR: libFuzzer: [a-z -]+|panicked at [^:]+:[0-9]+|allocation of [0-9]+ bytes exceeds' "$log" || echo "exit $rc")
        artifact=$(grep -m1 -oE 'artifacts/[^ ]+' "$log" || echo "see $log")
        result="FOUND: $what ($artifact)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${rss:-?}" "$result" >>"$summary"
    echo "   executions ${execs:-?}, ${rate:-?} exec/s, peak RSS ${rss:-?} MB: $result"
done

echo
echo "| target | seconds | executions | exec/s | peak RSS (MB) | result |"
echo "|---|---|---|---|---|---|"
while IFS=$'\t' read -r t s e r m res; do
    echo "| $t | $s | $e | $r | $m | $res |"
done <"$summary"
exit "$found_any"
