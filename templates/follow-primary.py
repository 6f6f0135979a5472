"""On a replica: empty the front server's page cache whenever root/pypi's settings change.

A set-upstream on the primary changes root/pypi's mirror settings, refreshes the
pages it cached, and last sets devpictl_pages_generation (devpictl's devpi plugin
declares it). Replication applies these in order, so once the replica's devpi shows
the new settings it also has the new pages, and the front server's cached copies
of old pages must go. Asks the replica's own devpi every 5 s: a local, cheap call.
"""

import json
import subprocess
import sys
import time
import urllib.request

URL = f"http://127.0.0.1:{sys.argv[1]}/root/pypi?no_projects="


def settings():
    request = urllib.request.Request(URL, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.dumps(json.load(answer).get("result"), sort_keys=True)
    except (OSError, ValueError):
        return None  # devpi not up yet, or the index not replicated yet


last = None
while True:
    now = settings()
    if now is not None and last is not None and now != last:
        subprocess.run(["{{ flush_cache }}"], check=False)
        print("devpictl-follow-primary: root/pypi's settings changed on the primary: emptied the page cache", file=sys.stderr, flush=True)
    if now is not None:
        last = now
    time.sleep(5)
