#!/usr/bin/env bash
# test-cluster.sh: three hmmba replicas behind HAProxy with the shipped
# deploy/haproxy.cfg, and the session-affinity and failover story of
# deploy/README.md checked end to end, on loopback:
#
#   1. 30 sessions stream concurrently through $LBN (SSE, X-Session-Id),
#      6 turns each; after every turn each session is held by exactly one
#      replica (asked directly: GET /sessions on each), always the same one,
#      with the right token count; every stream equals a reference replay of
#      the same requests on a separate instance; a session named only in the
#      JSON body is routed like one in the header. States are exported through
#      HAProxy (GET /sessions/{id}/state) after turns 1, 3 and 5.
#   2. One replica is SIGKILLed. HAProxy marks it down; the sessions of the
#      other replicas go on unaffected (same replica, same tokens as the
#      reference); those of the dead one answer 404 session_not_found, are
#      restored with PUT /sessions/{id}/state through $LBN (so they land
#      where they are routed now), and then continue exactly as the
#      reference: same sampled tokens, same logits from /decode.
#   3. A replica gets SIGTERM with a stream in flight through $LBN: the
#      stream completes, the process exits 0. In flight by construction: the
#      client stops reading after the first token (curl writes into a FIFO
#      the script does not read from until after the signal), and the
#      answer (about 18 MB) is far larger than the socket buffers between
#      the replica and the client, so the replica cannot have sent it all.
#   Between 1 and 2, a real Prometheus server (Debian's prometheus) scrapes
#   the three replicas' /metrics, and its HTTP API must give the number of
#   /generate requests that phase 1 made, summed over them.
#
#   deploy/test-cluster.sh        (from the repository root)
#   deploy/test-cluster.sh store  sessions in Redis, plain round-robin, replicas
#                                 SIGKILLed and restarted (test-cluster-store.sh)
#
# HMMBA_LB=nginx runs the same checks through nginx with deploy/nginx.conf
# (its ports rewritten; nginx checks health passively, so the two "marked
# DOWN" checks only apply to HAProxy). Builds into $HMMBA_BUILD (default
# build/) if needed; HMMBA_HAPROXY_CFG tries another HAProxy config (same
# environment variables). Installs haproxy (or nginx), curl and jq with
# apt-get when missing, and prometheus. Prints each check and ends with
# "test-cluster: N passed, M failed"; exits non-zero on any failure. Cleans
# up (processes, temporary directory) however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
# "store": the scenario without affinity, sessions shared through Redis
# (deploy/test-cluster-store.sh, its own file: its own processes and checks).
[ "${1:-}" = store ] && exec deploy/test-cluster-store.sh

BUILD=${HMMBA_BUILD:-build}
HAPROXY_CFG=${HMMBA_HAPROXY_CFG:-deploy/haproxy.cfg} # another config to try
LB_KIND=${HMMBA_LB:-haproxy} # or nginx
case $LB_KIND in
haproxy) LBN=HAProxy ;;
nginx) LBN=nginx ;;
*) echo "HMMBA_LB: haproxy or nginx" >&2 && exit 2 ;;
esac
NSESS=30          # concurrent sessions
TURNS=6           # the first request and 5 continuations
GEN_TOKENS=8      # tokens generated per turn
DRAIN_TOKENS=20000 # the stream in flight at SIGTERM: ~900 bytes per event (logprobs 20)
T0=$SECONDS
TMP=$(mktemp -d /tmp/hmmba-cluster.XXXXXX)
declare -a RPID RPORT # replicas 1..3, and 4 = the reference instance
LB_PID=""
PROM_PID=""

# ===== output and clean-up =====

. deploy/cluster-lib.sh # ok bad check die note, cluster_*, free_port, wait_for

