#!/usr/bin/env bash
# Make the local base image the Docker tests build devpi on: a Debian root
# filesystem (python3 + venv) from debootstrap, loaded with `docker import`.
# Needed where no registry can be pulled from, so `FROM python:3.12-slim` can't build.
#
#   make-base-image.sh [IMAGE]      make IMAGE unless the engine has it
#   make-base-image.sh --print-mirror
#                                   print the Debian mirror apt's sources name (unit-tested)
#
# APT_DIR (default /etc/apt) is where the apt sources are read from.
set -euo pipefail
trap 'echo "make-base-image: failed (line $LINENO, exit $?)" >&2' ERR

# The first non-security http(s) mirror in apt's sources. Reads both layouts:
# one-line entries ("deb [opts] URI suite ...") in sources.list and *.list, and
# deb822 stanzas ("URIs: URI ...") in *.sources; Debian 12's stock install has
# only the latter. Prints nothing when there is none.
detect_mirror() {
    local dir="${APT_DIR:-/etc/apt}" f
    local files=()
    for f in "$dir/sources.list" "$dir"/sources.list.d/*.list "$dir"/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ "${#files[@]}" -gt 0 ] || return 0
    awk '
        function take(uri) {
            if (uri ~ /^https?:\/\// && uri !~ /security/) { print uri; found = 1; exit }
        }
        FNR == 1 { deb822 = (FILENAME ~ /\.sources$/) }
        /^[ \t]*#/ { next }
        deb822 && tolower($1) == "uris:" { for (i = 2; i <= NF; i++) take($i); next }
        !deb822 && $1 == "deb" {
            # the URI is the first field after "deb" and any "[ ... ]" options
            for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { take($i); break }
        }
    ' "${files[@]}"
}

if [ "${1:-}" = "--print-mirror" ]; then
    detect_mirror
    exit 0
fi

IMAGE="${1:-devpictl-test-base:bookworm}"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE already present"
    exit 0
fi

. /etc/os-release
SUITE="${DEVPICTL_TEST_SUITE:-${VERSION_CODENAME:-bookworm}}"
# Use the Debian mirror this machine's apt sources name (plain http needs no CA).
MIRROR="$(detect_mirror)"
if [ -z "$MIRROR" ]; then
    echo "make-base-image: no Debian mirror in ${APT_DIR:-/etc/apt}/sources.list or sources.list.d/*.{list,sources}; set one up for apt first" >&2
    exit 1
fi

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT
echo "debootstrap $SUITE from $MIRROR into $ROOTFS (about a minute)"
# A clean environment: the host's PIP_*/proxy settings must not shape the image.
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" >/dev/null
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change 'LABEL devpictl.test=1' \
    - "$IMAGE" >/dev/null
echo "made base image $IMAGE"
