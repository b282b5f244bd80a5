#!/bin/sh
# bench_http.sh: requests/s and latency of small HMM /decode requests
# (casino, 100 observations) at 64 connections with wrk, then streaming
# /generate (bench_streams). Usage: tests/bench/bench_http.sh [BUILD_DIR] [SECONDS]
set -eu
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SECS=${2:-10}
command -v wrk >/dev/null || { echo "bench_http: needs wrk (apt-get install wrk)" >&2; exit 1; }
. tests/hmmba_server.sh
TMP=$(mktemp -d)
trap 'hmmba_stop; rm -rf "$TMP"' EXIT
# 100 casino rolls, deterministic
obs=$(awk 'BEGIN { srand(1); s = ""; for (i = 0; i < 100; i++) s = s (i ? "," : "") "\"" int(1 + rand() * 6) "\""; print s }')
printf '{"model":"casino","observations":[%s]}' "$obs" >"$TMP/body.json"
cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$TMP/body.json"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
hmmba_start "$TMP/out" /dev/null "$BUILD/server/hmmba" --model casino=config/models/casino.json \
    --listen 127.0.0.1:0
URL=$HMMBA_URL
wrk -t2 -c64 -d2s -s "$TMP/post.lua" "$URL/decode" >/dev/null # warm up
wrk -t2 -c64 -d"${SECS}s" --latency -s "$TMP/post.lua" "$URL/decode" >"$TMP/wrk"
rps=$(awk '/Requests\/sec/ { print $2 }' "$TMP/wrk")
p50=$(awk '$1 == "50%" { print $2 }' "$TMP/wrk")
p99=$(awk '$1 == "99%" { print $2 }' "$TMP/wrk")
errs=$(awk '/Non-2xx|Socket errors/ { print }' "$TMP/wrk")
echo "HMM /decode (casino, 100 observations), 64 connections, ${SECS} s, $(nproc) cores"
echo "| requests/s | p50 | p99 | errors |"
echo "|---|---|---|---|"
echo "| $rps | $p50 | $p99 | ${errs:-none} |"
hmmba_stop
echo
"$BUILD/tests/bench/bench_streams" 2>/dev/null
