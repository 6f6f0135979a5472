"""devpictl warm: files chosen for the targets, fetched through the cache, reported (the lock files: test_lockfiles.py)."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from packaging import tags

from devpictl import lockfiles, simplepage
from devpictl import page_policy as pp
from devpictl import warm as core
from devpictl.errors import BadInput

WHEEL = b"wheel bytes" * 100
SDIST = b"sdist bytes"
SHA_WHEEL = hashlib.sha256(WHEEL).hexdigest()
SHA_SDIST = hashlib.sha256(SDIST).hexdigest()
INDEX = "http://cache.example:3141/root/pypi/+simple/"
LINUX = "manylinux_2_17_x86_64"


class TestTargets:
    def test_this_machine_by_default(self):
        targets = core.make_targets([], [])
        assert targets.here and next(iter(tags.sys_tags())) in targets.tags

    def test_python_and_platform(self):
        targets = core.make_targets(["3.12"], ["manylinux_2_28_x86_64"])
        assert tags.Tag("cp312", "cp312", "manylinux_2_28_x86_64") in targets.tags
        assert tags.Tag("cp312", "abi3", "manylinux2014_x86_64") in targets.tags  # older glibc runs too
        assert tags.Tag("py3", "none", "any") in targets.tags
        assert tags.Tag("cp311", "cp311", "manylinux_2_28_x86_64") not in targets.tags
        assert core.describe(targets) == "Python 3.12 on manylinux_2_28_x86_64"

    def test_bad_python(self):
        with pytest.raises(BadInput, match="--python '3' is not a Python version"):
            core.make_targets(["3"], [])


def link(filename: str, sha256: str | None = None, metadata: bool = False) -> simplepage.Link:
    return simplepage.Link(f"http://cache.example:3141/root/pypi/+f/abc/{filename}", filename, sha256, False, metadata)


class TestSelect:
    LINKS = [
        link("numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        link("numpy-2.0.0-cp312-cp312-win_amd64.whl"),
        link("numpy-2.0.0.tar.gz"),
        link("numpy-1.26.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
    ]

    def test_wheels_that_fit(self):
        chosen = core.select(lockfiles.Pin("numpy", "2.0.0"), self.LINKS, core.make_targets(["3.12"], [LINUX]))
        assert [c.filename for c in chosen] == [self.LINKS[0].filename]

    def test_the_sdist_when_no_wheel_fits(self):
        chosen = core.select(lockfiles.Pin("numpy", "2.0.0"), self.LINKS, core.make_targets(["3.11"], [LINUX]))
        assert [c.filename for c in chosen] == ["numpy-2.0.0.tar.gz"]

    def test_only_the_files_and_hashes_the_lock_names(self):
        pin = lockfiles.Pin("numpy", "2.0.0", filenames=frozenset({self.LINKS[0].filename}), sha256=frozenset({"0" * 64}))
        hashed = [link(self.LINKS[0].filename, "0" * 64), link(self.LINKS[0].filename.replace("2.0.0", "2.0.0.post1"), "1" * 64)]
        assert core.select(pin, hashed, core.make_targets(["3.12"], [LINUX])) == hashed[:1]
        assert core.select(pin, [link(self.LINKS[0].filename, "2" * 64)], core.make_targets(["3.12"], [LINUX])) == []


class FakeCache:
    """The cache's front server: pages, files (stored or not), core metadata; counts what was asked."""

    def __init__(self):
        self.stored: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.wheel_bytes = WHEEL

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append((request.method, path))
        if path == "/root/pypi/+simple/six/":
            return httpx.Response(
                200,
                text=(
                    f'<a href="../../+f/aa/six-1.16.0-py2.py3-none-any.whl#sha256={SHA_WHEEL}" data-core-metadata="true">w</a>\n'
                    f'<a href="../../+f/bb/six-1.16.0.tar.gz#sha256={SHA_SDIST}">s</a>\n'
                ),
            )
        if path == "/root/pypi/+simple/dpctl-evil/":  # a denied project: its files point at the refusal
            return httpx.Response(200, text=f'<a href="{pp.DENIED_PREFIX}dpctl-evil/dpctl_evil-1.0-py3-none-any.whl">w</a>\n')
        if path == "/root/pypi/+simple/dpctl-aged/":  # 2.0 held back for its age
            return httpx.Response(
                200,
                text=f'<a href="../../+f/cc/dpctl_aged-1.1-py3-none-any.whl#sha256={SHA_WHEEL}">w</a>\n',
                headers={"X-Devpictl-Held-Back": "1"},
            )
        if path.startswith(pp.DENIED_PREFIX):
            reason = pp.Policy(deny=("dpctl-evil",)).denial("dpctl-evil")
            return httpx.Response(403, text=f"{reason}\n")
        if path.startswith("/root/pypi/+simple/"):
            return httpx.Response(404)
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".metadata"):
            return httpx.Response(200, text="Metadata-Version: 2.1\nName: six\n")
        headers = {core.SERVED_FROM: "disk"} if name in self.stored else {}
        self.stored.add(name)
        if request.headers.get("Range") == "bytes=0-0":
            return httpx.Response(206, content=b"x", headers=headers)
        return httpx.Response(200, content=self.wheel_bytes if name.endswith(".whl") else SDIST, headers=headers)


