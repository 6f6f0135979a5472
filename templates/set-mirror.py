"""At start of a primary made by `devpictl export`: point root/pypi at {{ env_mirror_url }}.

devpictl sets the upstream through devpi's API after `up`; in compose or Kubernetes
nobody runs devpictl, so the container does it itself, logged in as root with the
password from its secret file. Idempotent: nothing is changed when all is set.
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = f"http://127.0.0.1:{sys.argv[1]}"
WANTED = {
    "mirror_url": os.environ["{{ env_mirror_url }}"],
    # most mirrors send no PyPI serial header; devpictl up sets the same
    "mirror_ignore_serial_header": True,
    "mirror_no_project_list": True,
}


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Accept": "application/json", "Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)["result"]


for _ in range(600):
    try:
        call("GET", "/+api")
        break
    except (OSError, ValueError):
        time.sleep(1)
with open(os.environ["{{ env_root_password_file }}"], encoding="utf-8") as fh:
    password = fh.read().strip()
token = call("POST", "/+login", {"user": "root", "password": password})["password"]
auth = {"X-Devpi-Auth": base64.b64encode(f"root:{token}".encode()).decode()}
have = call("GET", "/root/pypi?no_projects=")
changes = [f"{key}={value}" for key, value in WANTED.items() if str(have.get(key)).rstrip("/").lower() != str(value).rstrip("/").lower()]
if changes:
    call("PATCH", "/root/pypi", changes, auth)
    print(f"devpictl-set-mirror: root/pypi now fetches from {WANTED['mirror_url']}", file=sys.stderr, flush=True)