cleanup() {
    local rc=$?
    set +e
    trap '' PIPE # a closed stdout must not stop the clean-up
    local p
    # nginx's master takes its workers with it on SIGTERM (SIGKILL would
    # leave them behind).
    [ -n "$LB_PID" ] && kill -TERM "$LB_PID" 2>/dev/null && sleep 0.2
    [ -n "$PROM_PID" ] && kill -TERM "$PROM_PID" 2>/dev/null
    for p in "${RPID[@]}" $LB_PID $PROM_PID; do
        [ -n "$p" ] && kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done
    for p in "${RPID[@]}" $LB_PID $PROM_PID; do
        [ -n "$p" ] && wait "$p" 2>/dev/null
    done
    if [ $rc -ne 0 ] && [ -d "$TMP" ]; then
        for p in "$TMP"/r[0-9].err "$TMP"/lb.log "$TMP"/prom.log; do
            [ -f "$p" ] && { echo "--- $(basename "$p") (last lines)"; tail -5 "$p"; }
        done
    fi
    rm -rf "$TMP"
    echo "test-cluster: took $((SECONDS - T0)) s"
    echo "test-cluster: $PASS passed, $FAILS failed"
    [ $FAILS -eq 0 ] || rc=1
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ===== set-up: tools, build, models =====

cluster_tools "$LB_KIND:$LB_KIND" curl:curl jq:jq ss:iproute2 prometheus:prometheus
cluster_build

# "lm": the tiny Mamba fixture (vocabulary 256, a real spread of
# probabilities) with a byte-level tokenizer and no eos, so that every
# generation runs exactly GEN_TOKENS. "slow": a larger random model for the
# stream that must still be running when SIGTERM comes.
cluster_lm "$TMP/lm"
"$BUILD/tests/tools/mkmodel" "$TMP/slow" 256 4 7 >/dev/null

# ===== processes =====

start_replica() { # start_replica N: on a free port (the server picks: --listen :0)
    local n=$1
    # replica.json: limits.max_tokens for the drained stream (scenario 3);
    # --stream-buffer holds all of it while its client does not read
    "$HMMBA" --config "$TMP/replica.json" --model "lm=$TMP/lm" --model "slow=$TMP/slow" \
        --listen 127.0.0.1:0 --workers 2 --drain-ms 180000 --stream-buffer $((64 << 20)) \
        >"$TMP/r$n.out" 2>"$TMP/r$n.err" &
    RPID[n]=$!
}

wait_replica() {
    local n=$1
    for _ in $(seq 1 100); do
        RPORT[n]=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$TMP/r$n.out")
        [ -n "${RPORT[n]}" ] && return 0
        kill -0 "${RPID[n]}" 2>/dev/null || break
        sleep 0.1
    done
    cat "$TMP/r$n.err"
    die "replica $n did not start"
}

echo "{\"limits\": {\"max_tokens\": $DRAIN_TOKENS}}" >"$TMP/replica.json"
for n in 1 2 3 4; do start_replica "$n"; done
for n in 1 2 3 4; do wait_replica "$n"; done
ok "3 replicas and a reference instance listening on ports ${RPORT[1]} ${RPORT[2]} ${RPORT[3]} (ref ${RPORT[4]})"

# The balancer on free ports. A port seen free can be taken before the
# balancer binds it (another process on the machine): then the balancer
# exits, and it is started again on other ports.
start_lb() {
    LB_PORT=$(free_port)
    STATS_PORT=$(free_port)
    while [ "$STATS_PORT" = "$LB_PORT" ]; do STATS_PORT=$(free_port); done
    LB=http://127.0.0.1:$LB_PORT
    if [ "$LB_KIND" = haproxy ]; then
        HMMBA_SERVER1=127.0.0.1:${RPORT[1]} HMMBA_SERVER2=127.0.0.1:${RPORT[2]} \
            HMMBA_SERVER3=127.0.0.1:${RPORT[3]} HAPROXY_BIND=127.0.0.1:$LB_PORT \
            HAPROXY_STATS_BIND=127.0.0.1:$STATS_PORT \
            haproxy -db -f "$HAPROXY_CFG" >"$TMP/lb.log" 2>&1 &
        LB_PID=$!
    else
        # The shipped config with this run's ports; nginx's workers (nobody)
        # need to reach its prefix directory.
        mkdir -p "$TMP/nginx"
        chmod 755 "$TMP" "$TMP/nginx"
        sed -e "s/server 127.0.0.1:8081 /server 127.0.0.1:${RPORT[1]} /" \
            -e "s/server 127.0.0.1:8082 /server 127.0.0.1:${RPORT[2]} /" \
            -e "s/server 127.0.0.1:8083 /server 127.0.0.1:${RPORT[3]} /" \
            -e "s/listen 8080;/listen 127.0.0.1:$LB_PORT;/" deploy/nginx.conf >"$TMP/nginx/nginx.conf"
        nginx -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' >"$TMP/lb.log" 2>&1 &
        LB_PID=$!
    fi
    # Up when it listens; down when it exited (a port was taken).
    while kill -0 "$LB_PID" 2>/dev/null; do
        ss -Htln "sport = :$LB_PORT" | grep -q . && return 0
        sleep 0.1
    done
    wait "$LB_PID" 2>/dev/null || true
    LB_PID=""
    return 1
}
REF=http://127.0.0.1:${RPORT[4]}
for try in 1 2 3 4 5; do
    start_lb && break
    note "$LBN exited before listening (try $try; a port was taken?): $(tail -n 2 "$TMP/lb.log")"
    [ "$try" = 5 ] && die "$LBN did not start"
done

server_status() { # server_status rN: UP / DOWN / ... as HAProxy's stats say
    if [ "$LB_KIND" = nginx ]; then # no such page: UP when nginx answers at all
        curl -fs -o /dev/null "$LB/health" && echo UP || echo "no answer"
        return
    fi
    curl -s "http://127.0.0.1:$STATS_PORT/stats;csv" |
        awk -F, -v s="$1" '$1 == "hmmba" && $2 == s { print $18 }'
}

status_is() { [[ "$(server_status "$1")" == "$2"* ]]; }

# Waits on state, not on time: HANG_S (cluster-lib.sh) is only a guard
# against a balancer that never gets there (a slow machine takes longer,
# never fails here).
wait_status() { # wait_status rN STATUS: until the balancer says so, or a hang
    [ "$LB_KIND" = nginx ] && [ "$2" = DOWN ] && return 0 # passive checks only
    wait_for "$LBN sees $1 $2" status_is "$1" "$2"
}

for n in 1 2 3; do
    wait_status "r$n" UP || die "$LBN does not see replica r$n UP ($(server_status "r$n"))"
done
if [ "$LB_KIND" = haproxy ]; then
    ok "HAProxy ($HAPROXY_CFG) on port $LB_PORT sees r1 r2 r3 UP (health checks on /ready)"
else
    ok "nginx (deploy/nginx.conf, ports rewritten) answers on port $LB_PORT"
fi

# The replica (1..3) that answered, from the X-Hmmba-Replica header in
# header file $1: HAProxy's server name rN, or nginx's upstream address(es),
# the last one being the replica that answered.
via_replica() {
    local v n
    v=$(tr -d '\r' <"$1" | sed -n 's/^[Xx]-[Hh]mmba-[Rr]eplica: *//p' | awk -F', ' '{ print $NF }')
    case $v in
    r[0-9]) echo "${v#r}" ;;
    *:*) for n in 1 2 3; do [ "$v" = "127.0.0.1:${RPORT[n]}" ] && echo "$n"; done ;;
    esac
    return 0
}

