"""Failover chains (`--fallback`): parsing, checks, the server block devpi fetches through, and the plan."""

from __future__ import annotations

import json
import re

import pytest

from devpictl import cache as cache_module
from devpictl import failover, front
from devpictl.errors import BadInput, UnknownMirror
from devpictl.mirrors import CATALOG, OFFICIAL, Upstream
from tests.unit.fakes import FakeEngine

OFFICIAL_URL = "https://official.example/simple"


def chain(*names: str) -> failover.Chain:
    return failover.make_chain(CATALOG[names[0]], tuple(CATALOG[n] for n in names[1:]))


def test_parse_fallbacks():
    assert failover.parse_fallbacks("tuna, bfsu") == (CATALOG["tuna"], CATALOG["bfsu"])
    assert failover.parse_fallbacks("none") == ()
    assert failover.parse_fallbacks("") == ()
    assert failover.parse_fallbacks("https://m.example/simple/")[0].url == "https://m.example/simple"
    with pytest.raises(BadInput, match="not 'fastest'"):
        failover.parse_fallbacks("tuna,fastest")
    with pytest.raises(UnknownMirror):
        failover.parse_fallbacks("tuna,nosuch")


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ((CATALOG["nju"], CATALOG["nju"]), "in the chain twice"),
        ((CATALOG["nju"], Upstream("custom", CATALOG["nju"].url + "/")), "in the chain twice"),
        ((CATALOG["nju"], Upstream("custom", "https://m.example/index")), "does not end in /simple"),
        ((CATALOG["nju"], Upstream("custom", "https://u:p@m.example/simple")), "needs credentials"),
        ((CATALOG["nju"], Upstream("custom", "http://127.0.0.1:3144/nju/simple")), "own failover server"),
    ],
)
def test_chains_refused(members, fragment):
    with pytest.raises(BadInput, match=fragment):
        failover.check_members(members)


def test_the_official_index_may_be_in_a_chain():
    failover.check_members((OFFICIAL, CATALOG["tuna"]))
    assert chain("pypi", "tuna").local_url(OFFICIAL_URL) == "http://127.0.0.1:3144/pypi/simple"


def test_the_local_url_names_the_primary_only():
    assert chain("nju", "tuna").local_url(OFFICIAL_URL) == chain("nju", "bfsu", "tuna").local_url(OFFICIAL_URL)
    assert chain("nju", "tuna").local_url(OFFICIAL_URL) != chain("tuna", "nju").local_url(OFFICIAL_URL)
    custom = failover.make_chain(Upstream("custom", "https://a.example/simple"), (CATALOG["tuna"],))
    other = failover.make_chain(Upstream("custom", "https://b.example/simple"), (CATALOG["tuna"],))
    assert re.fullmatch(r"http://127\.0\.0\.1:3144/custom-[0-9a-f]{10}/simple", custom.local_url(OFFICIAL_URL))
    assert custom.local_url(OFFICIAL_URL) != other.local_url(OFFICIAL_URL)


def test_render_chains_each_upstream_in_order():
    text = failover.render(chain("nju", "tuna", "pypi"), OFFICIAL_URL)
    # Pages: the primary, then each fallback, on errors and 5xx but not on 404 (no such project).
    assert (
        "location ~ ^/[^/]+/simple/ {\n        proxy_pass https://mirror.nju.edu.cn/pypi/web/$devpictl_failover_path;\n        error_page 500 502 503 504 = @page1;"
        in text
    )
    assert (
        "location @page1 {\n        proxy_pass https://pypi.tuna.tsinghua.edu.cn/$devpictl_failover_path;\n        error_page 500 502 503 504 = @page2;"
        in text
    )
    assert "location @page2 {\n        proxy_pass https://official.example/$devpictl_failover_path;\n    }" in text
    # Files: a 404 too, as a mirror a little behind lacks new files.
    assert (
        "location / {\n        proxy_pass https://mirror.nju.edu.cn/pypi/web/$devpictl_failover_path;\n        error_page 404 500 502 503 504 = @file1;"
        in text
    )
    assert "location @file2 {\n        proxy_pass https://official.example/$devpictl_failover_path;\n    }" in text
    # Links to each upstream's root come back to this server.
    for base in ("https://mirror.nju.edu.cn/pypi/web/", "https://pypi.tuna.tsinghua.edu.cn/"):
        assert f"sub_filter '{base}' '/nju/';" in text
    assert "listen 127.0.0.1:3144;" in text
    assert "proxy_ssl_verify on;" in text


