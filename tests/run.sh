#!/usr/bin/env bash
# The one command that sets up and runs devpictl's whole test suite on a fresh
# Debian machine with a Docker engine: Debian packages, Python deps, test images.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
python3 -m pip install -q -e '.[test]'
export DEVPICTL_TEST_BASE_IMAGE="${DEVPICTL_TEST_BASE_IMAGE:-devpictl-test-base:bookworm}"
if docker info >/dev/null 2>&1; then
    bash tests/images/make-base-image.sh "$DEVPICTL_TEST_BASE_IMAGE"
fi
exec python3 -m pytest "$@"
