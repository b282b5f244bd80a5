# shellcheck shell=bash
# cluster-lib.sh: what the cluster scenarios share, sourced (bash) by
# test-cluster.sh and test-cluster-store.sh after they set TMP (a fresh
# temporary directory) and BUILD:
#
#   ok / bad / check / report / die / note   the checks and their counts
#                                      (PASS, FAILS), printed one a line
#   cluster_tools CMD[:PKG]...         installs the Debian package of each
#                                      command that is missing (apt.sh)
#   cluster_build                      builds hmmba and mkmodel into $BUILD;
#                                      sets HMMBA
#   cluster_lm DIR                     the tiny Mamba fixture, with a
#                                      byte-level tokenizer and no eos, so
#                                      every generation runs exactly the
#                                      max_tokens asked
#   free_port                          a port below the kernel's ephemeral
#                                      range that no socket uses, in any
#                                      state, and not handed out before in
#                                      this run
#   wait_for WHAT CMD...               until CMD succeeds; HANG_S (default
#                                      180) guards a hang, it is not a timing
#
# Ports are chosen below the ephemeral range so that no outgoing connection
# (curl, a balancer's checks) can take one between its choice and its bind,
# nor while a killed replica is down before its restart.

PASS=0
FAILS=0
HANG_S=${HANG_S:-180}

ok() {
    printf 'ok   %s\n' "$*"
    PASS=$((PASS + 1))
}
bad() {
    printf 'FAIL %s\n' "$*"
    FAILS=$((FAILS + 1))
}
check() { # check DESCRIPTION COMMAND...: the command's status is the check
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
report() { # report DESCRIPTION COUNT: passes when the count (of failures) is 0
    if [ "$2" = 0 ]; then ok "$1"; else bad "$1"; fi
}
die() {
    bad "$*"
    exit 1
}
note() { printf '     %s\n' "$*"; }

. deploy/apt.sh # apt_install

cluster_tools() {
    local spec
    PATH=$PATH:/usr/sbin
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null || apt_install "${spec#*:}"
    done
}

cluster_build() {
    if ! { [ -d "$BUILD" ] || meson setup "$BUILD" --buildtype=release; } >"$TMP/build.log" 2>&1 ||
        ! ninja -C "$BUILD" server/hmmba tests/tools/mkmodel >>"$TMP/build.log" 2>&1; then
        tail -20 "$TMP/build.log"
        die "building hmmba and mkmodel in $BUILD"
    fi
    # shellcheck disable=SC2034 # used by the scripts that source this
    HMMBA=$BUILD/server/hmmba
}

cluster_lm() {
    mkdir -p "$1"
    cp tests/fixtures/mamba/mamba1-tiny-tied/model.safetensors "$1/"
    jq 'del(.eos_token_id)' tests/fixtures/mamba/mamba1-tiny-tied/config.json >"$1/config.json"
    "$BUILD/tests/tools/mkmodel" --tokenizer-only "$1"
}

read -r EPH_LO _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPH_LO=32768
[ "$EPH_LO" -gt 12000 ] || EPH_LO=32768

# free_port runs in $(...), a subshell: the ports handed out are kept in a
# file, not a variable.
free_port() {
    local p
    touch "$TMP/ports"
    while :; do
        p=$((10000 + RANDOM % (EPH_LO - 10000)))
        grep -qx "$p" "$TMP/ports" && continue
        ss -Htan "sport = :$p" | grep -q . || break
    done
    echo "$p" >>"$TMP/ports"
    echo "$p"
}

wait_for() {
    local what=$1 i
    shift
    for ((i = 0; i < HANG_S * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    note "hang: $what not within $HANG_S s"
    return 1
}
