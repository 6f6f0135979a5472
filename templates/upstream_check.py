"""Asks an upstream from inside the cache container (devpictl/probe.py runs it with the image's Python).

Run inside the container, so the check sees the network, proxy and CA
bundle that devpi itself will use. The URL arrives in the environment. It prints
one JSON line: a page's final URL and text, or ({{ env_check_what }}=digest) a
file's HTTP status and sha256; or, exit code 1, why nothing answered.
"""

import hashlib
import json
import os
import shlex
import signal
import ssl
import sys
import urllib.error
import urllib.request

run = "{{ run_dir }}"
if os.path.exists(run + "/{{ proxy_env }}"):
    for item in shlex.split(open(run + "/{{ proxy_env }}").read()):
        k, _, v = item.partition("=")
        os.environ[k] = v
ca = run + "/{{ ca_bundle }}"
ctx = ssl.create_default_context(cafile=ca if os.path.exists(ca) else None)
url = os.environ["{{ env_check_url }}"]
headers = {"Accept": "text/html", "User-Agent": "pip/24.0 devpictl"}
# The upstream's credentials, kept out of the URL (and so out of devpi's config and every message).
try:
    entries = json.load(open(run + "/{{ upstream_auth }}"))
except (OSError, ValueError):
    entries = {}
for prefix, authorization in entries.items():
    if url.startswith(prefix.rstrip("/") + "/"):
        headers["Authorization"] = authorization
req = urllib.request.Request(url, headers=headers)
timeout = float(os.environ.get("{{ env_check_timeout }}", "20"))


def give_up(signum, frame):
    raise TimeoutError(f"no answer within {timeout:g} s")


# urlopen's timeout bounds each socket call, not name resolution or a slow trickle.
signal.signal(signal.SIGALRM, give_up)
signal.setitimer(signal.ITIMER_REAL, timeout + 0.5)
digest = os.environ.get("{{ env_check_what }}") == "digest"
try:
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
        body, status, final = resp.read(), resp.status, resp.geturl()
except urllib.error.HTTPError as exc:
    if not digest:
        print(type(exc).__name__ + ": " + str(exc.reason))
        sys.exit(1)
    body, status, final = b"", exc.code, exc.url
except Exception as exc:
    print(type(exc).__name__ + ": " + str(getattr(exc, "reason", exc)))
    sys.exit(1)
if digest:
    print(json.dumps({"status": status, "sha256": hashlib.sha256(body).hexdigest()}))
else:
    print(json.dumps({"url": final, "text": body.decode("utf-8", "replace")}))
