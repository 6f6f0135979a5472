"""On a replica: apply the primary's page policy, and empty the front server's page cache whenever root/pypi's settings change.

A set-upstream on the primary changes root/pypi's mirror settings, refreshes the
pages it cached, and last sets devpictl_pages_generation (devpictl's devpi plugin
declares it). Replication applies these in order, so once the replica's devpi shows
the new settings it also has the new pages, and the front server's cached copies
of old pages must go. The primary's `up`/`set-policy` sets devpictl_page_policy, its
page policy: written here into this replica's policy file, which the plugin reads.
Asks the replica's own devpi every 5 s: a local, cheap call.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

import page_policy

POLICY_FILE = "{{ run_dir }}/{{ page_policy_file }}"


def settings(devpi_port):
    request = urllib.request.Request(f"http://127.0.0.1:{devpi_port}/root/pypi?no_projects=", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer).get("result")
    except (OSError, ValueError):
        return None  # devpi not up yet, or the index not replicated yet


def follow_policy(shared):
    """Write the primary's policy (root/pypi's devpictl_page_policy) into this replica's policy file when it differs."""
    if not shared:
        return  # a primary of before the setting, or one that never set a policy: the file stays
    try:
        wanted = page_policy.Policy.from_dict(json.loads(shared)).to_dict()
    except (ValueError, TypeError) as exc:
        print(f"devpictl-follow-primary: the primary's page policy is unreadable ({exc}): kept this replica's", file=sys.stderr, flush=True)
        return
    try:
        with open(POLICY_FILE, encoding="utf-8") as fh:
            if json.load(fh) == wanted:
                return
    except (OSError, ValueError):
        pass
    new = POLICY_FILE + ".new"
    if os.path.exists(new):
        os.remove(new)  # left by a write that did not finish (0444)
    with open(new, "w", encoding="utf-8") as fh:
        json.dump(wanted, fh, indent=1)
    os.chmod(new, 0o444)
    os.replace(new, POLICY_FILE)
    shown = page_policy.describe(page_policy.Policy.from_dict(wanted))
    print(f"devpictl-follow-primary: the primary's page policy applies: {shown}", file=sys.stderr, flush=True)


def main(devpi_port):
    last = None
    while True:
        result = settings(devpi_port)
        if result is not None:
            follow_policy(result.get("devpictl_page_policy"))
        now = None if result is None else json.dumps(result, sort_keys=True)
        if now is not None and last is not None and now != last:
            subprocess.run(["{{ flush_cache }}"], check=False)
            print(
                "devpictl-follow-primary: root/pypi's settings changed on the primary: emptied the page cache", file=sys.stderr, flush=True
            )
        if now is not None:
            last = now
        time.sleep(5)


if __name__ == "__main__":
    main(sys.argv[1])
