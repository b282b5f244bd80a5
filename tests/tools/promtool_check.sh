#!/bin/sh
# promtool_check.sh HMMBA CONFIG_DIR: start hmmba on a free loopback port
# with the bundled models, send traffic over every kind of route (errors,
# streams, sessions, HMM decoding), then scrape /metrics and check the
# scrape with promtool (Debian's prometheus package: deploy/quickstart.sh
# and .ci/run install it).
set -eu
hmmba=$1
cfg=$2
if ! command -v promtool >/dev/null; then
    echo "promtool not found: install Debian's prometheus package (deploy/quickstart.sh test does)"
    exit 1
fi
tmp=$(mktemp -d)
"$hmmba" --model casino="$cfg/models/casino.json" --model "demo=$cfg/models/demo,chat_template=chatml" \
    --listen 127.0.0.1:0 --workers 2 >"$tmp/out" 2>"$tmp/err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
until grep -q "listening on" "$tmp/out"; do
    i=$((i + 1))
    if [ "$i" -gt 600 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "hang guard: hmmba did not start listening"; cat "$tmp/err"; exit 1
    fi
    sleep 0.1
done
base=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$tmp/out")
post() { curl -s -o /dev/null -w '%{http_code}\n' "$base$1" -d "$2"; }
post /v1/completions '{"model":"demo","prompt":"The cat","max_tokens":4,"temperature":0}'
post /v1/completions '{"model":"demo","prompt":"The cat","max_tokens":4,"stream":true,"n":2}'
post /v1/chat/completions '{"model":"demo","messages":[{"role":"user","content":"Hi"}],"max_tokens":3}'
post /generate '{"model":"demo","prompt":"A","max_tokens":3,"session":"s1"}'
post /decode '{"model":"casino","observations":["1","6","6","6"]}'
post /tokenize '{"model":"demo","text":"hello"}'
post /v1/completions '{"model":"demo","prompt":"a","n":99}'
post /nowhere '{}'
curl -s -o /dev/null "$base/v2/health/ready"
curl -sf "$base/metrics" >"$tmp/metrics"
grep -q '^hmmba_requests_total{route="/v1/completions",status="200"} 2$' "$tmp/metrics" || {
    echo "the scrape does not count the two completions"; exit 1
}
promtool check metrics <"$tmp/metrics"
echo "promtool: $(wc -l <"$tmp/metrics") lines of metrics pass"