class Recorder(core.Progress):
    def __init__(self):
        self.total = None
        self.bytes = 0
        self.done: list[str] = []

    def planned(self, files):
        self.total = files

    def advance(self, nbytes):
        self.bytes += nbytes

    def finished(self, result):
        self.done.append(result.status)


def run(cache: FakeCache, pins, progress=None):
    return core.warm(INDEX, pins, core.make_targets(["3.12"], [LINUX]), progress or Recorder(), jobs=4, transport=cache.transport())


class TestWarm:
    def test_stores_the_wheel_and_its_metadata_then_resumes(self):
        cache = FakeCache()
        progress = Recorder()
        report = run(cache, [lockfiles.Pin("six", "1.16.0")], progress)
        assert report.as_dict() == {
            "stored": 1,
            "stored_bytes": len(WHEEL),
            "present": 0,
            "failed": [],
            "missing": [],
            "refused": [],
            "complete": True,
        }
        assert progress.total == 1 and progress.bytes == len(WHEEL) and progress.done == ["stored"]
        assert ("GET", "/root/pypi/+f/aa/six-1.16.0-py2.py3-none-any.whl.metadata") in cache.requests
        again = run(cache, [lockfiles.Pin("six", "1.16.0")])
        assert (again.count(core.PRESENT), again.count(core.STORED)) == (1, 0)

    def test_a_cache_that_needs_a_login_gets_it_with_every_request(self):
        cache = FakeCache()
        seen = []

        def handle(request):
            seen.append(request.headers.get("Authorization"))
            return cache.handle(request) if seen[-1] else httpx.Response(401)

        access = (True, httpx.BasicAuth("root", "pw"))
        targets = core.make_targets(["3.12"], [LINUX])
        report = core.warm(
            INDEX, [lockfiles.Pin("six", "1.16.0")], targets, Recorder(), transport=httpx.MockTransport(handle), access=access
        )
        assert report.complete and set(seen) == {"Basic " + base64.b64encode(b"root:pw").decode()}

    @pytest.mark.parametrize("stored_at, status", [(1_800_000_000, core.STORED), (1_700_000_000, core.PRESENT)])
    def test_a_file_the_resolver_stored_in_this_run_counts_as_stored(self, stored_at, status):
        from email.utils import formatdate

        cache = FakeCache()
        name = "six-1.16.0-py2.py3-none-any.whl"
        cache.stored.add(name)  # pip's resolve, through the cache, fetched it a moment ago, or an earlier run did
        handle = cache.handle

        def with_dates(request):
            response = handle(request)
            if request.headers.get("Range") == "bytes=0-0" and name in request.url.path:
                response.headers["Last-Modified"] = formatdate(stored_at, usegmt=True)
                response.headers["Content-Range"] = f"bytes 0-0/{len(WHEEL)}"
            return response

        report = core.warm(
            INDEX,
            [lockfiles.Pin("six", "1.16.0")],
            core.make_targets(["3.12"], [LINUX]),
            Recorder(),
            transport=httpx.MockTransport(with_dates),
            since=1_799_999_999.5,
        )
        assert [(f.filename, f.status) for f in report.files] == [(name, status)]
        assert report.stored_bytes == (len(WHEEL) if status == core.STORED else 0)

    def test_what_the_upstream_lacks_is_reported(self):
        report = run(FakeCache(), [lockfiles.Pin("six", "9.9"), lockfiles.Pin("nosuch", "1.0")])
        assert report.missing == [
            "six==9.9: no file of it fits Python 3.12 on manylinux_2_17_x86_64 on the upstream's page",
            "nosuch==1.0: the upstream has no such project",
        ]
        assert not report.complete

    def test_what_the_page_policy_refuses_or_holds_back_is_reported_as_such(self):
        cache = FakeCache()
        report = run(cache, [lockfiles.Pin("dpctl-evil", "1.0"), lockfiles.Pin("dpctl-aged", "2.0"), lockfiles.Pin("dpctl-aged", "1.1")])
        assert report.refused == [
            "dpctl-evil==1.0: devpictl policy: project dpctl-evil is denied on this cache (devpictl set-policy --no-deny dpctl-evil lifts it)",
            "dpctl-aged==2.0: not on the cache's page: its page policy holds back 1 files younger than the minimum release age "
            "(`devpictl set-policy --allow-newer dpctl-aged==2.0` lets it through)",
        ]
        assert report.missing == [] and report.count(core.FAILED) == 0 and not report.complete
        assert report.count(core.STORED) == 1  # 1.1, which the page keeps
        assert not [path for method, path in cache.requests if path.startswith(pp.DENIED_PREFIX) and "Range" in path]

    def test_other_bytes_than_the_page_promised_fail(self):
        cache = FakeCache()
        cache.wheel_bytes = b"tampered"
        report = run(cache, [lockfiles.Pin("six", "1.16.0")])
        assert report.as_dict()["failed"] == [
            {
                "file": "six-1.16.0-py2.py3-none-any.whl",
                "problem": "sha256 does not match the page or the lock: the upstream served other bytes",
            }
        ]