def test_a_rewritten_page_links_files_through_the_failover_server():
    """What sub_filter does to a page with absolute links, applied the way nginx applies it."""
    text = failover.render(chain("nju", "tuna"), OFFICIAL_URL)
    rules = re.findall(r"sub_filter '([^']+)' '([^']+)';", text)
    page = '<a href="https://mirror.nju.edu.cn/pypi/web/packages/ab/cd/x-1.0.whl#sha256=00">x</a>'
    for old, new in rules:
        page = page.replace(old, new)
    assert page == '<a href="/nju/packages/ab/cd/x-1.0.whl#sha256=00">x</a>'


def container_with_chain(members: list[dict] | None):
    """A cache whose volume holds a chain.json of ``members`` (None: no chain)."""
    cache = FakeEngine().add("default").cache
    if members is not None:
        cache.files[cache_module.CHAIN_FILE] = json.dumps({"key": "nju", "members": members})
    return cache


NJU_CHAIN = [{"name": "nju", "url": CATALOG["nju"].url, "spec": "nju"}, {"name": "tuna", "url": CATALOG["tuna"].url, "spec": "tuna"}]


def test_plan_without_fallbacks_keeps_or_switches():
    running = front.Front(container_with_chain(None)).running(CATALOG["nju"].url)
    assert failover.plan(running, None, None, [], CATALOG["nju"].url, OFFICIAL_URL) == (None, None)
    assert failover.plan(running, CATALOG["tuna"], None, [], CATALOG["nju"].url, OFFICIAL_URL) == (CATALOG["tuna"], None)


def test_plan_with_fallbacks_given():
    running = front.Front(container_with_chain(None)).running(OFFICIAL_URL)
    target, made = failover.plan(running, CATALOG["nju"], (CATALOG["tuna"],), [], OFFICIAL_URL, OFFICIAL_URL)
    assert made == failover.Chain(CATALOG["nju"], (CATALOG["tuna"],))
    assert target.url == "http://127.0.0.1:3144/nju/simple"
    assert not target.sends_serial_header  # devpi ignores the serial header of what it fetches through the chain


def test_plan_keeps_the_remembered_fallbacks_but_not_the_new_primary():
    running = front.Front(container_with_chain(None)).running(CATALOG["nju"].url)
    _, made = failover.plan(running, CATALOG["tuna"], None, ["tuna", "bfsu"], CATALOG["nju"].url, OFFICIAL_URL)
    assert made == failover.Chain(CATALOG["tuna"], (CATALOG["bfsu"],))


def test_plan_without_a_mirror_keeps_the_running_chains_primary():
    local = "http://127.0.0.1:3144/nju/simple"
    running = front.Front(container_with_chain(NJU_CHAIN)).running(local)
    _, made = failover.plan(running, None, (CATALOG["bfsu"],), ["tuna"], local, OFFICIAL_URL)
    assert made == failover.Chain(CATALOG["nju"], (CATALOG["bfsu"],))
    # `--fallback none`: back to the primary alone.
    assert failover.plan(running, None, (), ["tuna"], local, OFFICIAL_URL) == (CATALOG["nju"], None)


def test_drop_removes_only_a_chain_the_volume_holds():
    cache = container_with_chain(NJU_CHAIN)
    running = front.Front(cache)
    assert running.drop() == ["removed the fallbacks"]
    assert cache.failover_removals == 1 and running.members == []
    assert running.drop() == [] and cache.failover_removals == 1  # gone: nothing more to remove
    assert front.Front(container_with_chain(None)).drop() == []


def test_describe_and_members_read_the_volume():
    members = front.Front(container_with_chain(NJU_CHAIN)).members
    found = failover.describe(members, "http://127.0.0.1:3144/nju/simple")
    assert found.name == "nju+tuna"
    assert [m["name"] for m in members] == ["nju", "tuna"]
    assert front.Front(container_with_chain(None)).members == []


