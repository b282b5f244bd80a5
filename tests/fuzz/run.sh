#!/usr/bin/env bash
# run.sh SECONDS [HARNESS...]: build the libFuzzer harnesses (clang) if
# needed and run each for SECONDS over a scratch copy of its seed corpus.
#
#   tests/fuzz/run.sh 600                      all ten, one after another
#   FUZZ_JOBS=2 tests/fuzz/run.sh 600          two at a time (one per core)
#   tests/fuzz/run.sh 60 fuzz_request fuzz_config
#
# Environment:
#   FUZZ_BUILD  build directory (default: <repo>/build-fuzz)
#   FUZZ_JOBS   harnesses run at once (default 1)
#   FUZZ_FRESH  1: start each corpus from the seeds only, dropping what
#               earlier runs found (default: keep and grow it)
#   FUZZ_ARGS   extra libFuzzer flags, e.g. "-max_len=8192 -dict=..."
#
# Nothing is written to the repository: the working corpus of harness H is
# $FUZZ_BUILD/corpus-H (seeds from tests/fuzz/corpus/H copied in; the
# keywords of tests/fuzz/dict/H.dict, when there is one, given as -dict), and each
# run's logs and artifacts go to $FUZZ_BUILD/fuzz-runs/<time>/H/.
# Prints per harness: executions, exec/s, coverage (cov: and ft: from
# libFuzzer's last status line), new corpus units, and the crash, leak,
# timeout and OOM artifacts found. Exits 1 if any artifact appeared, 2 on a
# usage or build error.
set -u

ALL="fuzz_request fuzz_hmm_model fuzz_safetensors fuzz_st_index fuzz_mamba_config
fuzz_tokenizer_json fuzz_state_blob fuzz_hmm_stream_blob fuzz_tok_encode fuzz_config"

usage() {
    echo "usage: $0 SECONDS [HARNESS...]  (harnesses: $(echo $ALL))" >&2
    exit 2
}

[ $# -ge 1 ] || usage
SECONDS_EACH=$1
shift
case $SECONDS_EACH in '' | *[!0-9]*) usage ;; esac
HARNESSES=${*:-$ALL}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
JOBS=${FUZZ_JOBS:-1}
SEEDS=$ROOT/tests/fuzz/corpus
DICTS=$ROOT/tests/fuzz/dict

for h in $HARNESSES; do
    case " $(echo $ALL) " in *" $h "*) ;; *) echo "unknown harness $h" >&2; usage ;; esac
done

# ----------------------------------------------------------------- build
if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup "$BUILD" "$ROOT" -Dfuzz=true -Dtests=disabled -Db_lundef=false \
        -Dbuildtype=debugoptimized >"$BUILD.setup.log" 2>&1 ||
        { cat "$BUILD.setup.log" >&2; echo "meson setup failed" >&2; exit 2; }
    rm -f "$BUILD.setup.log"
fi
targets=""
for h in $HARNESSES; do targets="$targets tests/fuzz/$h"; done
# shellcheck disable=SC2086
ninja -C "$BUILD" $targets >/dev/null || { echo "build failed" >&2; exit 2; }

# ------------------------------------------------------------------- run
RUNS=$BUILD/fuzz-runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUNS"

run_one() {
    local h=$1 out=$RUNS/$1 corpus=$BUILD/corpus-$1
    mkdir -p "$out"
    [ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$corpus"
    mkdir -p "$corpus"
    cp -n "$SEEDS/$h"/* "$corpus"/ 2>/dev/null
    local dict=""
    [ -f "$DICTS/$h.dict" ] && dict="-dict=$DICTS/$h.dict"
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: an input
    # that needs more than 2 GB is an out-of-memory finding.
    # shellcheck disable=SC2086
    (cd "$out" && "$BUILD/tests/fuzz/$h" "$corpus" -max_total_time="$SECONDS_EACH" \
        -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/" \
        $dict ${FUZZ_ARGS:-} </dev/null >"$out/log" 2>&1)
    echo $? >"$out/rc"
}

running=0
for h in $HARNESSES; do
    run_one "$h" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

# --------------------------------------------------------------- report
status=0
printf '%-20s %12s %8s %6s %7s %6s  %s\n' harness executions exec/s cov ft new findings
for h in $HARNESSES; do
    out=$RUNS/$h
    log=$out/log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    if [ -z "$execs" ]; then execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p'); fi
    arts=$(cd "$out" && ls crash-* leak-* timeout-* oom-* 2>/dev/null | tr '\n' ' ')
    rc=$(cat "$out/rc" 2>/dev/null || echo '?')
    findings=${arts:-none}
    if [ -n "$arts" ] || [ "$rc" != 0 ]; then
        status=1
        [ -z "$arts" ] && findings="exit $rc (see log)"
    fi
    printf '%-20s %12s %8s %6s %7s %6s  %s\n' "$h" "${execs:-?}" "${speed:-?}" "${cov:-?}" \
        "${ft:-?}" "${new:-?}" "$findings"
done
echo "logs and artifacts: $RUNS"
[ $status -eq 0 ] || echo "FINDINGS: reproduce with $BUILD/tests/fuzz/HARNESS ARTIFACT" >&2
exit $status