# ===== sessions: requests =====

sid() { printf 'chat-%02d' "$1"; }
prompt() { printf 'Session %d, turn %d: tell me more.' "$1" "$2"; }
seed() { echo $((1000 * $1 + $2)); }

# gen_body K T STREAM
gen_body() {
    jq -cn --arg p "$(prompt "$1" "$2")" --argjson seed "$(seed "$1" "$2")" \
        --argjson n $GEN_TOKENS --argjson stream "$3" \
        '{model: "lm", prompt: $p, max_tokens: $n, temperature: 1.0, seed: $seed, stream: $stream}'
}

# Start turn T of session K through $LBN (streamed, SSE) in the background;
# files: $TMP/c.K.T.{out,hdr,code}.
cluster_turn() {
    local k=$1 t=$2 f=$TMP/c.$1.$2
    curl -sS -N --max-time 60 -H "X-Session-Id: $(sid "$k")" -H 'Content-Type: application/json' \
        -D "$f.hdr" -o "$f.out" -w '%{http_code}' --data-binary "$(gen_body "$k" "$t" true)" \
        "$LB/generate" >"$f.code" 2>"$f.err" &
    JOBS+=($!)
}

# The same turn on the reference instance, not streamed: $TMP/r.K.T.out.
ref_turn() {
    local k=$1 t=$2 f=$TMP/r.$1.$2
    curl -sS --max-time 60 -H "X-Session-Id: $(sid "$k")" -H 'Content-Type: application/json' \
        -o "$f.out" -w '%{http_code}' --data-binary "$(gen_body "$k" "$t" false)" \
        "$REF/generate" >"$f.code" 2>"$f.err" &
    JOBS+=($!)
}

wait_jobs() {
    local j
    for j in "${JOBS[@]}"; do wait "$j" || true; done
    JOBS=()
}

# The generated ids of a streamed turn, as a JSON array; "" if the stream is
# incomplete (no final event with usage, no [DONE]).
stream_tokens() {
    local f=$1
    grep -q '^data: \[DONE\]' "$f" || return 0
    sed -n 's/^data: \({.*}\)$/\1/p' "$f" | jq -cs \
        'if (map(select(.finish_reason)) | length) == 1
         then [.[] | select(.token != null) | .token] else empty end'
}

