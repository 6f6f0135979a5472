#!/usr/bin/env bash
# The one command that sets up and runs devpictl's whole test suite on a fresh
# Debian or Ubuntu machine with a Docker engine, as root. It installs what it
# needs (Debian packages, test images) and never touches the system Python:
#
#   1. a fresh virtual environment with the newest versions pyproject allows;
#   2. deptry: devpictl, bench/ and tests/ import only what pyproject declares;
#      ruff lints the whole tree and checks its format; mypy checks the types of
#      devpictl and templates/*.py;
#   3. the unit tests in a second fresh environment holding the LOWEST versions
#      pyproject allows (uv's --resolution lowest-direct);
#   4. the whole suite (unit + Docker) on the newest versions. Arguments go to
#      this last pytest run, e.g. `bash tests/run.sh -x -k backup`.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'echo "tests/run.sh: failed (line $LINENO, exit $?)" >&2' ERR

say() { printf '\n== %s\n' "$*" >&2; }

# Debian packages: debootstrap for the base image; python3-venv where the
# distribution split venv (and ensurepip) out of python3.
packages=()
command -v debootstrap >/dev/null || packages+=(debootstrap)
# Debian's Chromium: the test that looks at the page a browser gets at the cache's URL.
command -v chromium >/dev/null || packages+=(chromium)
probe="$(mktemp -d)"
python3 -m venv "$probe/venv" >/dev/null 2>&1 || packages+=(python3-venv)
rm -rf "$probe"
if [ "${#packages[@]}" -gt 0 ]; then
    say "apt-get install ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

NEWEST=.venv/newest
LOWEST=.venv/lowest
say "fresh environment with the newest dependencies: $NEWEST"
python3 -m venv --clear "$NEWEST"
"$NEWEST/bin/python" -m pip install -q --upgrade pip
"$NEWEST/bin/python" -m pip install -q -e '.[test]'
"$NEWEST/bin/devpictl" --version

say "deptry: every import declared, every declared dependency used"
"$NEWEST/bin/deptry" .
# tests/ and bench/ against the test extra too (unused runtime dependencies are fine there).
"$NEWEST/bin/deptry" . --exclude '^(devpictl|templates|\.venv)/' --ignore DEP002 \
    --optional-dependencies-dev-groups none

say "ruff: lint and format ([tool.ruff] in pyproject.toml); mypy: types ([tool.mypy])"
"$NEWEST/bin/ruff" check .
"$NEWEST/bin/ruff" format --check .
"$NEWEST/bin/mypy"

say "unit tests on the lowest versions pyproject allows: $LOWEST"
python3 -m venv --clear "$LOWEST"
"$NEWEST/bin/uv" pip install -q --python "$LOWEST/bin/python" --resolution lowest-direct -e '.[test]'
"$NEWEST/bin/uv" pip list --python "$LOWEST/bin/python" 2>/dev/null \
    | grep -iE '^(typer|docker|httpx|rich|jinja2|tomlkit|configupdater|platformdirs|packaging|cryptography) ' | tr -s ' ' | paste -sd ',' >&2
PATH="$PWD/$LOWEST/bin:$PATH" "$LOWEST/bin/python" -m pytest -q -p no:cacheprovider tests/unit

export DEVPICTL_TEST_BASE_IMAGE="${DEVPICTL_TEST_BASE_IMAGE:-devpictl-test-base:bookworm}"
if docker info >/dev/null 2>&1; then
    bash tests/images/make-base-image.sh "$DEVPICTL_TEST_BASE_IMAGE"
fi
say "the whole suite on the newest versions"
PATH="$PWD/$NEWEST/bin:$PATH" exec "$NEWEST/bin/python" -m pytest "$@"
