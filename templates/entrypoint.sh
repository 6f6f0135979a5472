#!/bin/sh
# Entrypoint of the devpictl image: init the server dir once, then run devpi-server.
# Everything lives under /data (a volume), so restarts and re-created
# containers keep the cache, its users and its login secret.
set -eu
umask 077

SERVERDIR=/data/server
SECRETFILE=/data/secret
RUNDIR=/run/devpictl
PASSWORD_FILE="${DEVPICTL_ROOT_PASSWORD_FILE:-$RUNDIR/root-password}"

# Files devpictl copies into the container before its first start; they are
# read here rather than passed as environment, so `docker inspect` shows none.
if [ -s "$RUNDIR/ca-bundle.pem" ]; then
    export REQUESTS_CA_BUNDLE="$RUNDIR/ca-bundle.pem" SSL_CERT_FILE="$RUNDIR/ca-bundle.pem"
fi
if [ -s "$RUNDIR/proxy.env" ]; then
    set -a
    . "$RUNDIR/proxy.env"
    set +a
fi

if [ ! -e "$SERVERDIR/.nodeinfo" ]; then
    if [ ! -s "$PASSWORD_FILE" ]; then
        echo "devpictl-entrypoint: no root password at $PASSWORD_FILE; refusing to create a cache with an empty root password" >&2
        exit 64
    fi
    mkdir -p "$SERVERDIR"
    # The password travels in the environment of this one process, never in argv.
    DEVPISERVER_ROOT_PASSWD="$(cat "$PASSWORD_FILE")" devpi-init --serverdir "$SERVERDIR"
    rm -f "$PASSWORD_FILE"
fi
if [ ! -s "$SECRETFILE" ]; then
    devpi-gen-secret --secretfile "$SECRETFILE"
fi

exec devpi-server -c /etc/devpi/devpi-server.yml "$@"
