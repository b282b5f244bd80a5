#!/usr/bin/env bash
# test-image.sh: build the container image from deploy/Dockerfile, start it,
# and check it from the host: /health, /ready, the playground at /, a /decode
# on the bundled casino model, the health-check probe, that the server runs
# as a non-root user, and that SIGTERM stops it with exit status 0.
#
#   deploy/test-image.sh          (from the repository root, as root)
#
# With a Docker engine that answers, it uses docker. Otherwise buildah
# (installed with apt-get if missing), with chroot isolation and vfs storage
# in a temporary directory, and base images made here: debootstrap (minbase)
# of bookworm from this machine's Debian mirror, imported as debian:bookworm
# and, with documentation and locales stripped as Docker's slim images do,
# as debian:bookworm-slim. Everything it creates is removed at the end, on
# failure too; HMMBA_KEEP=DIR keeps buildah's storage (and the base images)
# in DIR and reuses it on the next run. Prints each check and the timings;
# exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

T0=$SECONDS
TMP=$(mktemp -d /var/tmp/hmmba-image.XXXXXX)
IMAGE=localhost/hmmba:test
CTR=""          # buildah working container / docker container
RUN_PID=""      # the backgrounded `buildah run`
ENGINE=""
FAILED=0

say() { printf '%s\n' "$*"; }
PASS=0
ok() {
    printf 'ok   %s\n' "$*"
    PASS=$((PASS + 1))
}
fail() {
    printf 'FAIL %s\n' "$*"
    FAILED=1
    exit 1
}
phase() { printf '%s (%ds)\n' "$*" $((SECONDS - T0)); }

# ===== clean-up, whatever happened =====

