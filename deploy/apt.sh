# apt.sh: apt_install PKG..., sourced by quickstart.sh, test-cluster.sh and
# test-image.sh: installs those of the Debian packages that are missing
# (apt-get as root, or through sudo), saying which first, prefixed by
# $APT_PREFIX when set. POSIX sh.
apt_install() {
    apt_missing=""
    for apt_p in "$@"; do
        dpkg-query -W -f='${Status}' "$apt_p" 2>/dev/null | grep -q "ok installed" ||
            apt_missing="$apt_missing $apt_p"
    done
    [ -z "$apt_missing" ] && return 0
    echo "${APT_PREFIX:-}installing$apt_missing"
    apt_sudo=""
    [ "$(id -u)" -ne 0 ] && apt_sudo=sudo
    $apt_sudo apt-get update -qq
    # shellcheck disable=SC2086 # the list splits into packages
    DEBIAN_FRONTEND=noninteractive $apt_sudo apt-get install -y -qq --no-install-recommends \
        $apt_missing >/dev/null
}