def test_prepare_checks_only_new_upstreams_then_installs():
    cache = container_with_chain(NJU_CHAIN)
    checked: list[str] = []
    actions = front.Front(cache).prepare(chain("nju", "tuna", "bfsu"), OFFICIAL_URL, checked.append)
    assert checked == [CATALOG["bfsu"].url]
    assert actions == ["fallbacks: tuna, bfsu, in that order"]
    [(conf, document)] = cache.installed
    assert json.loads(document)["members"][2]["name"] == "bfsu"
    assert "@page2" in conf


def test_an_image_without_the_failover_include_is_refused():
    cache = FakeEngine().add("default").cache
    cache.failover_supported_answer = False
    with pytest.raises(Exception, match="no failover server: rebuild it"):
        front.Front(cache).install(chain("nju", "tuna"), OFFICIAL_URL)
    assert cache.installed == []


def test_status_says_when_the_upstream_and_every_fallback_are_down():
    from types import SimpleNamespace

    from devpictl.cli.status import describe_fallbacks

    down = {"name": "tuna", "url": CATALOG["tuna"].url, "reachable": False, "problem": "URLError: timed out"}
    up = {**down, "name": "bfsu", "url": CATALOG["bfsu"].url, "reachable": True, "problem": None}
    text = describe_fallbacks(SimpleNamespace(fallbacks=[down, up], upstream_reachable=False))
    assert text == f"tuna {CATALOG['tuna'].url} (not answering: URLError: timed out), then bfsu {CATALOG['bfsu'].url} (answering)"
    text = describe_fallbacks(SimpleNamespace(fallbacks=[down], upstream_reachable=False))
    assert text.endswith("; the upstream and every fallback are down: the cache serves only what it holds")
    assert "every fallback" not in describe_fallbacks(SimpleNamespace(fallbacks=[down], upstream_reachable=True))


def test_a_cache_without_its_front_server_cannot_fail_over():
    cache = FakeEngine().add("default", env=("DEVPICTL_FRONT=0",)).cache  # no chain in its volume
    with pytest.raises(Exception, match="--fallback works in the front server"):
        front.Front(cache).prepare(chain("nju", "tuna"), OFFICIAL_URL, None)


def test_without_drops_the_chosen_primary():
    assert failover.without((CATALOG["tuna"], CATALOG["bfsu"]), CATALOG["tuna"]) == (CATALOG["bfsu"],)
    assert failover.without(None, CATALOG["tuna"]) is None


def test_a_chain_nginx_refuses_leaves_the_running_chain_as_it_was():
    """nginx checks the new server block in a copy of its configuration before anything is replaced."""
    engine = FakeEngine()
    commands: list[list[str]] = []

    def answers(cmd, env):
        commands.append(cmd)
        if cmd[:2] == ["cat", cache_module.CHAIN_FILE]:
            return 0, json.dumps({"members": NJU_CHAIN}).encode()
        if cmd[0] == "grep":
            return 0, b"1\n"
        return cache_module.REFUSED, b'nginx: [emerg] invalid port in "http://a:x/simple/$devpictl_failover_path"\n'

    container = engine.add("default", exec_answers=answers)
    running = front.Front(cache_module.Cache(container))  # the real Cache: the shell it runs is what is checked
    with pytest.raises(BadInput, match="nothing was changed: check the --fallback URLs"):
        running.prepare(chain("nju", "tuna", "bfsu"), OFFICIAL_URL, None)
    assert [m["name"] for m in running.members] == ["nju", "tuna"]  # still the running chain
    (script,) = [cmd[2] for cmd in commands if cmd[:2] == ["sh", "-c"]]
    assert not any("rm -rf" in " ".join(cmd) for cmd in commands)  # the failover server was not removed
    # The check runs on the new block before the mv that would replace the running one.
    assert script.index("-t -c /tmp/nginx/failover-check.conf") < script.index(
        f"mv {cache_module.SERVER_CONF}.new {cache_module.SERVER_CONF}"
    )