# Which replica holds each session, asked of every replica directly:
# lines "ID REPLICA TOKENS" into $1.
placement() {
    local n
    : >"$1"
    for n in 1 2 3; do
        kill -0 "${RPID[n]}" 2>/dev/null || continue
        curl -fsS "http://127.0.0.1:${RPORT[n]}/sessions" |
            jq -r --arg n "$n" '.sessions[] | "\(.id) \($n) \(.tokens)"' >>"$1"
    done
}

declare -A HOME_OF EXPECT # session -> replica number; tokens it should hold
JOBS=()

# ===== 1: 30 concurrent streaming sessions, 6 turns =====

check_turn() { # check_turn T: the streams, placement and token counts of turn T
    local t=$1 k bad_code=0 bad_stream=0 bad_ref=0 bad_hdr=0
    for k in $(seq 1 $NSESS); do
        local f=$TMP/c.$k.$t toks ref
        [ "$(cat "$f.code")" = 200 ] || { bad_code=$((bad_code + 1)); continue; }
        toks=$(stream_tokens "$f.out")
        ref=$(jq -c '.tokens' "$TMP/r.$k.$t.out" 2>/dev/null || true)
        if [ -z "$toks" ] || [ "$(jq length <<<"$toks")" != $GEN_TOKENS ]; then
            bad_stream=$((bad_stream + 1))
        elif [ "$toks" != "$ref" ]; then
            bad_ref=$((bad_ref + 1))
            [ $bad_ref -le 2 ] && note "$(sid "$k") turn $t: stream $toks, reference $ref"
        fi
        EXPECT[$k]=$((${EXPECT[$k]:-0} + $(prompt "$k" "$t" | wc -c) + GEN_TOKENS))
        # The balancer says which replica answered (X-Hmmba-Replica).
        local via
        via=$(via_replica "$f.hdr")
        [ -n "${HOME_OF[$k]:-}" ] && [ "$via" != "${HOME_OF[$k]}" ] && bad_hdr=$((bad_hdr + 1))
    done
    check "turn $t: $NSESS streams through $LBN answered 200 ($bad_code not)" [ $bad_code = 0 ]
    check "turn $t: every stream complete with $GEN_TOKENS tokens, final event, [DONE] ($bad_stream not)" \
        [ $bad_stream = 0 ]
    check "turn $t: every stream's tokens equal the reference replay's ($bad_ref differ)" [ $bad_ref = 0 ]
    placement "$TMP/place.$t"
    local nowhere=0 dup=0 moved=0 count=0
    for k in $(seq 1 $NSESS); do
        local lines home tokens
        lines=$(awk -v id="$(sid "$k")" '$1 == id' "$TMP/place.$t")
        case $(grep -c . <<<"$lines") in
        0) nowhere=$((nowhere + 1)); continue ;;
        1) ;;
        *) dup=$((dup + 1)); continue ;;
        esac
        read -r _ home tokens <<<"$lines"
        if [ -z "${HOME_OF[$k]:-}" ]; then HOME_OF[$k]=$home
        elif [ "${HOME_OF[$k]}" != "$home" ]; then moved=$((moved + 1)); fi
        [ "$tokens" = "${EXPECT[$k]}" ] || count=$((count + 1))
    done
    check "turn $t: each session held by exactly one replica ($nowhere on none, $dup on several)" \
        [ $((nowhere + dup)) = 0 ]
    if [ "$t" = 0 ]; then
        local per
        per=$(for k in $(seq 1 $NSESS); do echo "${HOME_OF[$k]}"; done | sort | uniq -c |
            awk '{ printf "r%s: %s  ", $2, $1 }')
        # The checks after a kill loop over the survivors: every replica
        # must hold some session, or they would check nothing.
        check "turn 0: sessions spread over all 3 replicas: $per" \
            [ "$(for k in $(seq 1 $NSESS); do echo "${HOME_OF[$k]}"; done | sort -u | grep -c .)" = 3 ]
    else
        check "turn $t: every session still on its first replica ($moved moved)" [ $moved = 0 ]
        check "turn $t: $LBN's X-Hmmba-Replica header names that replica ($bad_hdr not)" [ $bad_hdr = 0 ]
    fi
    check "turn $t: every session holds prompt + generated tokens so far ($count wrong)" [ $count = 0 ]
}

