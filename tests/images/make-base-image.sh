#!/usr/bin/env bash
# Make the local base image the Docker tests build devpi on: a Debian root
# filesystem (python3 + venv) from debootstrap, loaded with `docker import`.
# Needed where no registry can be pulled from, so `FROM python:3.12-slim` can't build.
set -euo pipefail

IMAGE="${1:-devpictl-test-base:bookworm}"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE already present"
    exit 0
fi

. /etc/os-release
SUITE="${DEVPICTL_TEST_SUITE:-${VERSION_CODENAME:-bookworm}}"
# Use the Debian mirror this machine's apt sources name (plain http needs no CA).
MIRROR="$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -v security | head -n1 | awk '{print $2}')"
if [ -z "$MIRROR" ]; then
    echo "make-base-image: no Debian mirror found in /etc/apt/sources*; set one up for apt first" >&2
    exit 1
fi

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT
echo "debootstrap $SUITE from $MIRROR into $ROOTFS"
# A clean environment: the host's PIP_*/proxy settings must not shape the image.
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" >/dev/null
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change 'LABEL devpictl.test=1' \
    - "$IMAGE" >/dev/null
echo "made base image $IMAGE"
