"""devpictl's devpi plugin (templates/devpictl_mirror_auth.py): what a switch does to the cached pages, and the front's stale pages.

Its views and hooks are called here as devpi's pyramid calls them, on stand-ins for the
parts of devpi's MirrorStage they use; tests/integration/test_switch_outage.py runs them in devpi.
"""

from __future__ import annotations

import contextlib
import json
from types import SimpleNamespace

import pytest

from devpictl.mirrors import OFFICIAL
from tests.unit.fakes import ROOT_PASSWORD, FakeDevpi, configured, devpi_plugin

STORED = "root/pypi/+f/8ab/b2f1d86890a2d/six-1.16.0-py2.py3-none-any.whl#sha256=8abb"
NEVER_FETCHED = "root/pypi/+f/1e6/1c37477a1a4b/six-1.15.0-py2.py3-none-any.whl#sha256=1e61"
SIX_PAGE = {
    "links": [("six-1.16.0-py2.py3-none-any.whl", STORED), ("six-1.15.0-py2.py3-none-any.whl", NEVER_FETCHED)],
    "requires_python": [">=2.7", ">=2.7"],
    "yanked": [None, None],
    "serial": 2024,
    "etag": '"old-upstream"',
}


class FakeKey:
    """A keyfs key of devpi: a page's stored links."""

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value

    def set(self, value):
        assert type(value) is dict  # devpi refuses its own read-only views
        self.value = value


class FakeStage:
    """The parts of devpi's MirrorStage that the plugin's views use."""

    def __init__(self, pages, *, kind="mirror", no_project_list=True):
        self.name = "root/pypi"
        self.ixconfig = {"type": kind}
        self.no_project_list = no_project_list
        self.keys = {project: FakeKey(page) for project, page in pages.items()}
        self.expired: list[str] = []
        self.cache_retrieve_times = SimpleNamespace(expire=self.expired.append)

    def list_projects_perstage(self):
        return frozenset(self.keys)

    def key_projsimplelinks(self, project):
        return self.keys[project]

    def page(self, project):
        return self.keys[project].value


@pytest.fixture
def plugin(tmp_path):
    """The plugin, its files directory here, holding the one stored six wheel (and a file devpi is writing)."""
    module = devpi_plugin()
    module.FILES_DIR = str(tmp_path)
    for relpath in (STORED.partition("#")[0], "root/pypi/+f/1e6/1c37477a1a4b/.six-1.15.0-py2.py3-none-any.whl-tmp"):
        (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relpath).write_bytes(b"wheel")
    return module


def call(view, stage: FakeStage) -> tuple[int, dict]:
    request = SimpleNamespace(response=SimpleNamespace())
    response = view(SimpleNamespace(stage=stage), request)
    assert response.content_type == "application/json"
    return response.status_code, json.loads(response.body)


def joined(page) -> set[tuple]:
    """The page's links as devpi compares them with a new fetch's (model.join_links_data)."""
    return {(*link, rp, yanked) for link, rp, yanked in zip(page["links"], page["requires_python"], page["yanked"], strict=True)}


class TestMarkedPage:
    def test_only_links_to_stored_files_stay_and_the_old_upstreams_serial_and_etag_go(self):
        page = devpi_plugin().marked_page(SIX_PAGE, lambda href: href == STORED, 1700000000.5)
        assert page == {
            "links": [("six-1.16.0-py2.py3-none-any.whl", STORED)],
            "requires_python": [">=2.7"],
            "yanked": [False],
            "serial": -1,
            "etag": None,
            "devpictl_switched_at": 1700000000,
        }

    def test_a_page_without_stored_files_is_not_kept(self):
        plugin = devpi_plugin()
        assert plugin.marked_page(SIX_PAGE, lambda href: False, 0) is None
        assert plugin.marked_page({}, lambda href: True, 0) is None

    @pytest.mark.parametrize("yanked, marked", [(None, False), ("", True), (True, "")])
    def test_every_link_differs_from_what_an_upstream_gives_and_is_served_alike(self, yanked, marked):
        """devpi takes False for "not yanked" and renders True and "" alike (views.py), so installers see the
        same page; but the links differ from the next fetch's, so devpi maps every file to the new upstream."""
        original = {**SIX_PAGE, "yanked": [yanked, yanked]}
        page = devpi_plugin().marked_page(original, lambda href: True, 0)
        assert page["yanked"] == [marked, marked]
        assert not joined(page) & joined(original)

    def test_a_yanked_reason_is_kept_as_it_is(self):
        original = {**SIX_PAGE, "yanked": ["broken", None]}
        assert devpi_plugin().marked_page(original, lambda href: True, 0)["yanked"] == ["broken", False]


