#!/bin/sh
# Point apt at the Debian archive $1 (the build's --apt-mirror, ending in /debian):
# every http(s) .../debian and .../debian-security source, in both layouts
# (one-line sources.list and *.list, deb822 *.sources). Fails when nothing changed.
# APT_DIR (default /etc/apt) is for the tests.
set -eu
mirror="${1%/}"
dir="${APT_DIR:-/etc/apt}"
changed=0
for f in "$dir/sources.list" "$dir"/sources.list.d/*.list "$dir"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    before="$(cat "$f")"
    sed -i -E "s#https?://[^[:space:]/]+(/[^[:space:]]*)?/debian(-security)?([[:space:]/]|\$)#${mirror}\2\3#g" "$f"
    [ "$(cat "$f")" = "$before" ] || changed=1
done
if [ "$changed" != 1 ]; then
    echo "apt-mirror: no Debian source in $dir to point at $mirror" >&2
    exit 1
fi
