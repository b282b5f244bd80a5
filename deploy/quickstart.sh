#!/bin/sh
# quickstart.sh: the README's two commands.
#   deploy/quickstart.sh serve   install what is missing, build, serve the bundled models
#   deploy/quickstart.sh test    install what is missing (Debian packages, and the
#                                npm packages of tests/node), build, run every test
# Works on a fresh Debian 12 (bookworm) machine; apt-get runs as root, or via sudo.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential pkg-config meson ninja-build libmicrohttpd-dev libjansson-dev
libuv1-dev check libutf8proc-dev libonig-dev libhiredis-dev curl"
# Only the tests need these: Prometheus's promtool (the metrics check),
# pomegranate 0.14 checks deploy/convert_hmm.py, redis-server the shared
# session store.
TEST_PACKAGES="prometheus python3-pomegranate redis-server"

. deploy/apt.sh
APT_PREFIX="quickstart: "

# The playground's browser test (tests/ui, meson test ui): Debian's chromium,
# and node with npm unless some node is there already (a distribution's own
# nodejs and Debian's npm would conflict).
ui_test_deps() {
    ui_packages="chromium"
    command -v node >/dev/null 2>&1 || ui_packages="$ui_packages nodejs"
    command -v npm >/dev/null 2>&1 || ui_packages="$ui_packages npm"
    # shellcheck disable=SC2086 # the list splits into packages
    apt_install $ui_packages
    (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
}

build() {
    [ -d build ] || meson setup build --buildtype=release
    ninja -C build
}

case "${1:-}" in
serve)
    apt_install $PACKAGES
    build
    shift
    exec build/server/hmmba --config config/hmmba.json "$@"
    ;;
test)
    apt_install $PACKAGES $TEST_PACKAGES
    # Node (the openai SDK test, tests/node): Debian's, unless one is there
    command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
    ui_test_deps
    build
    meson test -C build --print-errorlogs
    ;;
*)
    echo "usage: $0 serve|test" >&2
    exit 2
    ;;
esac
