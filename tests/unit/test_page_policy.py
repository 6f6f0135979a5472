"""devpictl/page_policy.py: what a project's page keeps under the cache's policy, and the plugin that applies it in devpi.

The plugin's wrapping of devpi's mirror and its tween run here on stand-ins;
tests/integration/test_guards.py runs them in devpi.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from devpictl import page_policy as pp
from tests.unit.fakes import devpi_pages
from tests.unit.test_devpictl_mirror_auth import fake_devpi_mirror

NOW = 1_800_000_000.0
DAY = 86400


def wheel(version: str, age_days: float | None, project: str = "dpctl-lib") -> dict:
    item: dict = {"filename": f"{project.replace('-', '_')}-{version}-py3-none-any.whl", "url": f"../x/{version}.whl", "hashes": {}}
    if age_days is not None:
        item["upload-time"] = pp.format_time(NOW - age_days * DAY)
    return item


class TestParsing:
    @pytest.mark.parametrize("text, seconds", [("7d", 7 * DAY), ("12h", 43200), ("30m", 1800), ("90", 90), ("2w", 14 * DAY), ("0", 0)])
    def test_durations(self, text, seconds):
        assert pp.parse_duration(text) == seconds
        assert pp.parse_duration(pp.format_duration(seconds)) == seconds

    @pytest.mark.parametrize("text", ["", "7 days", "-1d", "1.5d", "d"])
    def test_bad_durations(self, text):
        with pytest.raises(ValueError, match="is not a duration"):
            pp.parse_duration(text)

    def test_upload_times_read_back_as_the_official_index_writes_them(self):
        assert pp.parse_time("2024-01-02T03:04:05.123456Z") == pytest.approx(1704164645.123456)
        assert pp.parse_time(pp.format_time(NOW)) == NOW
        assert pp.parse_time("yesterday") is None and pp.parse_time(None) is None

    @pytest.mark.parametrize(
        "project, filename, version",
        [
            ("six", "six-1.16.0-py2.py3-none-any.whl", "1.16.0"),
            ("zope.interface", "zope.interface-6.0.tar.gz", "6.0"),
            ("python-dateutil", "python-dateutil-2.8.2.tar.gz", "2.8.2"),
            ("dpctl-lib", "dpctl_lib-1.1-py3-none-any.whl", "1.1"),
            ("six", "six.txt", None),
        ],
    )
    def test_versions_of_file_names(self, project, filename, version):
        assert pp.file_version(project, filename) == version

    def test_requirements_are_normalised(self):
        assert pp.check_requirement("Dpctl_Lib==1.1") == ("dpctl-lib", "1.1")
        assert pp.check_requirement("six") == ("six", None)
        with pytest.raises(ValueError, match="PROJECT==VERSION"):
            pp.check_requirement("six>=1")


class TestApply:
    def test_no_policy_keeps_everything(self):
        files = [wheel("1.0", 30), wheel("1.1", 0.1), wheel("1.2", None)]
        applied = pp.apply(pp.Policy(), "dpctl-lib", files, NOW)
        assert applied.files == files and applied.held_back == [] and applied.next_release is None

    def test_young_files_are_held_back_until_they_come_of_age(self):
        files = [wheel("1.0", 30), wheel("1.1", 6.5), wheel("1.2", 1)]
        applied = pp.apply(pp.Policy(min_release_age=7 * DAY), "dpctl-lib", files, NOW)
        assert [f["filename"] for f in applied.files] == [files[0]["filename"]]
        assert applied.held_back == [files[1]["filename"], files[2]["filename"]]
        assert applied.next_release == pytest.approx(0.5 * DAY)
        # The clock moves on: 1.1 is 7.5 days old.
        later = pp.apply(pp.Policy(min_release_age=7 * DAY), "dpctl-lib", files, NOW + DAY)
        assert later.held_back == [files[2]["filename"]]

    def test_the_policy_clock_offset_is_its_now(self):
        policy = pp.Policy(min_release_age=DAY, clock_offset=2 * DAY)
        assert pp.apply(policy, "dpctl-lib", [wheel("1.0", -1.5)], NOW - 0).held_back  # an explicit now wins
        assert policy.now() > NOW + 2 * DAY - 10**7

    def test_files_without_upload_time_and_private_uploads_are_never_held_back(self):
        files = [wheel("1.0", None), wheel("1.1", 0)]
        applied = pp.apply(pp.Policy(min_release_age=DAY), "dpctl-lib", files, NOW, private={files[1]["filename"]})
        assert applied.files == files

    @pytest.mark.parametrize("exception, kept", [("dpctl_lib", ["1.1", "1.2"]), ("dpctl-lib==1.2", ["1.2"]), ("other", [])])
    def test_allow_newer(self, exception, kept):
        files = [wheel("1.1", 0), wheel("1.2", 0)]
        applied = pp.apply(pp.Policy(min_release_age=DAY, allow_newer=(exception,)), "dpctl-lib", files, NOW)
        assert pp.versions("dpctl-lib", applied.files) == kept


class TestDenial:
    def test_deny_and_allow_only_by_normalised_name(self):
        policy = pp.Policy.from_dict({"deny": ["Evil_Pkg"]})
        assert "evil-pkg is denied" in (policy.denial("evil.pkg") or "")
        assert policy.denial("six") is None
        only = pp.Policy.from_dict({"allow_only": ["Six"]})
        assert only.denial("six") is None
        assert "not on this cache's allow-only list" in (only.denial("pip") or "")
        assert "\n" not in (only.denial("pip") or "")

    def test_refused_files_point_at_the_denied_path_without_metadata(self):
        files = [wheel("1.0", 3) | {"core-metadata": True}]
        [refused] = pp.denied_files("Dpctl_Lib", files)
        assert refused["url"] == f"{pp.DENIED_PREFIX}dpctl-lib/{files[0]['filename']}"
        assert "core-metadata" not in refused and refused["upload-time"] == files[0]["upload-time"]

    def test_round_trip_and_bad_files(self, tmp_path):
        policy = pp.Policy(min_release_age=DAY, allow_newer=("six==1",), deny=("evil",), allow_only=("six",))
        path = tmp_path / "policy.json"
        path.write_text(json.dumps(policy.to_dict()))
        loaded = pp.PolicyFile(str(path))
        assert loaded.get() == policy
        path.unlink()
        assert loaded.get() == pp.Policy()

    @pytest.mark.parametrize(
        "text, problem",
        [
            ('{"min_release_age": -1, "deny": []}', "min_release_age -1 is not a number of seconds"),
            ('{"min_release_age": 60, "deny": ["evil"]', "Expecting"),  # cut short
            ("[]", "list is not a policy object"),
            ('{"min_release_agee": 60}', "unknown key 'min_release_agee'"),  # a typo must not mean "no age"
            ('{"allow_newer": ["six>=1"]}', "is not a project name"),
        ],
    )
    def test_a_broken_file_fails_closed_not_open(self, tmp_path, text, problem):
        path = tmp_path / "policy.json"
        path.write_text(json.dumps(pp.Policy(deny=("evil",)).to_dict()))
        loaded = pp.PolicyFile(str(path))
        assert loaded.get().deny == ("evil",)
        path.write_text(text)
        for _ in range(2):  # read once, then known broken until it changes
            with pytest.raises(pp.BrokenPolicy, match=re.escape(problem)):
                loaded.get()
        assert "\n" not in pp.broken_reason(problem)
        path.write_text(json.dumps(pp.Policy().to_dict()))
        assert loaded.get() == pp.Policy()

    def test_an_unreadable_file_fails_closed(self, tmp_path):
        (tmp_path / "policy.json").mkdir()  # there, and no file to read
        with pytest.raises(pp.BrokenPolicy):
            pp.PolicyFile(str(tmp_path / "policy.json")).get()


class TestJsonPage:
    def test_api_1_1_with_versions(self):
        page = json.loads(pp.json_page("Dpctl_Lib", [wheel("1.0", 3)]))
        assert page["meta"] == {"api-version": "1.1"}
        assert page["name"] == "dpctl-lib" and page["versions"] == ["1.0"]


# --- the plugin in devpi --------------------------------------------------------------

UPSTREAM_PAGE = {
    "meta": {"api-version": "1.1"},
    "name": "dpctl-lib",
    "files": [
        {
            "filename": "dpctl_lib-1.0-py3-none-any.whl",
            "url": "../../files/dpctl_lib-1.0-py3-none-any.whl",
            "hashes": {},
            "size": 10,
            "upload-time": "2024-01-01T00:00:00Z",
        },
        {"filename": "dpctl_lib-1.1-py3-none-any.whl", "url": "../../files/dpctl_lib-1.1-py3-none-any.whl", "hashes": {}},
    ],
}
STORED_LINKS = [
    ("dpctl_lib-1.0-py3-none-any.whl", "root/pypi/+f/aaa/bbb/dpctl_lib-1.0-py3-none-any.whl#sha256=aaab"),
    ("dpctl_lib-1.1-py3-none-any.whl", "root/pypi/+f/ccc/ddd/dpctl_lib-1.1-py3-none-any.whl#sha256=cccd"),
]


def test_a_mirrored_page_keeps_the_upstreams_upload_times():
    plugin = devpi_pages()
    with fake_devpi_mirror() as mirror:
        plugin.keep_upload_times(mirror)
        stage = mirror.MirrorStage()
        mirror.parse_index_v1_json("http://up/simple/Dpctl_Lib/", json.dumps(UPSTREAM_PAGE))
        mirror.MirrorStage._save_cache_links(stage, "dpctl-lib", STORED_LINKS, [None, None], [None, None], -1, None)
    assert stage.keys["dpctl-lib"].value[plugin.UPLOAD_TIMES] == {
        "dpctl_lib-1.0-py3-none-any.whl": ["2024-01-01T00:00:00Z", 10],
        "dpctl_lib-1.1-py3-none-any.whl": [None, None],
    }


def test_refused_requests_are_the_403s_of_the_denied_path():
    assert pp.refused_project(f"{pp.DENIED_PREFIX}dpctl-evil/dpctl_evil-1.0-py3-none-any.whl", 403) == "dpctl-evil"
    assert pp.refused_project(f"{pp.DENIED_PREFIX}dpctl-evil/dpctl_evil-1.0-py3-none-any.whl", 404) is None
    assert pp.refused_project("/root/pypi/+f/ab/cd/six-1.16.0-py2.py3-none-any.whl", 403) is None


def test_http_dates_as_upload_times():
    assert pp.http_date_time("Wed, 10 Jan 2024 12:00:00 GMT") == "2024-01-10T12:00:00.000000Z"
    assert pp.parse_time(pp.http_date_time("Wed, 10 Jan 2024 12:00:00 GMT")) == pp.parse_time("2024-01-10T12:00:00Z")
    assert pp.http_date_time("not a date") is None and pp.http_date_time(None) is None and pp.http_date_time("") is None


class PolicedDevpi:
    """A devpi answering root/pypi's page of dpctl-lib (as its JSON or HTML renders it) and holding the stored upload times."""

    def __init__(self, plugin, stored_times):
        page = {"links": STORED_LINKS, plugin.UPLOAD_TIMES: stored_times}
        key = SimpleNamespace(get=lambda: page)
        stage = SimpleNamespace(ixconfig={"type": "mirror"}, key_projsimplelinks=lambda project: key)

        class Transaction:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        keyfs = SimpleNamespace(read_transaction=Transaction)
        self.xom = SimpleNamespace(model=SimpleNamespace(getstage=lambda user, index: stage), keyfs=keyfs)
        self.plugin = plugin

    def get(self, kind: str, path: str = "/root/pypi/+simple/dpctl-lib/"):
        if kind == "json":
            # relative to the page, as devpi links them
            files = [{"filename": name, "url": f"../../{href.split('#')[0][10:]}", "hashes": {}} for name, href in STORED_LINKS]
            body, content_type = json.dumps({"meta": {"api-version": "1.0"}, "name": "dpctl-lib", "files": files}).encode(), pp.JSON_PAGE
        else:
            lines = "".join(
                f'root/pypi <a href="../../{href.removeprefix("root/pypi/")}" data-core-metadata="true">{name}</a><br>\n'
                for name, href in STORED_LINKS
            )
            body, content_type = f"<html><body>\n{lines}</body></html>".encode(), "text/html"
        devpi_answer = SimpleNamespace(status_code=200, content_type=content_type, body=body, headers={})

        def handler(request):
            return devpi_answer

        request = SimpleNamespace(path=path, method="GET", response=SimpleNamespace())
        return self.plugin.policy_tween(handler, {"xom": self.xom})(request)


