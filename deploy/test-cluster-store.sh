#!/usr/bin/env bash
# test-cluster-store.sh: sessions shared through Redis (--session-store),
# checked end to end on loopback: a redis-server started here, three hmmba
# replicas on it behind HAProxy with plain round-robin (deploy/haproxy-store.cfg,
# no affinity), and a reference instance without a store.
#
#   30 conversations of 6 turns each (sampled generations with a seed), the
#   30 turns of a round sent at once through HAProxy. Between rounds
#   replicas are SIGKILLed and started again (r1; r2; r3; r1 and r2 together),
#   each kill waited on until HAProxy marks the replica DOWN, each restart
#   until it is UP. Every turn's tokens equal the reference's (the same
#   requests on one instance), every turn after the first continues the
#   session (session_created false), every conversation visits more than one
#   replica, and at the end every session holds the reference's token count
#   and Redis holds all 30: no session lost.
#
#   deploy/test-cluster.sh store     (or this script; from the repository root)
#
# Builds into $HMMBA_BUILD (default build/) if needed; installs haproxy,
# redis-server, curl and jq with apt-get when missing. Ends with
# "test-cluster-store: N passed, M failed"; exits non-zero on any failure.
# Cleans up (processes, temporary directory) however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${HMMBA_BUILD:-build}
NSESS=30
TURNS=6
GEN_TOKENS=8
HANG_S=120 # a guard against a balancer that never gets there, not a timing
T0=$SECONDS
TMP=$(mktemp -d /tmp/hmmba-store-cluster.XXXXXX)
declare -a RPID RPORT # replicas 1..3, 4 = the reference
REDIS_PID=""
LB_PID=""

. deploy/cluster-lib.sh # ok bad check report die note, cluster_*, free_port, wait_for

finish() {
    local rc=$? p
    set +e
    for p in "${RPID[@]}" $LB_PID $REDIS_PID; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if [ $rc -ne 0 ] || [ $FAILS -ne 0 ]; then
        for p in "$TMP"/r[0-9].err "$TMP"/lb.log "$TMP"/redis.log; do
            [ -f "$p" ] && { echo "--- $(basename "$p") (last lines)"; tail -5 "$p"; }
        done
    fi
    rm -rf "$TMP"
    echo "test-cluster-store: took $((SECONDS - T0)) s"
    echo "test-cluster-store: $PASS passed, $FAILS failed"
    [ $FAILS -eq 0 ] || rc=1
    exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

# ===== set-up =====

cluster_tools haproxy:haproxy redis-server:redis-server curl:curl jq:jq ss:iproute2
cluster_build
cluster_lm "$TMP/lm"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP" --save '' --appendonly no \
    >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
wait_for "redis-server answering" sh -c "redis-cli -p $REDIS_PORT ping 2>/dev/null | grep -q PONG" ||
    die "redis-server did not start"
STORE=redis://127.0.0.1:$REDIS_PORT

start_replica() { # start_replica N [--session-store URL]: on RPORT[N], chosen once
    local n=$1
    shift
    [ -n "${RPORT[n]:-}" ] || RPORT[n]=$(free_port)
    "$HMMBA" --model "lm=$TMP/lm" --listen "127.0.0.1:${RPORT[n]}" --workers 2 --threads 1 "$@" \
        >>"$TMP/r$n.out" 2>>"$TMP/r$n.err" &
    RPID[n]=$!
}
healthy() { curl -fs -o /dev/null "http://127.0.0.1:$1/health"; }

for n in 1 2 3; do start_replica "$n" --session-store "$STORE"; done
start_replica 4
for n in 1 2 3 4; do
    wait_for "replica $n healthy" healthy "${RPORT[n]}" || die "replica $n did not start"
done
REF=http://127.0.0.1:${RPORT[4]}

LB_PORT=$(free_port)
STATS_PORT=$(free_port)
LB=http://127.0.0.1:$LB_PORT
HMMBA_SERVER1=127.0.0.1:${RPORT[1]} HMMBA_SERVER2=127.0.0.1:${RPORT[2]} \
    HMMBA_SERVER3=127.0.0.1:${RPORT[3]} HAPROXY_BIND=127.0.0.1:$LB_PORT \
    HAPROXY_STATS_BIND=127.0.0.1:$STATS_PORT \
    haproxy -db -f deploy/haproxy-store.cfg >"$TMP/lb.log" 2>&1 &
LB_PID=$!

lb_status() { # lb_status rN: UP, DOWN, ... from HAProxy's stats
    curl -s "http://127.0.0.1:$STATS_PORT/stats;csv" |
        awk -F, -v s="$1" '$1 == "hmmba" && $2 == s { print $18 }'
}
lb_sees() { [[ "$(lb_status "$1")" == "$2"* ]]; }
for n in 1 2 3; do wait_for "HAProxy sees r$n UP" lb_sees "r$n" UP || die "HAProxy: r$n not UP"; done
report "redis-server on $REDIS_PORT, replicas r1 r2 r3 on it behind HAProxy round-robin (port $LB_PORT), reference on ${RPORT[4]}" 0

# ===== conversations =====

sid() { printf 'conv-%02d' "$1"; }
body() { # body K T
    jq -cn --arg p "Conversation $1, turn $2: go on." --arg s "$(sid "$1")" \
        --argjson seed $((1000 * $1 + $2)) --argjson n $GEN_TOKENS \
        '{model: "lm", prompt: $p, max_tokens: $n, temperature: 1.0, seed: $seed, session: $s}'
}

# One turn through HAProxy, in the background. Only answers that say the
# session was not touched are retried: 409 (busy), 503 (no replica, or the
# store unreachable). Files $TMP/c.K.T.{out,hdr,codes}.
cluster_turn() {
    local k=$1 t=$2 f=$TMP/c.$1.$2 code
    for _ in $(seq 1 20); do
        code=$(curl -sS --max-time 60 -D "$f.hdr" -o "$f.out" -w '%{http_code}' \
            -H 'Content-Type: application/json' --data-binary "$(body "$k" "$t")" \
            "$LB/generate" 2>>"$f.err" || true)
        echo "$code" >>"$f.codes"
        case $code in 409 | 503) sleep 0.2 ;; *) return 0 ;; esac
    done
}
ref_turn() {
    curl -sS --max-time 60 -o "$TMP/r.$1.$2.out" -H 'Content-Type: application/json' \
        --data-binary "$(body "$1" "$2")" "$REF/generate" 2>>"$TMP/r.err" || true
}
conversation_ref() { # the reference's turns of K, in order
    local t
    for t in $(seq 0 $((TURNS - 1))); do ref_turn "$1" "$t"; done
}