class TestExpirePagesView:
    """POST /{user}/{index}/+devpictl/expire-pages."""

    def test_every_cached_page_is_marked_in_the_one_request(self, plugin):
        stage = FakeStage({"six": SIX_PAGE, "pip": {**SIX_PAGE, "links": [("pip-24.0.tar.gz", "root/pypi/+f/aaa/bbb/pip-24.0.tar.gz")]}})
        assert call(plugin.expire_pages, stage) == (200, {"type": "expired-pages", "result": {"expired": 2, "kept": 1}})
        assert sorted(stage.expired) == ["pip", "six"]  # when each was fetched, and its ETag, forgotten
        assert stage.page("six")["links"] == [("six-1.16.0-py2.py3-none-any.whl", STORED)]
        assert stage.page("pip") == {}  # no stored file: emptied, as devpi's refresh does

    def test_a_page_marked_before_stays_as_it_is(self, plugin):
        stage = FakeStage({"six": SIX_PAGE})
        call(plugin.expire_pages, stage)
        first = stage.page("six")
        assert call(plugin.expire_pages, stage)[1]["result"] == {"expired": 1, "kept": 1}
        assert stage.page("six") is first and stage.expired == ["six", "six"]

    def test_a_mirror_listing_its_upstreams_projects_is_refused(self, plugin):
        stage = FakeStage({"six": SIX_PAGE}, no_project_list=False)
        status, body = call(plugin.expire_pages, stage)
        assert status == 409 and "mirror_no_project_list" in body["message"]
        assert stage.page("six") is SIX_PAGE and stage.expired == []

    def test_not_a_mirror(self, plugin):
        stage = FakeStage({"mine": SIX_PAGE}, kind="stage")
        assert call(plugin.expire_pages, stage)[0] == 400 and stage.page("mine") is SIX_PAGE


def test_the_stored_files_are_read_from_the_disk_in_one_walk(plugin):
    found = plugin.stored_files("root/pypi")
    assert STORED.partition("#")[0] in found and NEVER_FETCHED.partition("#")[0] not in found
    assert plugin.stored_files("team/dev") == set()


class TestCountPagesView:
    """GET /{user}/{index}/+devpictl/pages, which `status` reads."""

    def test_counts_the_pages_still_from_the_previous_upstream(self, plugin):
        stage = FakeStage({"six": SIX_PAGE, "pip": SIX_PAGE, "gone": {}})
        assert call(plugin.count_pages, stage)[1]["result"] == {"cached": 3, "marked": 0}
        call(plugin.expire_pages, stage)
        assert call(plugin.count_pages, stage)[1]["result"] == {"cached": 3, "marked": 2}

    def test_what_devpictl_reads(self):
        server = FakeDevpi(configured(OFFICIAL))
        with server.client() as client:
            assert client.page_counts() is None  # an image without the request
        server.page_counts = {"cached": 3, "marked": 2}
        with server.client() as client:
            counts = client.page_counts()
        assert (counts.cached, counts.from_previous_upstream) == (3, 2)


def configure(replica: bool, offline: bool = False) -> tuple[list, list, list, list]:
    """The plugin's pyramid hook on a primary or a replica: (routes, views, tweens, key-change subscribers)."""
    routes, views, tweens, subscribers = [], [], [], []
    keyfs = SimpleNamespace(PROJSIMPLELINKS=SimpleNamespace(on_key_change=subscribers.append))
    xom = SimpleNamespace(is_replica=lambda: replica, keyfs=keyfs, config=SimpleNamespace(offline_mode=offline))
    config = SimpleNamespace(
        add_route=lambda *a: routes.append(a),
        add_view=lambda *a, **k: views.append(k),
        add_tween=tweens.append,
        registry={"xom": xom},
    )
    with fake_devpi_mirror():
        devpi_plugin().devpiserver_pyramid_configure(config=None, pyramid_config=config)
    return routes, views, tweens, subscribers


@contextlib.contextmanager
def fake_devpi_mirror():
    """devpi_server.mirror's two functions the plugin wraps, as a module of that name while the block runs."""
    import sys
    import types

    module = types.ModuleType("devpi_server.mirror")
    module.parse_index_v1_json = lambda disturl, text: [f["filename"] for f in json.loads(text)["files"]]  # type: ignore[attr-defined]

    class MirrorStage:
        """A mirror whose upstream answers a HEAD of the files in ``last_modified`` ({URL: Last-Modified}) with 200, others 404."""

        offline = False

        def __init__(self):
            self.keys = {}
            self.last_modified: dict[str, str] = {}
            self.heads: list[str] = []
            self.http = SimpleNamespace(stream=self._head)

        def key_projsimplelinks(self, project):
            return self.keys.setdefault(project, FakeKey({}))

        def _entry_from_href(self, href):
            return SimpleNamespace(url="http://up/files/" + href.partition("#")[0].rsplit("/", 1)[-1])

        def _head(self, cstack, method, url, *, allow_redirects, timeout):
            assert method == "HEAD" and allow_redirects
            self.heads.append(url)
            found = self.last_modified.get(url)
            return SimpleNamespace(status_code=200 if found else 404, headers={"Last-Modified": found} if found else {})

        def _save_cache_links(self, project, links, requires_python, yanked, serial, etag):
            self.key_projsimplelinks(project).set({"links": links, "serial": serial})

    module.MirrorStage = MirrorStage  # type: ignore[attr-defined]
    saved = sys.modules.get("devpi_server.mirror")
    sys.modules["devpi_server.mirror"] = module
    try:
        yield module
    finally:
        if saved is None:
            sys.modules.pop("devpi_server.mirror")
        else:
            sys.modules["devpi_server.mirror"] = saved