# Export every session's state through $LBN. No X-Session-Id header: the
# shipped config routes /sessions/{id}/... by the {id} in the path.
export_states() {
    local t=$1 k fails=0
    for k in $(seq 1 $NSESS); do
        local code
        code=$(curl -sS -o "$TMP/state.$k.new" -w '%{http_code}' "$LB/sessions/$(sid "$k")/state")
        if [ "$code" = 200 ] && [ -s "$TMP/state.$k.new" ]; then
            mv "$TMP/state.$k.new" "$TMP/state.$k"
            echo "${EXPECT[$k]}" >"$TMP/state.$k.tokens"
        else
            fails=$((fails + 1))
        fi
    done
    check "after turn $t: all $NSESS states exported through $LBN (GET /sessions/{id}/state, routed by path; $fails failed)" \
        [ $fails = 0 ]
}

# HAProxy also routes by the body's "session" field when there is no header.
# The probe is a /decode that the server refuses (no tokens) before it
# touches the session; only the replica that answers matters.
body_routing() {
    local k wrong=0
    for k in $(seq 1 $NSESS); do
        curl -sS -o /dev/null -D "$TMP/body.hdr" -H 'Content-Type: application/json' \
            -d "{\"model\": \"lm\", \"session\": \"$(sid "$k")\", \"tokens\": []}" "$LB/decode"
        [ "$(via_replica "$TMP/body.hdr")" = "${HOME_OF[$k]}" ] || wrong=$((wrong + 1))
    done
    check "a request naming its session only in the JSON body reaches the session's replica ($wrong not)" \
        [ $wrong = 0 ]
}

echo "== $NSESS concurrent streaming sessions, $TURNS turns each ($((SECONDS - T0)) s)"
for t in $(seq 0 $((TURNS - 1))); do
    for k in $(seq 1 $NSESS); do
        cluster_turn "$k" "$t"
        ref_turn "$k" "$t"
    done
    wait_jobs
    check_turn "$t"
    note "turn $t done at $((SECONDS - T0)) s"
    [ "$t" = 0 ] && [ "$LB_KIND" = haproxy ] && body_routing
    case $t in 1 | 3 | 5) export_states "$t" ;; esac
done
note "state blob: $(stat -c %s "$TMP/state.1") bytes per session"

# ===== Prometheus scrapes the replicas =====

# Phase 1 sent NSESS x TURNS generations through the balancer, all answered
# 200 by replicas 1..3 (the reference instance is not scraped). A real
# Prometheus server scrapes the three, and its query API must sum to that.
start_prometheus() {
    PROM_PORT=$(free_port)
    mkdir -p "$TMP/prom"
    cat >"$TMP/prom/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: hmmba
    static_configs:
      - targets: ['127.0.0.1:${RPORT[1]}', '127.0.0.1:${RPORT[2]}', '127.0.0.1:${RPORT[3]}']
YML
    prometheus --config.file="$TMP/prom/prometheus.yml" --storage.tsdb.path="$TMP/prom/data" \
        --web.listen-address="127.0.0.1:$PROM_PORT" >"$TMP/prom.log" 2>&1 &
    PROM_PID=$!
    while kill -0 "$PROM_PID" 2>/dev/null; do
        curl -fs -o /dev/null "http://127.0.0.1:$PROM_PORT/-/ready" && return 0
        sleep 0.1
    done
    wait "$PROM_PID" 2>/dev/null || true
    PROM_PID=""
    return 1
}
prom_query() { # prom_query EXPR: the first result's value, or "" (none yet)
    curl -fsS -G "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
        jq -r 'if .status == "success" then (.data.result[0].value[1] // "") else "" end'
}
for try in 1 2 3 4 5; do
    start_prometheus && break
    note "prometheus exited before it was ready (try $try): $(tail -n 2 "$TMP/prom.log")"
    [ "$try" = 5 ] && die "prometheus did not start"
done
want=$((NSESS * TURNS))
query='sum(hmmba_requests_total{job="hmmba",route="/generate",status="200"})'
got="" up=""
prom_counted() {
    up=$(prom_query 'sum(up{job="hmmba"})')
    got=$(prom_query "$query")
    [ "$up" = 3 ] && [ "$got" = "$want" ]
}
wait_for "Prometheus giving $want" prom_counted || true
check "Prometheus (port $PROM_PORT) scrapes the 3 replicas (up $up) and its API gives $query = $got (want $want)" \
    [ "$up" = 3 -a "$got" = "$want" ]
kill -TERM "$PROM_PID" 2>/dev/null
wait "$PROM_PID" 2>/dev/null || true
PROM_PID=""