class TestRequirementsFiles:
    """pip resolves a requirements file through the cache; a --read-auth cache's login reaches it in its environment."""

    def resolve(self, monkeypatch, tmp_path, login):
        import json
        import subprocess

        from devpictl import pip

        ran = []

        def run_pip(command, *args, timeout=None, index_url=None, cert=None):
            ran.append((args, index_url, cert))
            report = {"install": [{"metadata": {"name": "Six", "version": "1.16.0"}, "download_info": {"url": INDEX + "six.whl"}}]}
            return subprocess.CompletedProcess(args, 0, json.dumps(report), "")

        monkeypatch.setattr(core, "pip_command", lambda: ["pip"])
        monkeypatch.setattr(core, "run_pip", run_pip)
        assert pip.run_pip is not run_pip  # core's own name is the seam
        requirements = tmp_path / "requirements.txt"
        requirements.write_text("six\n")
        pins = core.read_pins([requirements], INDEX, core.make_targets([], []), tmp_path / "trust.pem", login)
        assert [(pin.name, pin.version) for pin in pins] == [("six", "1.16.0")]
        return ran

    def test_the_login_is_in_the_index_url_pip_gets_and_never_in_its_arguments(self, monkeypatch, tmp_path):
        [(args, index_url, cert)] = self.resolve(monkeypatch, tmp_path, ("root", "s3cret"))
        assert index_url == "http://root:s3cret@cache.example:3141/root/pypi/+simple/"
        assert cert == str(tmp_path / "trust.pem")  # the HTTPS cache's CA bundle
        assert not any("s3cret" in arg or "cache.example" in arg and "@" in arg for arg in args)
        assert "--index-url" not in args and "--isolated" not in args  # --isolated would make pip ignore PIP_INDEX_URL
        assert "--no-input" in args  # a refused login must not make pip wait for one on the terminal

    def test_without_a_login_pip_gets_the_plain_index_url(self, monkeypatch, tmp_path):
        [(_args, index_url, _cert)] = self.resolve(monkeypatch, tmp_path, None)
        assert index_url == INDEX


def test_cli_needs_a_running_cache(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from devpictl import container as ctr
    from devpictl.cli import app
    from tests.unit.fakes import FakeEngine

    monkeypatch.setattr(ctr, "connect", lambda: FakeEngine())
    lock = tmp_path / "uv.lock"
    lock.write_text("version = 1\n")
    result = CliRunner().invoke(app, ["warm", str(lock), "--json"])
    assert result.exit_code == 8, result.output
    assert "no cache named 'default'" in result.stderr


def test_cli_says_in_one_line_that_the_policy_refuses_a_project(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from devpictl import container as ctr
    from devpictl.cli import app
    from tests.unit.fakes import FakeEngine

    engine = FakeEngine()
    engine.add("default")
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    monkeypatch.setattr(core, "read_pins", lambda files, index_url, targets, cert=None, login=None: [lockfiles.Pin("dpctl-evil", "1.0")])
    transport = FakeCache().transport()
    real_warm = core.warm
    monkeypatch.setattr(core, "warm", lambda *args, **kwargs: real_warm(*args, **{**kwargs, "transport": transport}))
    lock = tmp_path / "uv.lock"
    lock.write_text("version = 1\n")
    result = CliRunner().invoke(app, ["warm", str(lock)])
    assert result.exit_code == 5, result.output
    said = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("• Reading")]
    assert said == [
        "error: dpctl-evil==1.0: devpictl policy: project dpctl-evil is denied on this cache (devpictl set-policy --no-deny dpctl-evil lifts it)"
    ], result.stderr


def test_simple_page_links_carry_hash_yank_and_metadata():
    page = (
        '<a href="../../+f/aa/six-1.16.0-py2.py3-none-any.whl#sha256=ABC" data-dist-info-metadata="sha256=def">w</a>'
        '<a href="six-1.16.0.tar.gz" data-yanked="">s</a>'
        '<a href="six-1.16.0-py3-none-any.whl" data-core-metadata="false">f</a>'
        '<a href="/login">Sign in</a>'
    )
    links = simplepage.parse(page, "http://c.example/root/pypi/+simple/six/")
    assert [(link.url, link.sha256, link.yanked, link.metadata) for link in links] == [
        ("http://c.example/root/pypi/+f/aa/six-1.16.0-py2.py3-none-any.whl", "abc", False, "sha256=def"),
        ("http://c.example/root/pypi/+simple/six/six-1.16.0.tar.gz", None, True, None),
        ("http://c.example/root/pypi/+simple/six/six-1.16.0-py3-none-any.whl", None, False, None),
    ]
