"""The image's layout, named once: its ports, paths, environment switches and files.

devpictl's Python takes these names from here. Every template, the shell and Python
files the image runs included, is rendered with them (``values()``: each name in
lower case, ``{{ run_dir }}``); tests/unit/test_layout.py fails when a template
spells one out.
"""

from __future__ import annotations

from dataclasses import dataclass

# Ports in the container.
CONTAINER_PORT = 3141  # the front server, or devpi itself without one: the port a cache publishes
DEVPI_PORT = 3142  # devpi behind the front server, on the container's loopback
AUTHCHECK_PATH = "/+devpictl/authcheck"  # devpictl's devpi plugin: 200 for a logged-in request, else 401 (--read-auth)
METRICS_PORT = 3143  # templates/metrics.py on the container's loopback: lines in by udp, answers by tcp
FAILOVER_PORT = 3144  # the failover server (`--fallback`), on the container's loopback
FIRST_PAGES_PORT = 3145  # templates/first_pages.py: the front's answers for pages devpi has not recorded yet
DEVPI_UID = 3141  # devpi's user and group

VENV = "/opt/devpi"  # devpi-server and its plugins
PYTHON = f"{VENV}/bin/python"

# The data volume: what a re-created container keeps.
DATA_DIR = "/data"
SERVER_DIR = f"{DATA_DIR}/server"  # devpi's --serverdir
SERVER_SECRET = f"{DATA_DIR}/secret"  # devpi's --secretfile
FILES_DIR = f"{SERVER_DIR}/+files"  # stored files, at the path of their URL
MIRROR_FILES = f"{FILES_DIR}/root/pypi/+f"  # the mirror's files: the only ones pruning removes
FAILOVER_DIR = f"{DATA_DIR}/failover"  # the failover server block and its chain (devpictl/failover.py)
METADATA_CACHE = f"{DATA_DIR}/front-cache/metadata"  # the front server's core metadata: it never changes for a file
RANGE_CACHE = f"{DATA_DIR}/front-cache/ranges"  # ranges of mirror files the cache does not hold (uv's reads), and their HEADs
TLS_DIR = f"{DATA_DIR}/tls"  # the front server's certificate and key (`up --tls`), devpi's user alone may read them
TLS_CERT = f"{TLS_DIR}/cert.pem"
TLS_KEY = f"{TLS_DIR}/key.pem"

# The run dir: files devpictl hands in before the first start (read there, so no
# `docker inspect` shows them), and what the entrypoint writes for nginx.
RUN_DIR = "/run/devpictl"
ROOT_PASSWORD = "root-password"  # devpi-init's, for a volume it has not set up; gone after init
REPLICA_SECRET = "devpi-secret"  # the primary's secret; the entrypoint moves it into the volume
CA_BUNDLE = "ca-bundle.pem"  # what the cache trusts for its upstream (--ca-bundle)
PROXY_ENV = "proxy.env"  # the proxy variables of `up`'s environment
PAGE_POLICY_FILE = "page-policy.json"  # the page policy (`up --min-release-age`, `set-policy`), read by the plugin
TLS_CERT_FILE = "tls-cert.pem"  # the certificate (and chain) to serve; the entrypoint moves it into TLS_DIR
TLS_KEY_FILE = "tls-key.pem"  # ... and its key
UPSTREAM_AUTH = "upstream-auth.json"  # {"URL": "Basic ..."}, read by devpictl's devpi plugin and the upstream check
PAGES_GENERATION_CONF = f"{RUN_DIR}/nginx-generation.conf"  # a new value makes every cached page a miss
FRONT_ACCESS_CONF = f"{RUN_DIR}/front-access.conf"  # the front server's listen, TLS and login lines, from the switches
RESOLVER_CONF = f"{RUN_DIR}/resolver.conf"  # the failover server's name servers
FAILOVER_CA = f"{RUN_DIR}/failover-ca.pem"  # the bundle the failover server checks upstreams with
FIRST_PAGES_CONF = f"{RUN_DIR}/first-pages.conf"  # where nginx sends page misses: first_pages.py, or devpi itself
FIRST_PAGES_ON_CONF = f"{RUN_DIR}/first-pages-on.conf"  # $first_pages_on: 1 when first_pages.py runs (nginx sends it whole-file misses too)
WHOLE_FILE_LOCATION = "whole_file"  # nginx's named location that fetches a whole mirror file through devpi

# nginx's pid, temporary files, and its caches that need not outlive the container.
NGINX_DIR = "/tmp/nginx"
PAGE_CACHE = f"{NGINX_DIR}/cache"  # installer pages, for the mirror's cache expiry
FILE_CACHE = f"{NGINX_DIR}/files"  # files in their first fetch
BALANCER_SERVERS = f"{NGINX_DIR}/balancer-servers.conf"
# `--read-auth`'s answers, keyed by the credentials they are for: in the container's memory (its tmpfs), never on a disk.
AUTH_CACHE = "/dev/shm/devpictl-auth"  # the replicas of the load-balancing front