class TestPyramidConfiguration:
    def test_the_routes_are_the_clients_and_only_the_index_owner_may_post(self):
        routes, views, tweens, subscribers = configure(replica=False)
        assert subscribers == []  # a primary marks its pages itself
        assert routes == [
            ("devpictl-expire-pages", "/{user}/{index}/+devpictl/expire-pages"),
            ("devpictl-pages", "/{user}/{index}/+devpictl/pages"),
            ("devpictl-authcheck", "/+devpictl/authcheck"),
        ]
        assert [(v["route_name"], v.get("request_method"), v.get("permission")) for v in views] == [
            ("devpictl-expire-pages", "POST", "index_modify"),
            ("devpictl-pages", "GET", None),
            ("devpictl-authcheck", None, None),  # nginx asks with the request's own method
        ]
        # devpi imports the plugin by that name
        assert tweens == ["devpictl_mirror_auth.stale_pages_tween", "devpictl_pages.policy_tween"]
        # what DevpiClient.expire_pages asks for root/pypi
        server = FakeDevpi(configured(OFFICIAL), projects=("pip",))
        server.stored = {"pip"}
        with server.client() as client:
            client.login("root", ROOT_PASSWORD)
            expired = client.expire_pages()
        assert (expired.pages, expired.kept) == (1, 1)
        assert server.calls()[-1] == ("POST", "/root/pypi/+devpictl/expire-pages")

    @pytest.mark.parametrize("value, forgotten", [({}, ["dpctl-util"]), (None, ["dpctl-util"]), ({"links": [["x", "y"]]}, [])])
    def test_a_replica_forgets_when_it_last_fetched_a_page_the_primary_emptied(self, value, forgotten):
        assert self.replica_event(value) == forgotten

    def test_a_replica_forgets_when_it_last_fetched_a_page_the_primary_marked(self):
        assert self.replica_event({"links": [["x", "y"]], "devpictl_switched_at": 1}) == ["dpctl-util"]

    @staticmethod
    def replica_event(value) -> list[str]:
        (subscriber,) = configure(replica=True)[3]
        expired: list[str] = []
        stage = SimpleNamespace(ixconfig={"type": "mirror"}, cache_retrieve_times=SimpleNamespace(expire=expired.append))
        subscriber.xom.keyfs.read_transaction = contextlib.nullcontext
        subscriber.xom.model = SimpleNamespace(getstage=lambda user, index: stage if (user, index) == ("root", "pypi") else None)
        subscriber(
            SimpleNamespace(value=value, typedkey=SimpleNamespace(params={"user": "root", "index": "pypi", "project": "dpctl-util"}))
        )
        return expired


class TestStalePagesTween:
    """devpi marks a page it serves stale `Pragma: no-cache`; the front server keeps such a page only briefly."""

    @staticmethod
    def answer(path: str, headers: dict[str, str], offline: bool = False) -> dict[str, str]:
        xom = SimpleNamespace(config=SimpleNamespace(offline_mode=offline))
        tween = devpi_plugin().stale_pages_tween(lambda request: SimpleNamespace(headers=dict(headers)), {"xom": xom})
        return tween(SimpleNamespace(path=path)).headers

    def test_a_stale_page_is_kept_for_seconds(self):
        headers = self.answer("/root/pypi/+simple/six/", {"Pragma": "no-cache"})
        assert headers["X-Accel-Expires"] == "10"

    def test_a_fresh_page_or_another_answer_is_left_as_it_is(self):
        assert "X-Accel-Expires" not in self.answer("/root/pypi/+simple/six/", {})
        assert "X-Accel-Expires" not in self.answer("/+api", {"Pragma": "no-cache"})

    def test_offline_every_page_is_stale_and_none_changes(self):
        assert "X-Accel-Expires" not in self.answer("/root/pypi/+simple/six/", {"Pragma": "no-cache"}, offline=True)


class TestAuthcheck:
    """The front server's login check (`up --read-auth`): devpi's identity of the request decides."""

    @pytest.mark.parametrize("user, status", [("pip-alice", 200), ("+replica", 200), (None, 401)])
    def test_a_known_identity_passes_and_anonymous_gets_basic(self, user, status):
        request = SimpleNamespace(authenticated_userid=user, response=SimpleNamespace(headers={}))
        response = devpi_plugin().authcheck(None, request)
        assert response.status_code == status
        assert ("WWW-Authenticate" in response.headers) == (status == 401)