@pytest.fixture
def policed(tmp_path):
    plugin = devpi_pages()
    plugin.POLICY = pp.PolicyFile(str(tmp_path / "policy.json"))
    now = pp.format_time(pp.Policy().now())
    devpi = PolicedDevpi(plugin, {name: [when, 7] for (name, _), when in zip(STORED_LINKS, ["2024-01-01T00:00:00Z", now], strict=True)})

    def set_policy(**values):
        (tmp_path / "policy.json").write_text(json.dumps(pp.Policy(**values).to_dict()))

    devpi.set_policy = set_policy  # type: ignore[attr-defined]
    return devpi


class TestPolicyTween:
    def test_json_pages_carry_upload_times_sizes_and_versions(self, policed):
        page = json.loads(policed.get("json").body)
        assert page["meta"]["api-version"] == "1.1" and page["versions"] == ["1.0", "1.1"]
        assert [(f["upload-time"][:10], f["size"]) for f in page["files"]][0] == ("2024-01-01", 7)

    def test_html_pages_are_devpis_own_without_a_policy(self, policed):
        answer = policed.get("html")
        assert answer.body.count(b"<a ") == 2 and b"data-core-metadata" in answer.body

    def test_a_young_release_is_held_back_on_both_pages_and_kept_only_until_it_comes_of_age(self, policed):
        policed.set_policy(min_release_age=7 * DAY)
        for kind in ("json", "html"):
            answer = policed.get(kind)
            assert b"dpctl_lib-1.1" not in answer.body and b"dpctl_lib-1.0" in answer.body
            assert answer.headers["X-Devpictl-Held-Back"] == "1"
            assert 7 * DAY - 60 < int(answer.headers["X-Accel-Expires"]) <= 7 * DAY + 1

    def test_a_denied_projects_files_answer_403_with_the_reason(self, policed):
        policed.set_policy(deny=("dpctl-lib",))
        page = json.loads(policed.get("json").body)
        assert {f["url"] for f in page["files"]} == {f"{pp.DENIED_PREFIX}dpctl-lib/{name}" for name, _ in STORED_LINKS}
        html = policed.get("html").body.decode()
        assert f'href="{pp.DENIED_PREFIX}dpctl-lib/' in html and "data-core-metadata" not in html
        refused = policed.get("json", f"{pp.DENIED_PREFIX}dpctl-lib/{STORED_LINKS[0][0]}")
        assert refused.status.startswith("403 devpictl policy: project dpctl-lib is denied")
        assert "\n" not in refused.status

    def test_a_broken_policy_file_refuses_every_page_with_the_reason(self, policed, tmp_path):
        (tmp_path / "policy.json").write_text('{"min_release_age": "7d"}')
        for kind in ("json", "html"):
            answer = policed.get(kind)
            assert answer.status.startswith("503 devpictl policy: this cache's page policy file is unreadable")
            assert "min_release_age '7d'" in answer.status and "\n" not in answer.status
            assert b"dpctl_lib-1.0" not in answer.text.encode()
        refused = policed.get("json", f"{pp.DENIED_PREFIX}dpctl-lib/{STORED_LINKS[0][0]}")
        assert refused.status.startswith("403 devpictl policy: this cache's page policy file is unreadable")
        shown = json.loads(policed.get("json", policed.plugin.POLICY_ROUTE).body)
        assert shown["policy_settings"] is None and "unreadable" in shown["policy"] and "7d" in shown["problem"]

    def test_the_policy_in_force_for_the_page_at_root(self, policed):
        policed.set_policy(min_release_age=7 * DAY, deny=("evil",))
        shown = json.loads(policed.get("json", policed.plugin.POLICY_ROUTE).body)
        assert shown == {
            "policy": "files younger than 1w held back; denied: evil",
            "policy_settings": pp.Policy(min_release_age=7 * DAY, deny=("evil",)).to_dict(),
            "problem": None,
        }