# Where the image keeps what the build context brings.
BUILD_DIR = "/tmp/devpictl"  # build-only inputs, in the install stage alone
LIB_DIR = "/usr/local/lib/devpictl"
CONFIG_DIR = "/etc/devpictl"
WWW_DIR = f"{CONFIG_DIR}/www"
SERVER_CONFIG = "/etc/devpi/devpi-server.yml"
NGINX_CONF = f"{CONFIG_DIR}/nginx.conf"
BALANCER_CONF = f"{CONFIG_DIR}/balancer.conf"
ENTRYPOINT = "/usr/local/bin/devpictl-entrypoint"
HEALTH_CHECK_SCRIPT = f"{LIB_DIR}/healthcheck.py"  # HTTP or HTTPS, as the container's switches say
FLUSH_CACHE = "/usr/local/bin/devpictl-flush-cache"  # makes every cached page a miss
PRUNE_SCRIPT = f"{LIB_DIR}/prune.py"
METRICS_SCRIPT = f"{LIB_DIR}/metrics.py"
SET_MIRROR_SCRIPT = f"{LIB_DIR}/set-mirror.py"
FOLLOW_PRIMARY_SCRIPT = f"{LIB_DIR}/follow-primary.py"
FIRST_PAGES_SCRIPT = f"{LIB_DIR}/first_pages.py"
APT_MIRROR_SCRIPT = f"{LIB_DIR}/apt-mirror.sh"

# Environment switches: set on the container (`up`, compose, k8s) and read by the entrypoint.
ENV_FRONT = "DEVPICTL_FRONT"  # "0": devpi alone, no front server
ENV_OFFLINE = "DEVPICTL_OFFLINE"  # "1": devpi's --offline-mode
ENV_MAX_BYTES = "DEVPICTL_MAX_BYTES"  # prune mirrored files beyond this size; "0": never
ENV_PRIMARY_URL = "DEVPICTL_PRIMARY_URL"  # run devpi as a replica of this URL
ENV_ROOT_PASSWORD_FILE = "DEVPICTL_ROOT_PASSWORD_FILE"  # a secret mount instead of the run dir's root-password
ENV_SECRET_FILE = "DEVPICTL_SECRET_FILE"  # a secret mount instead of the run dir's devpi-secret
ENV_MIRROR_URL = "DEVPICTL_MIRROR_URL"  # an exported primary sets this upstream (templates/set-mirror.py)
ENV_TLS = "DEVPICTL_TLS"  # HTTPS on the cache's port; plain HTTP there is "redirect"-ed or "refuse"-d; unset: HTTP
ENV_READ_AUTH = "DEVPICTL_READ_AUTH"  # "1": reading needs a login (`up --read-auth`)
ENV_TLS_CERT_FILE = "DEVPICTL_TLS_CERT_FILE"  # a secret mount instead of the run dir's tls-cert.pem (compose, k8s)
ENV_TLS_KEY_FILE = "DEVPICTL_TLS_KEY_FILE"  # ... and of tls-key.pem
ENV_FIRST_PAGES = "DEVPICTL_FIRST_PAGES"  # "0": page misses go to devpi, as before first_pages.py
ENV_BALANCE = "DEVPICTL_BALANCE"  # nginx alone, balancing over these replicas (host:port, space-separated)
# ... and what devpictl/probe.py hands templates/upstream_check.py.
ENV_CHECK_URL = "DEVPICTL_CHECK_URL"
ENV_CHECK_TIMEOUT = "DEVPICTL_CHECK_TIMEOUT"
ENV_CHECK_WHAT = "DEVPICTL_CHECK_WHAT"  # "digest": a file's status and sha256 instead of a page


@dataclass(frozen=True)
class ImageFile:
    """A file of the build context and where the image keeps it."""

    name: str  # in the build context; the template of the same name, unless devpictl/image.py makes it
    path: str
    executable: bool = False


# In the install stage: devpictl's devpi plugin, and the build's own inputs.
PLUGIN = ImageFile("devpictl_mirror_auth.py", f"{BUILD_DIR}/plugin/devpictl_mirror_auth.py")
# The plugin's page policy part (upload times, the policy tween), which it imports: beside it in devpi's site-packages.
PLUGIN_PAGES = ImageFile("devpictl_pages.py", f"{BUILD_DIR}/plugin/devpictl_pages.py")
# devpictl/page_policy.py, which the plugin and the front's first-page responder import: beside the plugin in devpi's site-packages.
PAGE_POLICY = ImageFile("page_policy.py", f"{BUILD_DIR}/plugin/page_policy.py")
BUILD_CA_BUNDLE = ImageFile(CA_BUNDLE, f"{BUILD_DIR}/{CA_BUNDLE}")
WHEELHOUSE = ImageFile("wheelhouse/", f"{BUILD_DIR}/wheelhouse/")
# In every image, and in images with the front server (nginx).
SERVER_FILES = (
    ImageFile("devpi-server.yml", SERVER_CONFIG),
    ImageFile("entrypoint.sh", ENTRYPOINT, executable=True),
    ImageFile("prune.py", PRUNE_SCRIPT),
    ImageFile("metrics.py", METRICS_SCRIPT),
    ImageFile("frontlog.py", f"{LIB_DIR}/frontlog.py"),  # devpictl/frontlog.py, beside metrics.py which imports it
    ImageFile("set-mirror.py", SET_MIRROR_SCRIPT),
    ImageFile("healthcheck.py", HEALTH_CHECK_SCRIPT),
)
FRONT_FILES = (
    ImageFile("nginx.conf", NGINX_CONF),
    ImageFile("index.html", f"{WWW_DIR}/index.html"),
    ImageFile("flush-cache.sh", FLUSH_CACHE, executable=True),
    ImageFile("follow-primary.py", FOLLOW_PRIMARY_SCRIPT),
    ImageFile("first_pages.py", FIRST_PAGES_SCRIPT),
    ImageFile("balancer.conf", BALANCER_CONF),
)
APT_MIRROR_FILE = ImageFile("apt-mirror.sh", APT_MIRROR_SCRIPT, executable=True)  # with --apt-mirror, before nginx is installed


def values() -> dict[str, object]:
    """Every name above in lower case, as the templates know them."""
    return {name.lower(): value for name, value in globals().items() if name.isupper()}