declare -A VIA # K -> the replicas that answered its turns
check_round() {
    local t=$1 k not200=0 differ=0 created=0 retried=0
    for k in $(seq 1 $NSESS); do
        local f=$TMP/c.$k.$t
        [ "$(tail -1 "$f.codes")" = 200 ] || { not200=$((not200 + 1)); continue; }
        [ "$(grep -c . "$f.codes")" = 1 ] || retried=$((retried + 1))
        local got want
        got=$(jq -c .tokens "$f.out")
        want=$(jq -c .tokens "$TMP/r.$k.$t.out")
        if [ "$got" != "$want" ] || [ "$(jq length <<<"$got")" != $GEN_TOKENS ]; then
            differ=$((differ + 1))
            [ $differ -le 2 ] && echo "     $(sid "$k") turn $t: got $got, reference $want"
        fi
        [ "$(jq .session_created "$f.out")" = "$([ "$t" = 0 ] && echo true || echo false)" ] ||
            created=$((created + 1))
        VIA[$k]="${VIA[$k]:-} $(tr -d '\r' <"$f.hdr" | sed -n 's/^[Xx]-[Hh]mmba-[Rr]eplica: *//p')"
    done
    report "round $t: $NSESS turns answered 200 ($not200 not; $retried after a 409/503)" $not200
    report "round $t: every turn's tokens equal the single-instance reference ($differ differ)" $differ
    report "round $t: session_created is $([ "$t" = 0 ] && echo true || echo false) for every turn ($created not)" \
        $created
}

kill_replica() {
    kill -KILL "${RPID[$1]}"
    wait "${RPID[$1]}" 2>/dev/null || true
    RPID[$1]=""
    wait_for "HAProxy marks r$1 DOWN" lb_sees "r$1" DOWN || die "HAProxy never saw r$1 DOWN"
    echo "     r$1 SIGKILLed, DOWN"
}
restart_replica() {
    start_replica "$1" --session-store "$STORE"
    wait_for "HAProxy sees r$1 UP" lb_sees "r$1" UP || die "r$1 not UP again"
    echo "     r$1 restarted, UP"
}

# The reference runs whole conversations, in parallel, once.
jobs=()
for k in $(seq 1 $NSESS); do
    conversation_ref "$k" &
    jobs+=($!)
done
for j in "${jobs[@]}"; do wait "$j" || true; done

for t in $(seq 0 $((TURNS - 1))); do
    jobs=()
    for k in $(seq 1 $NSESS); do
        cluster_turn "$k" "$t" &
        jobs+=($!)
    done
    for j in "${jobs[@]}"; do wait "$j" || true; done
    check_round "$t"
    case $t in
    0) kill_replica 1 ;;
    1) restart_replica 1 && kill_replica 2 ;;
    2) restart_replica 2 && kill_replica 3 ;;
    3) restart_replica 3 && kill_replica 1 && kill_replica 2 ;;
    4) restart_replica 1 && restart_replica 2 ;;
    esac
done

# ===== nothing lost =====

moved=0
for k in $(seq 1 $NSESS); do
    [ "$(tr ' ' '\n' <<<"${VIA[$k]}" | grep . | sort -u | grep -c .)" -ge 2 ] && moved=$((moved + 1))
done
report "every conversation was answered by more than one replica ($moved of $NSESS)" \
    $((moved != NSESS))
lost=0
for k in $(seq 1 $NSESS); do
    a=$(curl -fsS "$LB/sessions/$(sid "$k")" | jq .tokens)
    b=$(curl -fsS "$REF/sessions/$(sid "$k")" | jq .tokens)
    [ -n "$a" ] && [ "$a" = "$b" ] || lost=$((lost + 1))
done
report "every session holds the reference's token count, asked through HAProxy ($lost not)" $lost
stored=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'hmmba:*:ver' | grep -c . || true)
report "Redis holds all $NSESS sessions ($stored)" $((stored != NSESS))