@pytest.fixture
def devpi(monkeypatch):
    """The devpi every Cache talks to, root's login taking the tests' password."""
    from devpictl import password
    from tests.unit.fakes import ROOT_PASSWORD, FakeDevpi

    server = FakeDevpi()
    server.serve(monkeypatch)
    monkeypatch.setattr(password, "login_root", lambda client, instance: client.login("root", ROOT_PASSWORD))
    return server


@pytest.mark.parametrize("found, written", [(b"{broken", True), (b'{"min_release_age": 0}', False), (None, False)])
def test_up_and_set_policy_write_a_broken_file_anew(found, written, devpi):
    """`policy.install` of the default policy: a broken file must not pass for "no policy", or nothing would ever repair it."""
    from devpictl import layout, policy
    from tests.unit.fakes import FakeEngine

    cache = FakeEngine().add("default").cache
    if found is not None:
        cache.files[policy.POLICY_PATH] = found.decode()
    assert policy.install(cache, pp.Policy()) is written
    assert ("container.put_archive" in cache.container.engine.calls) is written and bool(cache.flushes) is written
    assert (layout.PAGE_POLICY_FILE in cache.handed) is written


def test_set_policy_no_deny_lifts_what_a_refusal_says_it_lifts(devpi):
    """The refusal names `set-policy --no-deny PROJECT`: it takes that project, and only it, off the remembered deny list."""
    from typer.testing import CliRunner

    from devpictl import container as ctr
    from devpictl import policy, precedence
    from devpictl.cli import app
    from devpictl.settings import Instance
    from tests.unit.fakes import FakeEngine

    engine = FakeEngine()
    cache = engine.add("default").cache  # no policy handed in yet
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ctr, "connect", lambda: engine)
        done = CliRunner().invoke(app, ["set-policy", "--deny", "dpctl-evil", "--deny", "other"])
        assert done.exit_code == 0, done.output
        reason = pp.Policy(deny=("dpctl-evil",)).denial("DPCTL_Evil") or ""
        lift = reason.split("(", 1)[1].split(" lifts it")[0].split()[1:]  # the command the reason names
        done = CliRunner().invoke(app, [*lift, "--json"])
        assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["policy_settings"]["deny"] == ["other"]
    assert tuple(precedence.load_remembered(Instance("default"))["deny"]) == ("other",)
    assert json.loads(cache.files[policy.POLICY_PATH])["deny"] == ["other"] and cache.flushes == 2  # handed in, pages emptied, each time
    # Shared with the replicas each time, as root/pypi's setting.
    assert [shared["deny"] for shared in devpi.shared_policies()] == [["dpctl-evil", "other"], ["other"]]
