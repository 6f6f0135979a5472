#!/bin/bash
# Entrypoint of the devpictl image: init the server dir once, then run
# devpi-server, behind nginx unless {{ env_front }}=0, and in devpi's offline
# mode (only cached files, no upstream) when {{ env_offline }}=1, and as a replica
# of the devpi at {{ env_primary_url }} when that is set (docs/scale-out.md).
# Everything lives under {{ data_dir }} (a volume), so restarts and re-created
# containers keep the cache, its users and its login secret.
set -euo pipefail
umask 077

SERVERDIR={{ server_dir }}
SECRETFILE={{ server_secret }}
RUNDIR={{ run_dir }}
PORT={{ container_port }}
DEVPI_PORT={{ devpi_port }}
METRICS_PORT={{ metrics_port }}
# The switches devpictl, compose and k8s set.
{# "${ {{- name }}" renders as "${NAME": Jinja's "-" drops the space before it. #}
FRONT="${ {{- env_front }}:-1}"
OFFLINE="${ {{- env_offline }}:-0}"
MAX_BYTES="${ {{- env_max_bytes }}:-0}"
MIRROR_URL="${ {{- env_mirror_url }}:-}"
BALANCE="${ {{- env_balance }}:-}"
PRIMARY_URL="${ {{- env_primary_url }}:-}"
TLS="${ {{- env_tls }}:-}"
READ_AUTH="${ {{- env_read_auth }}:-0}"
TLS_CERT_IN="${ {{- env_tls_cert_file }}:-$RUNDIR/{{ tls_cert_file }}}"
TLS_KEY_IN="${ {{- env_tls_key_file }}:-$RUNDIR/{{ tls_key_file }}}"
FIRST_PAGES="${ {{- env_first_pages }}:-1}"
PASSWORD_FILE="${ {{- env_root_password_file }}:-$RUNDIR/{{ root_password }}}"
# devpi's secret, shared by a primary and its replicas (they sign replication
# requests with it): a file devpictl hands in, or a secret mount (compose, k8s).
SHARED_SECRET="${ {{- env_secret_file }}:-$RUNDIR/{{ replica_secret }}}"

# `up --tls`: a certificate and key devpictl handed in (or secret mounts) go into the
# volume, readable by devpi's user alone; a handed-in file then goes from the run dir.
# Then how the front server listens (HTTP, or HTTPS with plain HTTP redirected or
# refused) and, with "auth", whether reading needs a login: nginx includes these lines.
write_access_conf() {
    if [ -s "$TLS_CERT_IN" ] && [ -s "$TLS_KEY_IN" ]; then
        mkdir -p {{ tls_dir }} && chmod 0700 {{ tls_dir }}
        cp "$TLS_KEY_IN" {{ tls_key }}.new && cp "$TLS_CERT_IN" {{ tls_cert }}.new
        chmod 0600 {{ tls_key }}.new {{ tls_cert }}.new
        mv {{ tls_key }}.new {{ tls_key }} && mv {{ tls_cert }}.new {{ tls_cert }}
    fi
    rm -f "$RUNDIR/{{ tls_cert_file }}" "$RUNDIR/{{ tls_key_file }}" 2>/dev/null || true
    {
        if [ -n "$TLS" ]; then
            if [ ! -s {{ tls_cert }} ] || [ ! -s {{ tls_key }} ]; then
                echo "devpictl-entrypoint: {{ env_tls }} is set but {{ tls_dir }} holds no certificate and key: run \`devpictl up --tls ...\` again" >&2
                exit 64
            fi
            echo "listen $PORT ssl reuseport;"
            echo "ssl_certificate {{ tls_cert }};"
            echo "ssl_certificate_key {{ tls_key }};"
            echo "ssl_protocols TLSv1.2 TLSv1.3;"
            echo "ssl_session_cache shared:tls:10m;"
            echo "ssl_session_timeout 1d;"
            # nginx answers plain HTTP on an HTTPS port with its error 497 (400 to the client: refused).
            if [ "$TLS" = "redirect" ]; then
                echo 'error_page 497 =308 https://$http_host$request_uri;'
            fi
        else
            echo "listen $PORT reuseport;"
        fi
        if [ "${1:-}" = "auth" ] && [ "$READ_AUTH" = "1" ]; then
            echo "auth_request {{ authcheck_path }};"
        fi
    } > {{ front_access_conf }}
}

# The load-balancing front of `devpictl export compose`: nginx alone, before the
# replicas {{ env_balance }} names (host:port, space-separated).
if [ -n "$BALANCE" ]; then
    mkdir -p {{ nginx_dir }}
    for server in $BALANCE; do
        echo "server $server max_fails=2 fail_timeout=5s;"
    done > {{ balancer_servers }}
    # HTTPS ends here; the replicas behind it check the logins (--read-auth).
    write_access_conf
    exec nginx -e stderr -c {{ balancer_conf }} -g 'daemon off;'
fi

# Files devpictl copies into the container before its first start; they are
# read here rather than passed as environment, so `docker inspect` shows none.
if [ -s "$RUNDIR/{{ ca_bundle }}" ]; then
    export REQUESTS_CA_BUNDLE="$RUNDIR/{{ ca_bundle }}" SSL_CERT_FILE="$RUNDIR/{{ ca_bundle }}"
fi
if [ -s "$RUNDIR/{{ proxy_env }}" ]; then
    set -a
    . "$RUNDIR/{{ proxy_env }}"
    set +a
fi

if [ -s "$SHARED_SECRET" ] && ! cmp -s "$SHARED_SECRET" "$SECRETFILE"; then
    # devpi insists on a 0600 file in a directory only its user may write.
    cp "$SHARED_SECRET" "$SECRETFILE.new" && chmod 0600 "$SECRETFILE.new" && mv "$SECRETFILE.new" "$SECRETFILE"
fi
# A file devpictl handed in goes once it is in the volume; a read-only secret mount stays.
[ "$SHARED_SECRET" = "$RUNDIR/{{ replica_secret }}" ] && rm -f "$SHARED_SECRET" 2>/dev/null || true

if [ -n "$PRIMARY_URL" ] && [ ! -e "$SERVERDIR/.nodeinfo" ]; then
    if [ ! -s "$SECRETFILE" ]; then
        echo "devpictl-entrypoint: a replica needs its primary's secret (\`devpictl password --replica-secret FILE\` on the primary); none was handed in" >&2
        exit 64
    fi
    mkdir -p "$SERVERDIR"
    # A replica has no users of its own: they, and everything else, come from the primary.
    devpi-init --serverdir "$SERVERDIR" --primary-url "$PRIMARY_URL"
elif [ ! -e "$SERVERDIR/.nodeinfo" ]; then
    password=""
    if [ -f "$PASSWORD_FILE" ]; then
        password="$(cat "$PASSWORD_FILE")"
    fi
    if [ -z "$password" ]; then
        echo "devpictl-entrypoint: no root password in $PASSWORD_FILE; refusing to create a cache with an empty root password" >&2
        exit 64
    fi
    mkdir -p "$SERVERDIR"
    # The password travels in the environment of this one process, never in argv.
    DEVPISERVER_ROOT_PASSWD="$password" devpi-init --serverdir "$SERVERDIR"
    unset password
    # A file devpictl handed in goes; a read-only secret mount stays.
    rm -f "$PASSWORD_FILE" 2>/dev/null || true
fi
if [ ! -s "$SECRETFILE" ]; then
    devpi-gen-secret --secretfile "$SECRETFILE"
fi

# Behind its front server every cache can take replicas: the front server lets only
# requests signed for a replica read devpi's changelog (it holds users' password
# hashes). Without the front server devpi would show it to anyone, so no role.
if [ -n "$PRIMARY_URL" ]; then
    set -- "$@" --primary-url "$PRIMARY_URL"
elif [ "$FRONT" = "1" ]; then
    set -- "$@" --role primary
fi
if [ "$OFFLINE" = "1" ]; then
    set -- "$@" --offline-mode
fi

# `up --max-size`: keep the mirrored files under the limit, least recently used
# out first (templates/prune.py); a minute after start, then every 10 minutes.
if [ "$MAX_BYTES" != "0" ] && [ -f {{ prune_script }} ]; then
    (
        sleep 60
        while :; do
            python3 {{ prune_script }} --max-bytes "$MAX_BYTES" >/dev/null \
                || echo "devpictl-entrypoint: pruning to $MAX_BYTES bytes failed" >&2
            sleep 600
        done
    ) &
fi

# `devpictl export`: a primary sets its own upstream (templates/set-mirror.py).
if [ -n "$MIRROR_URL" ] && [ -z "$PRIMARY_URL" ]; then
    devpi_port="$DEVPI_PORT"
    [ "$FRONT" = "1" ] || devpi_port="$PORT"
    python3 {{ set_mirror_script }} "$devpi_port" &
fi

if [ "$FRONT" != "1" ]; then
    exec devpi-server -c {{ server_config }} --host 0.0.0.0 --port "$PORT" "$@"
fi

if ! command -v nginx >/dev/null; then
    echo "devpictl-entrypoint: this image has no nginx: rebuild it with the front server, or run \`devpictl up --no-front\`" >&2
    exit 64
fi

write_access_conf auth

# Pages and files in their first fetch are kept in the container; core metadata,
# which never changes, in the volume (see nginx.conf).
mkdir -p {{ page_cache }} {{ file_cache }} {{ metadata_cache }} {{ range_cache }} {{ auth_cache }}
{{ flush_cache }} --starting
# The container's name servers, for the failover server's upstreams: nginx resolves them
# per request, so a mirror whose name stops resolving fails over instead of stopping nginx.
servers="$(awk '/^nameserver/ { a = $2; if (a ~ /:/) a = "[" a "]"; printf "%s ", a }' /etc/resolv.conf 2>/dev/null || true)"
echo "resolver ${servers:-127.0.0.11} valid=10s;" > {{ resolver_conf }}
# ... and the trust bundle it checks them with: the one devpictl handed in, else the system's.
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$RUNDIR/{{ ca_bundle }}" ] && ca="$RUNDIR/{{ ca_bundle }}"
ln -sf "$ca" {{ failover_ca }}

# The metrics (/+devpictl/metrics) and the size and hit ratio of the page at /:
# templates/metrics.py counts the request lines nginx sends it and the volume's
# size. Started first, so nginx's first lines are counted; brought back if it ends.
keep_metrics() {
    while :; do
        python3 {{ metrics_script }} --port "$METRICS_PORT" \
            || echo "devpictl-entrypoint: the metrics ended; starting them again" >&2
        sleep 5
    done
}
keep_metrics &
metrics_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT") 2>/dev/null && break
    sleep 0.1
done

devpi-server -c {{ server_config }} --host 127.0.0.1 --port "$DEVPI_PORT" "$@" &
devpi_pid=$!
# The mirror's first pages from the front (templates/first_pages.py), on a primary that
# fetches from its upstream. A replica's pages must be the ones its primary recorded, and an
# offline cache has no upstream: there devpi answers them, as it does with the switch off.
first_pages_pid=""
if [ "$FIRST_PAGES" = "1" ] && [ -z "$PRIMARY_URL" ] && [ "$OFFLINE" != "1" ]; then
    # devpi itself while first_pages.py is down (being started again): a miss is slower, never a 502.
    printf 'server 127.0.0.1:{{ first_pages_port }};\nserver 127.0.0.1:%s backup;\n' "$DEVPI_PORT" > {{ first_pages_conf }}
    echo 'map "" $first_pages_on { default 1; }' > {{ first_pages_on_conf }}
    keep_first_pages() {
        while :; do
            python3 {{ first_pages_script }} || echo "devpictl-entrypoint: the front's first pages ended; starting them again" >&2
            sleep 1
        done
    }
    keep_first_pages &
    first_pages_pid=$!
else
    echo "server 127.0.0.1:$DEVPI_PORT;" > {{ first_pages_conf }}
    echo 'map "" $first_pages_on { default 0; }' > {{ first_pages_on_conf }}
fi
nginx -e stderr -c {{ nginx_conf }} -g 'daemon off;' &
nginx_pid=$!
# A replica empties its page cache when the primary's mirror settings change
# (set-upstream there), so it never keeps serving the old upstream's links.
follow_pid=""
if [ -n "$PRIMARY_URL" ]; then
    python3 {{ follow_primary_script }} "$DEVPI_PORT" &
    follow_pid=$!
fi
trap 'kill -TERM "$devpi_pid" "$nginx_pid" "$metrics_pid" $follow_pid $first_pages_pid 2>/dev/null || true' TERM INT
# devpi and nginx run as one unit: when either ends, stop the other, and let the
# restart policy bring both back.
set +e
wait -n "$devpi_pid" "$nginx_pid"
status=$?
kill -TERM "$devpi_pid" "$nginx_pid" "$metrics_pid" $follow_pid $first_pages_pid 2>/dev/null
wait
exit "$status"