# ===== 2: a replica dies =====

# The victim: the replica holding the most sessions.
VICTIM=$(for k in $(seq 1 $NSESS); do echo "${HOME_OF[$k]}"; done | sort | uniq -c | sort -rn |
    awk 'NR == 1 { print $2 }')
DOOMED=() SURVIVORS=()
for k in $(seq 1 $NSESS); do
    if [ "${HOME_OF[$k]}" = "$VICTIM" ]; then DOOMED+=("$k"); else SURVIVORS+=("$k"); fi
done
check "sessions both on the victim (${#DOOMED[@]}) and elsewhere (${#SURVIVORS[@]})" \
    [ ${#DOOMED[@]} -gt 0 -a ${#SURVIVORS[@]} -gt 0 ]
echo "== SIGKILL replica r$VICTIM (pid ${RPID[VICTIM]}, ${#DOOMED[@]} sessions) ($((SECONDS - T0)) s)"
disown "${RPID[VICTIM]}" # no job-control notice for it
kill -KILL "${RPID[VICTIM]}"
RPID[VICTIM]=""
T_KILL=$SECONDS
if [ "$LB_KIND" = haproxy ]; then
    check "HAProxy marks r$VICTIM DOWN" wait_status "r$VICTIM" DOWN
    note "marked down after $((SECONDS - T_KILL)) s"
fi

T=$TURNS # the turn after the failure

# Continue the survivors (turn T), on the cluster and the reference.
for k in "${SURVIVORS[@]}"; do
    cluster_turn "$k" "$T"
    ref_turn "$k" "$T"
done
wait_jobs
fails=0 moved=0 count=0
placement "$TMP/place.after"
for k in "${SURVIVORS[@]}"; do
    toks=$(stream_tokens "$TMP/c.$k.$T.out")
    [ "$(cat "$TMP/c.$k.$T.code")" = 200 ] && [ -n "$toks" ] &&
        [ "$toks" = "$(jq -c .tokens "$TMP/r.$k.$T.out")" ] || fails=$((fails + 1))
    EXPECT[$k]=$((${EXPECT[$k]} + $(prompt "$k" "$T" | wc -c) + GEN_TOKENS))
    home="" tokens=""
    read -r _ home tokens < <(awk -v id="$(sid "$k")" '$1 == id' "$TMP/place.after") || true
    [ "${home:-}" = "${HOME_OF[$k]}" ] || moved=$((moved + 1))
    [ "${tokens:-}" = "${EXPECT[$k]}" ] || count=$((count + 1))
done
check "survivors: ${#SURVIVORS[@]} sessions continue, tokens equal to the reference ($fails not)" [ $fails = 0 ]
check "survivors: still on their replicas ($moved moved) with the right token counts ($count wrong)" \
    [ $((moved + count)) = 0 ]

# The dead replica's sessions are gone: 404 session_not_found through $LBN,
# both when asked for and when a generation insists on continuing one
# (X-Session-Mode: continue), which creates nothing.
nf=0
for k in "${DOOMED[@]}"; do
    body=$(curl -sS -H "X-Session-Id: $(sid "$k")" -w ' %{http_code}' "$LB/sessions/$(sid "$k")")
    [[ "$body" == *'"session_not_found"'*' 404' ]] || nf=$((nf + 1))
    body=$(curl -sS -H "X-Session-Id: $(sid "$k")" -H 'X-Session-Mode: continue' -w ' %{http_code}' \
        -d '{"model": "lm", "prompt": "more", "max_tokens": 1}' "$LB/generate")
    [[ "$body" == *'"session_not_found"'*' 404' ]] || nf=$((nf + 1))
done
check "r$VICTIM's ${#DOOMED[@]} sessions answer 404 session_not_found through $LBN, to GET and to a continuing /generate ($nf not)" [ $nf = 0 ]

# Restore them from the last export: PUT through $LBN, routed by the
# X-Session-Id header to where the session now belongs.
fails=0 wrong=0
declare -A NEWHOME
for k in "${DOOMED[@]}"; do
    f=$TMP/put.$k
    code=$(curl -sS -X PUT -H "X-Session-Id: $(sid "$k")" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$TMP/state.$k" -D "$f.hdr" -o "$f.out" -w '%{http_code}' \
        "$LB/sessions/$(sid "$k")/state")
    [ "$code" = 201 ] || { fails=$((fails + 1)); note "PUT $(sid "$k"): $code $(cat "$f.out")"; continue; }
    [ "$(jq .tokens "$f.out")" = "$(cat "$TMP/state.$k.tokens")" ] || wrong=$((wrong + 1))
    NEWHOME[$k]=$(via_replica "$f.hdr")
done
check "restored ${#DOOMED[@]} sessions with PUT /sessions/{id}/state through $LBN: 201 ($fails not)" [ $fails = 0 ]
check "restored sessions hold the exported token counts ($wrong wrong)" [ $wrong = 0 ]
note "new homes: $(for k in "${DOOMED[@]}"; do echo "r${NEWHOME[$k]:-?}"; done | sort | uniq -c | tr '\n' ' ')"

# A restored session is whole (state, last logits, recent tokens), and a
# request that insists on continuing finds it: session_created is false.
k=${DOOMED[0]}
code=$(curl -sS -o "$TMP/empty.out" -w '%{http_code}' -H "X-Session-Id: $(sid "$k")" \
    -H 'X-Session-Mode: continue' -d '{"model": "lm", "prompt": "", "max_tokens": 0}' "$LB/generate")
check "a restored session continues (session_mode continue, empty prompt): $code, created $(jq -r .session_created "$TMP/empty.out" 2>/dev/null)" \
    [ "$code" = 200 ] && [ "$(jq -r .session_created "$TMP/empty.out")" = false ]

# Continue them (turn T) and compare with the reference, which never failed.
for k in "${DOOMED[@]}"; do
    cluster_turn "$k" "$T"
    ref_turn "$k" "$T"
done
wait_jobs
fails=0 moved=0 count=0
placement "$TMP/place.restored"
for k in "${DOOMED[@]}"; do
    toks=$(stream_tokens "$TMP/c.$k.$T.out")
    ref=$(jq -c .tokens "$TMP/r.$k.$T.out")
    if [ "$(cat "$TMP/c.$k.$T.code")" != 200 ] || [ "$toks" != "$ref" ]; then
        fails=$((fails + 1))
        note "$(sid "$k"): restored $toks, reference $ref"
    fi
    EXPECT[$k]=$((${EXPECT[$k]} + $(prompt "$k" "$T" | wc -c) + GEN_TOKENS))
    home="" tokens=""
    read -r _ home tokens < <(awk -v id="$(sid "$k")" '$1 == id' "$TMP/place.restored") || true
    [ "${home:-}" = "${NEWHOME[$k]:-}" ] || moved=$((moved + 1))
    [ "${tokens:-}" = "${EXPECT[$k]}" ] || count=$((count + 1))
done
check "restored sessions continue with the same sampled tokens as the reference ($fails differ)" [ $fails = 0 ]
check "restored sessions stay where they were restored ($moved moved), right token counts ($count wrong)" \
    [ $((moved + count)) = 0 ]

# Logits: every session (restored or not) decodes the same probe on the
# cluster and on the reference; all V logits at every position must agree.
PROBE='[72,101,108,108,111,44,32,119,111,114,108,100]'
for k in $(seq 1 $NSESS); do
    for side in c r; do
        url=$LB
        [ $side = r ] && url=$REF
        curl -sS -H "X-Session-Id: $(sid "$k")" -o "$TMP/d.$side.$k" \
            -d "{\"model\": \"lm\", \"tokens\": $PROBE, \"logits\": true}" "$url/decode" &
        JOBS+=($!)
    done
done
wait_jobs
worst=0 fails=0
for k in $(seq 1 $NSESS); do
    d=$(jq -n --slurpfile a "$TMP/d.c.$k" --slurpfile b "$TMP/d.r.$k" \
        'if ($a[0].logits | length) == 12 and ($b[0].logits | length) == 12
         then [range(12) as $i | range(256) as $v
               | ($a[0].logits[$i][$v] - $b[0].logits[$i][$v]) | fabs] | max
         else -1 end' 2>/dev/null || echo -1)
    if [ "$d" = -1 ] || awk -v d="$d" 'BEGIN { exit !(d > 1e-6) }'; then fails=$((fails + 1)); fi
    worst=$(awk -v a="$worst" -v b="$d" 'BEGIN { print (b > a ? b : a) }')
done
check "/decode with logits on all $NSESS sessions equals the reference, 12 x 256 logits each (max |diff| $worst; $fails differ)" \
    [ $fails = 0 ]

# ===== 3: SIGTERM with a stream in flight =====

DRAINER=""
for n in 1 2 3; do [ "$n" != "$VICTIM" ] && { DRAINER=$n; break; }; done
# A session id that the balancer routes to the drainer (a GET that creates nothing).
DSID=""
for i in $(seq 1 200); do
    curl -sS -o /dev/null -D "$TMP/probe.hdr" -H "X-Session-Id: drain-$i" "$LB/sessions/drain-$i"
    via=$(via_replica "$TMP/probe.hdr")
    [ "$via" = "$DRAINER" ] && { DSID=drain-$i; break; }
done
[ -n "$DSID" ] || die "no session id routed to r$DRAINER"
echo "== SIGTERM to r$DRAINER (pid ${RPID[DRAINER]}) with a stream of $DRAIN_TOKENS tokens in flight ($DSID) ($((SECONDS - T0)) s)"
# The client: curl writes the stream into a FIFO; the script reads the
# first token event from it, then nothing until after the signal, so curl
# blocks, stops reading its socket, and the replica's answer stays unsent.
mkfifo "$TMP/drain.fifo"
exec 3<>"$TMP/drain.fifo" # read-write: opening does not wait for curl, and a writer
# stays until curl has opened its end
curl -sS -N --max-time $((HANG_S * 2)) -H "X-Session-Id: $DSID" -o "$TMP/drain.fifo" \
    -w '%{http_code}' -d "{\"model\": \"slow\", \"prompt\": \"drain\", \"max_tokens\": $DRAIN_TOKENS, \"stream\": true, \"logprobs\": 20}" \
    "$LB/generate" >"$TMP/drain.code" 2>"$TMP/drain.err" &
DRAIN_CURL=$!
# The first token event, however long it takes (HANG_S guards a hang).
: >"$TMP/drain.out"
while IFS= read -r -t "$HANG_S" line <&3; do
    printf '%s\n' "$line" >>"$TMP/drain.out"
    case $line in 'data: {"token"'*) break ;; esac
done
check "the stream's first events arrive through $LBN before it ends (no buffering)" \
    grep -q '^data: {"token"' "$TMP/drain.out"
# In flight when the signal is sent: the replica logs a request when its
# answer is all sent; the drained stream's line is not there yet.
answered_at_term=$(grep -c 'POST /generate' "$TMP/r$DRAINER.err" || true)
kill -TERM "${RPID[DRAINER]}"
T_TERM=$SECONDS
# /ready turns 503 (or the port closes) once the signal is handled: poll for
# that state while the stream still runs, rather than sleep and hope.
ready=200
for ((i = 0; i < HANG_S * 20; i++)); do
    ready=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:${RPORT[DRAINER]}/ready" || true)
    [ "$ready" != 200 ] && break
    sleep 0.05
done
check "the draining replica is not ready: /ready answers '$ready' (503, or 000: refused)" \
    [ "$ready" = 503 -o "$ready" = 000 ]
if [ "$LB_KIND" = haproxy ]; then
    check "HAProxy takes the draining replica out (DOWN)" wait_status "r$DRAINER" DOWN
fi
# Now read the rest (through a read-only end, so that curl's exit is its
# end of file): the replica finishes sending, then exits.
exec 4<"$TMP/drain.fifo" 3>&-
cat <&4 >>"$TMP/drain.out" &
DRAIN_CAT=$!
exec 4<&-
wait "$DRAIN_CURL" || true
wait "$DRAIN_CAT" || true
ntok=$(grep -c '^data: {"token"' "$TMP/drain.out" || true)
final=$(sed -n 's/^data: \({"finish_reason".*}\)$/\1/p' "$TMP/drain.out")
final=${final:-'{}'}
ndone=$(grep -c '^data: \[DONE\]' "$TMP/drain.out" || true)
check "the stream completed: $ntok token events, finish_reason $(jq -r .finish_reason <<<"$final"), usage $(jq -c .usage <<<"$final"), [DONE]" \
    [ "$(cat "$TMP/drain.code")" = 200 -a "$ntok" = $DRAIN_TOKENS -a \
    "$(jq -r '.usage.completion_tokens' <<<"$final")" = $DRAIN_TOKENS -a "$ndone" = 1 ]
rc=0
wait "${RPID[DRAINER]}" || rc=$?
RPID[DRAINER]=""
check "the replica exited with status $rc (want 0) $((SECONDS - T_TERM)) s after SIGTERM" [ $rc = 0 ]
answered_at_exit=$(grep -c 'POST /generate' "$TMP/r$DRAINER.err" || true)
check "the stream was in flight at SIGTERM: answered after it ($answered_at_term /generate answers logged before, $answered_at_exit at exit)" \
    [ "$answered_at_exit" = $((answered_at_term + 1)) ]
