# hmmba_server.sh: start and stop an hmmba server on loopback from a test
# or benchmark script (tests/bench/bench_http.sh, tests/load/run.sh).
# Source it; POSIX sh, so dash and bash alike, and safe under set -eu.
#
#   hmmba_start OUT LOG HMMBA [ARGS...]
#       Runs HMMBA ARGS in the background with stdout to the file OUT and
#       stderr to LOG (a file or /dev/null), waits up to 10 s for its
#       "listening on URL" line, and sets HMMBA_PID and HMMBA_URL (e.g.
#       http://127.0.0.1:34567). Returns 1, with a message and the end of
#       LOG on stderr, when the server exited or did not listen in time
#       (a server still running is stopped first).
#   hmmba_stop
#       Stops the server hmmba_start started (SIGTERM, then waits for it)
#       and clears HMMBA_PID; does nothing when none runs.

HMMBA_PID=""
HMMBA_URL=""

hmmba_start() {
    _hs_out=$1 _hs_log=$2
    shift 2
    : >"$_hs_out"
    "$@" >"$_hs_out" 2>"$_hs_log" &
    HMMBA_PID=$!
    HMMBA_URL=""
    for _ in $(seq 100); do
        HMMBA_URL=$(sed -n '/^listening on /{s///p;q;}' "$_hs_out")
        [ -n "$HMMBA_URL" ] && return 0
        kill -0 "$HMMBA_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "hmmba_start: $1 did not start listening; its stderr ends:" >&2
    tail -n 5 "$_hs_log" >&2 2>/dev/null || true
    hmmba_stop
    return 1
}

hmmba_stop() {
    if [ -n "$HMMBA_PID" ] && kill -0 "$HMMBA_PID" 2>/dev/null; then
        kill -TERM "$HMMBA_PID" 2>/dev/null || true
        wait "$HMMBA_PID" 2>/dev/null || true
    fi
    HMMBA_PID=""
}
