#!/bin/sh
# quickstart.sh: the README's two commands.
#   deploy/quickstart.sh serve   install what is missing, build, serve the bundled models
#   deploy/quickstart.sh test    install what is missing, build, run every test
# Works on a fresh Debian 12 (bookworm) machine; apt-get runs as root, or via sudo.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential pkg-config meson ninja-build libmicrohttpd-dev libjansson-dev
libuv1-dev check libutf8proc-dev curl"

install_packages() {
    missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "quickstart: installing$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
}

build() {
    [ -d build ] || meson setup build --buildtype=release
    ninja -C build
}

case "${1:-}" in
serve)
    install_packages
    build
    shift
    exec build/server/hmmba --config config/hmmba.json "$@"
    ;;
test)
    install_packages
    build
    meson test -C build --print-errorlogs
    ;;
*)
    echo "usage: $0 serve|test" >&2
    exit 2
    ;;
esac
