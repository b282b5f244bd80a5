#!/bin/sh
# quickstart.sh: the README's two commands.
#   deploy/quickstart.sh serve   install what is missing, build, serve the bundled models
#   deploy/quickstart.sh test    install what is missing, build, run every test
# Works on a fresh Debian 12 (bookworm) machine; apt-get runs as root, or via sudo.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential pkg-config meson ninja-build libmicrohttpd-dev libjansson-dev
libuv1-dev check libutf8proc-dev curl libhiredis-dev redis-server"

. deploy/apt.sh
APT_PREFIX="quickstart: "

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
    apt_install $PACKAGES
    build
    meson test -C build --print-errorlogs
    ;;
*)
    echo "usage: $0 serve|test" >&2
    exit 2
    ;;
esac