unmount_under() { # anything still mounted below $1 (a killed chroot run)
    local m
    for m in $(awk -v p="$1" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
}

cleanup() {
    local rc=$?
    set +e
    trap '' PIPE # a closed stdout must not stop the clean-up
    if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
        local pid
        pid=$(server_pid)
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
        kill -TERM "$RUN_PID" 2>/dev/null
        wait "$RUN_PID" 2>/dev/null
    fi
    if [ "$ENGINE" = docker ]; then
        [ -n "$CTR" ] && docker rm -f "$CTR" >/dev/null 2>&1
        [ -z "${HMMBA_KEEP:-}" ] && docker rmi "$IMAGE" >/dev/null 2>&1
    elif [ "$ENGINE" = buildah ]; then
        [ -n "$CTR" ] && bah rm "$CTR" >/dev/null 2>&1
        if [ -n "${HMMBA_KEEP:-}" ]; then
            bah rmi "$IMAGE" >/dev/null 2>&1
            bah rmi --prune >/dev/null 2>&1
        fi
    fi
    if [ $rc -ne 0 ] && [ -s "$TMP/server.log" ]; then
        echo "--- the server's log (last lines)"
        tail -20 "$TMP/server.log"
    fi
    unmount_under "$TMP"
    rm -rf --one-file-system "$TMP"
    say "test-image: took $((SECONDS - T0)) s, clean-up included"
    say "test-image: $PASS passed, $(((rc != 0 || FAILED != 0) ? 1 : 0)) failed"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ===== helpers =====

free_port() { # a loopback TCP port nobody listens on
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

server_pid() { # the pid listening on $PORT, from the kernel's socket table
    ss -Htlnp "sport = :${PORT:-0}" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}

. deploy/apt.sh # apt_install

# The first Debian (not security) mirror in this machine's apt sources.
debian_mirror() {
    local m
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -v '^\s*#' | grep -oE 'https?://[^ ]+' | grep -v security | head -1)
    echo "${m:-http://deb.debian.org/debian}"
}

# The build context: the files git knows (tracked, or new and not ignored),
# so that host build directories are not sent.
make_context() {
    mkdir -p "$TMP/ctx"
    if git rev-parse --git-dir >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard |
            tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$TMP/ctx" -xf -
    else
        tar -cf - meson.build meson_options.txt engine proto config server deploy |
            tar -C "$TMP/ctx" -xf -
    fi
}

# ===== buildah: base images =====

bah() { buildah --root "$STORE/root" --runroot "$STORE/run" --storage-driver vfs "$@"; }

# Import rootfs directory $1 as image $2 (and more tags).
import_rootfs() {
    local dir=$1 name=$2 c m
    shift 2
    c=$(bah from scratch)
    m=$(bah mount "$c")
    cp -a "$dir/." "$m/"
    bah umount "$c" >/dev/null
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd /bin/bash "$c"
    bah commit --quiet --rm "$c" "$name" >/dev/null
    local t
    for t in "$@"; do bah tag "$name" "$t"; done
}

make_base_images() {
    if bah inspect --type image docker.io/library/debian:bookworm-slim >/dev/null 2>&1 &&
        bah inspect --type image docker.io/library/debian:bookworm >/dev/null 2>&1; then
        phase "base images: reusing those in $STORE"
        return
    fi
    local mirror
    mirror=$(debian_mirror)
    phase "debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$TMP/rootfs" "$mirror" >"$TMP/debootstrap.log" 2>&1 ||
        { tail -20 "$TMP/debootstrap.log"; fail "debootstrap"; }
    # As Docker's images: no package lists, no downloaded .debs, no logs.
    rm -rf "$TMP/rootfs/var/lib/apt/lists/"* "$TMP/rootfs/var/cache/apt/"*.bin \
        "$TMP/rootfs/var/cache/apt/archives/"*.deb "$TMP/rootfs/var/log/"*.log
    phase "importing debian:bookworm"
    import_rootfs "$TMP/rootfs" docker.io/library/debian:bookworm
    # slim, as Docker's debian:*-slim: no documentation, man pages or locales,
    # now and for packages installed later.
    mkdir -p "$TMP/rootfs/etc/dpkg/dpkg.cfg.d"
    cat >"$TMP/rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    find "$TMP/rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
    rm -rf "$TMP/rootfs/usr/share/man/"* "$TMP/rootfs/usr/share/info/"* \
        "$TMP/rootfs/usr/share/locale/"* "$TMP/rootfs/usr/share/lintian/"*
    phase "importing debian:bookworm-slim"
    import_rootfs "$TMP/rootfs" docker.io/library/debian:bookworm-slim
    rm -rf --one-file-system "$TMP/rootfs"
}

# ===== the image: build =====

build_buildah() {
    apt_install buildah debootstrap
    STORE=${HMMBA_KEEP:-$TMP/store}
    mkdir -p "$STORE"
    make_base_images
    phase "buildah build -f deploy/Dockerfile"
    local t=$SECONDS
    bah build --isolation chroot --pull=never --format docker --layers=false \
        -f "$TMP/ctx/deploy/Dockerfile" -t "$IMAGE" "$TMP/ctx" >"$TMP/build.log" 2>&1 ||
        { tail -30 "$TMP/build.log"; fail "image build"; }
    BUILD_S=$((SECONDS - t))
    ok "image built in ${BUILD_S} s"
    # Sizes as a registry would store them (layers gzip-compressed) and as
    # they unpack; the base image is the first layer.
    image_sizes
}

# SIZE/BASE: the image and its base unpacked (what a node's disk holds);
# ZSIZE/ZBASE: the same gzip-compressed, as a registry stores and sends them
# (the base image is the first layer).
image_sizes() {
    SIZE=$(unpacked_size "$IMAGE")
    BASE=$(unpacked_size docker.io/library/debian:bookworm-slim)
    bah push --quiet --compression-format gzip "$IMAGE" "oci:$TMP/oci:hmmba" >/dev/null
    local idx
    idx=$(jq -r '.manifests[0].digest' "$TMP/oci/index.json")
    read -r ZSIZE ZBASE < <(jq -r '[.layers[].size] | "\(add) \(.[0])"' "$TMP/oci/blobs/${idx/://}")
    rm -rf "$TMP/oci"
}

unpacked_size() { # bytes of image $1's files
    local c m n
    c=$(bah from --pull=never --quiet "$1")
    m=$(bah mount "$c")
    n=$(du -sb --apparent-size "$m" | cut -f1)
    bah umount "$c" >/dev/null
    bah rm "$c" >/dev/null
    echo "$n"
}

build_docker() {
    phase "docker build -f deploy/Dockerfile"
    local t=$SECONDS
    docker build -q -f "$TMP/ctx/deploy/Dockerfile" -t "$IMAGE" "$TMP/ctx" >"$TMP/build.log" 2>&1 ||
        { tail -30 "$TMP/build.log"; fail "image build"; }
    BUILD_S=$((SECONDS - t))
    ok "image built in ${BUILD_S} s"
    SIZE=$(docker image inspect -f '{{.Size}}' "$IMAGE")
    ZSIZE=$(docker save "$IMAGE" | gzip -c | wc -c)
    BASE=$(docker image inspect -f '{{.Size}}' debian:bookworm-slim)
    ZBASE=$(docker save debian:bookworm-slim | gzip -c | wc -c)
}

# ===== the image: run and check =====

image_config() { # the image's Docker config (User, Env, Entrypoint, Cmd, Healthcheck ...)
    if [ "$ENGINE" = docker ]; then docker image inspect -f '{{json .Config}}' "$IMAGE"
    else bah inspect --type image "$IMAGE" | jq '.Docker.config'; fi
}

# Entrypoint + Cmd of the image, one argument a line.
image_argv() {
    local cfg
    cfg=$(image_config)
    jq -r '(.Entrypoint // []) + (.Cmd // []) | .[]' <<<"$cfg"
}

image_config_checks() {
    local cfg
    cfg=$(image_config)
    local user hc ep
    user=$(jq -r '.User // ""' <<<"$cfg")
    hc=$(jq -c '.Healthcheck.Test // []' <<<"$cfg")
    ep=$(jq -c '.Entrypoint // []' <<<"$cfg")
    [ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] ||
        fail "image USER is '$user' (want a non-root user)"
    ok "image USER $user"
    grep -q -- '--probe' <<<"$hc" || fail "HEALTHCHECK is $hc (want hmmba --probe)"
    ok "HEALTHCHECK $hc"
    jq -e 'type == "array" and length > 0' <<<"$ep" >/dev/null || fail "ENTRYPOINT not in exec form: $ep"
    ok "ENTRYPOINT (exec form) $ep"
}

start_buildah() {
    CTR=$(bah from --pull=never --quiet "$IMAGE")
    # The image listens on 0.0.0.0:8080; chroot isolation shares the host's
    # network, so take a free loopback port instead.
    bah config --env "HMMBA_LISTEN=127.0.0.1:$PORT" "$CTR"
    mapfile -t ARGV < <(image_argv)
    bah run --isolation chroot "$CTR" -- "${ARGV[@]}" >"$TMP/server.log" 2>&1 &
    RUN_PID=$!
}

start_docker() {
    CTR=hmmba-test-$$
    docker run -d --name "$CTR" -p "127.0.0.1:$PORT:8080" "$IMAGE" >/dev/null
}

in_container() { # run a command in the container, print its exit status
    if [ "$ENGINE" = docker ]; then docker exec "$CTR" "$@" >/dev/null 2>&1 && echo 0 || echo $?
    else bah run --isolation chroot "$CTR" -- "$@" >/dev/null 2>&1 && echo 0 || echo $?; fi
}

# Waits are on state; HANG_S only guards against a server that never gets
# there (a slow machine takes longer, it does not fail).
HANG_S=180

wait_health() {
    for _ in $(seq 1 $((HANG_S * 5))); do
        curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
        if [ "$ENGINE" = buildah ] && ! kill -0 "$RUN_PID" 2>/dev/null; then break; fi
        sleep 0.2
    done
    [ -f "$TMP/server.log" ] && cat "$TMP/server.log"
    [ "$ENGINE" = docker ] && docker logs "$CTR" 2>&1 | tail -20
    fail "hang or exit: the server did not answer /health on 127.0.0.1:$PORT (${HANG_S} s guard)"
}

http_checks() {
    local body
    body=$(curl -fsS "http://127.0.0.1:$PORT/health") || fail "/health"
    [ "$(jq -r .status <<<"$body")" = ok ] || fail "/health answered $body"
    ok "/health from the host: $body"
    body=$(curl -fsS "http://127.0.0.1:$PORT/ready") || fail "/ready"
    ok "/ready: $body"
    # The playground: the page at / and the script it loads, from the binary.
    body=$(curl -fsS "http://127.0.0.1:$PORT/") || fail "GET / (the playground)"
    grep -q '<title>hmmba playground</title>' <<<"$body" || fail "GET / is not the playground page"
    local ctype
    ctype=$(curl -fsS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$PORT/ui/app.js") ||
        fail "GET /ui/app.js"
    [[ "$ctype" == text/javascript* ]] || fail "/ui/app.js has Content-Type $ctype"
    ok "GET / serves the playground ($(wc -c <<<"$body") bytes; /ui/app.js as $ctype)"
    # Expected values by brute force over all 2^15 state paths (independent
    # of the server): Viterbi path, its log probability, the log likelihood.
    body=$(curl -fsS "http://127.0.0.1:$PORT/decode" -d '{"model": "casino",
        "observations": ["6","6","6","6","6","6","1","2","3","4","5","1","2","3","4"]}') ||
        fail "/decode on casino"
    jq -e '.path == [1,1,1,1,1,1,0,0,0,0,0,0,0,0,0] and .path_names[0] == "loaded"
           and (.path_log_prob + 24.217599513355694 | fabs < 1e-9)
           and (.log_likelihood + 23.006026076901744 | fabs < 1e-9)' <<<"$body" >/dev/null ||
        fail "/decode casino answered $body"
    ok "/decode casino: path $(jq -c .path <<<"$body"), log_likelihood $(jq .log_likelihood <<<"$body")"
    demo_checks
}

# The bundled Mamba model, when the bundled config serves it: greedy text and
# logits against tests/fixtures/demo/reference.json (computed with the
# training framework, Hugging Face transformers, not with hmmba).
demo_checks() {
    local ref=tests/fixtures/demo/reference.json body
    if ! jq -e '.models.demo' config/hmmba.json >/dev/null 2>&1 || [ ! -f "$ref" ]; then
        say "     (no bundled demo model: skipped its checks)"
        return
    fi
    body=$(curl -fsS "http://127.0.0.1:$PORT/generate" -d "$(jq -c '{model: "demo",
        prompt: .prompt, max_tokens: (.greedy_continuation | length), temperature: 0}' "$ref")") ||
        fail "/generate on demo"
    jq -e --slurpfile r "$ref" '.tokens == $r[0].greedy_continuation and .text == $r[0].greedy_text' \
        <<<"$body" >/dev/null || fail "/generate demo (greedy) answered $body"
    ok "/generate demo, greedy: $(jq '.tokens | length' <<<"$body") tokens as transformers gives them: $(jq .text <<<"$body" | head -c 60)..."
    curl -fsS "http://127.0.0.1:$PORT/decode" -o "$TMP/demo.json" \
        -d "$(jq -c '{model: "demo", tokens: .input_ids, logits: true}' "$ref")" ||
        fail "/decode on demo"
    local worst
    worst=$(jq -n --slurpfile a "$TMP/demo.json" --slurpfile r "$ref" \
        '[$a[0].logits, $r[0].logits] | transpose | map(transpose | map(.[0] - .[1] | fabs) | max) | max')
    # measured: 1.6e-5 (the server suite's demo check, every instruction set)
    awk -v d="$worst" 'BEGIN { exit !(d < 2e-4) }' || fail "/decode demo: logits differ from the reference by $worst"
    ok "/decode demo: $(jq '.logits | length' "$TMP/demo.json") x $(jq '.logits[0] | length' "$TMP/demo.json") logits within $worst of transformers'"
}

user_checks() {
    local uid
    if [ "$ENGINE" = docker ]; then
        uid=$(docker top "$CTR" -o uid,comm | awk '$2 == "hmmba" { print $1 }' | head -1)
        [ -n "$uid" ] || uid=$(docker exec "$CTR" sh -c 'id -u')
    else
        local pid
        pid=$(server_pid)
        [ -n "$pid" ] || fail "no process listens on port $PORT"
        uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
        ok "the server is pid $pid on the host: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
    fi
    [ -n "$uid" ] && [ "$uid" != 0 ] || fail "the server runs as uid '$uid'"
    ok "the server runs as uid $uid (not root)"
}

probe_checks() {
    local rc inner=$PORT
    [ "$ENGINE" = docker ] && inner=8080 # the port inside the container
    rc=$(in_container /usr/local/bin/hmmba --probe "http://127.0.0.1:$inner/ready")
    [ "$rc" = 0 ] || fail "hmmba --probe /ready inside the container exited $rc"
    ok "hmmba --probe .../ready inside the container exits 0"
    rc=$(in_container /usr/local/bin/hmmba --probe http://127.0.0.1:1/ready)
    [ "$rc" = 1 ] || fail "hmmba --probe on a closed port exited $rc (want 1)"
    ok "hmmba --probe on a closed port exits 1"
    rc=$(in_container sh -c 'command -v gcc || command -v curl || command -v meson')
    [ "$rc" != 0 ] || fail "the runtime image has build tools or curl"
    ok "no gcc, meson or curl in the runtime image"
    if [ "$ENGINE" = docker ]; then
        local st=""
        for _ in $(seq 1 "$HANG_S"); do
            st=$(docker inspect -f '{{.State.Health.Status}}' "$CTR")
            [ "$st" = healthy ] && break
            sleep 1
        done
        [ "$st" = healthy ] || fail "hang: docker health status still '$st' after ${HANG_S} s"
        ok "docker reports the container healthy"
    fi
}

stop_checks() {
    local rc
    if [ "$ENGINE" = docker ]; then
        docker stop -t 15 "$CTR" >/dev/null
        rc=$(docker inspect -f '{{.State.ExitCode}}' "$CTR")
        docker logs "$CTR" >"$TMP/server.log" 2>&1
    else
        local pid
        pid=$(server_pid)
        kill -TERM "$pid"
        rc=0
        wait "$RUN_PID" || rc=$?
        RUN_PID=""
    fi
    [ "$rc" = 0 ] || fail "after SIGTERM the server exited $rc"
    grep -q "draining" "$TMP/server.log" || fail "no 'draining' in the server's log"
    ok "SIGTERM: the server drained and exited 0"
}

# ===== main =====

apt_install curl jq iproute2
PORT=$(free_port)
make_context
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ENGINE=docker
    build_docker
else
    ENGINE=buildah
    say "no Docker engine answers: using buildah (chroot isolation, vfs storage)"
    build_buildah
fi
image_config_checks
phase "starting the container on 127.0.0.1:$PORT"
if [ "$ENGINE" = docker ]; then start_docker; else start_buildah; fi
wait_health
http_checks
user_checks
probe_checks
stop_checks
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "image size: $(mib "$SIZE") unpacked, $(mib "$ZSIZE") gzip-compressed"
[ -n "${BASE:-}" ] && say "  of which the base image: $(mib "$BASE") unpacked, $(mib "$ZBASE") compressed;" \
    "hmmba's layers: $(mib $((SIZE - BASE))) unpacked, $(mib $((ZSIZE - ZBASE))) compressed"
say "build time: ${BUILD_S} s; up to here: $((SECONDS - T0)) s ($ENGINE)"
