#!/bin/sh
# Make every page in the front server's cache a miss (after an upstream switch).
# The entrypoint runs it with --starting, before nginx, for the first value.
set -eu
echo "map \"\" \$devpictl_generation { default \"$(date +%s%N)\"; }" > {{ pages_generation_conf }}
[ "${1:-}" = "--starting" ] && exit 0
find {{ page_cache }} -type f -delete 2>/dev/null || true
nginx -e stderr -c {{ nginx_conf }} -s reload
