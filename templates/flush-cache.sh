#!/bin/sh
# Make every page in the front server's cache a miss (after an upstream switch).
set -eu
echo "map \"\" \$devpictl_generation { default \"$(date +%s%N)\"; }" > /run/devpictl/nginx-generation.conf
find /tmp/nginx/cache -type f -delete 2>/dev/null || true
nginx -e stderr -c /etc/devpictl/nginx.conf -s reload
