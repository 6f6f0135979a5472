"""Supply-chain guards through the cache (issue 25): PEP 700 upload times on the JSON pages, a minimum release age, a deny list.

The upstream is a static PEP 691 index whose JSON pages carry upload times (json_upstream.py),
run here on the base image in the test upstreams' network; one cache serves every test.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import httpx
import pytest

from devpictl import page_policy as pp
from devpictl.devpi import INSTALLER_AGENT
from tests.integration.support import (
    RUN_ID,
    TEST_LABEL,
    cache_env,
    chromium,
    devpi_page,
    free_port,
    one_error_line,
    pip_run,
    remove_cache,
    run_cli,
    status_json,
    uv_run,
    wait_recorded,
)
from tests.integration.wheels import make_wheel

HERE = Path(__file__).parent
NAME = f"guards{RUN_ID}"
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"  # uv's
DAY = 86400
NOW = time.time()
# dpctl-aged: two old releases and one uploaded "now" (when this module starts).
RELEASES = {"dpctl-aged": [("1.0", "2024-01-10T12:00:00Z"), ("1.1", "2024-06-10T12:00:00Z"), ("2.0", pp.format_time(NOW))]}
RELEASES["dpctl-evil"] = [("1.0", "2024-01-10T12:00:00Z")]
RELEASES["dpctl-twice"] = [("0.9", "2023-05-01T08:00:00Z"), ("1.0", "2024-02-01T08:00:00Z")]  # asked of the front first, then of devpi
# dpctl-plain: HTML pages only; its files' Last-Modified (their mtime) is all the upstream says of their age.
PLAIN = [("1.0", "2024-01-10T12:00:00Z"), ("1.1", "2024-06-10T12:00:00Z")]


def make_root(root: Path) -> None:
    """/simple/NAME/index.json (API 1.1, upload-time and size) and index.html, /files/ the wheels."""
    for project, releases in RELEASES.items():
        files, links = [], []
        for version, uploaded in releases:
            wheel = make_wheel(root / "files", project, version, [])
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            url = f"../../files/{wheel.name}"
            files.append(
                {"filename": wheel.name, "url": url, "hashes": {"sha256": digest}, "upload-time": uploaded, "size": wheel.stat().st_size}
            )
            links.append(f'<a href="{url}#sha256={digest}">{wheel.name}</a><br>')
        page = root / "simple" / project
        page.mkdir(parents=True)
        versions = [version for version, _ in releases]
        (page / "index.json").write_text(
            json.dumps({"meta": {"api-version": "1.1"}, "name": project, "versions": versions, "files": files})
        )
        (page / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    links = []
    for version, uploaded in PLAIN:
        wheel = make_wheel(root / "files", "dpctl-plain", version, [])
        os.utime(wheel, (pp.parse_time(uploaded), pp.parse_time(uploaded)))
        links.append(f'<a href="../../files/{wheel.name}#sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}">{wheel.name}</a><br>')
    (root / "simple" / "dpctl-plain").mkdir()
    (root / "simple" / "dpctl-plain" / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")


@pytest.fixture(scope="module")
def json_upstream(engine, base_image, test_upstream, tmp_path_factory):
    """{url: on the test network, host_url: from here} of the JSON upstream, running until the module ends."""
    root = tmp_path_factory.mktemp("json-upstream")
    make_root(root)
    name = f"devpictl-json-upstream-{RUN_ID}"
    container = engine.containers.run(
        base_image,
        ["python3", "/json_upstream.py"],
        name=name,
        detach=True,
        labels={TEST_LABEL.split("=")[0]: "1"},
        network=test_upstream["network"],
        ports={"8080/tcp": ("127.0.0.1", None)},
        volumes={str(root): {"bind": "/srv", "mode": "ro"}, str(HERE / "json_upstream.py"): {"bind": "/json_upstream.py", "mode": "ro"}},
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        host_url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{host_url}/simple/dpctl-aged/", trust_env=False, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield {"url": f"http://{name}:8080/simple", "host_url": host_url}
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, json_upstream, tmp_path_factory):
    env = cache_env(NAME, tmp_path_factory.mktemp("devpictl-data-guards"), devpi_image)
    result = run_cli(
        "up",
        "--port",
        str(free_port()),
        "--network",
        test_upstream["network"],
        "--mirror",
        json_upstream["url"],
        "--probe-project",
        "dpctl-aged",
        "--json",
        env=env,
    )
    try:
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        yield {"env": env, "index_url": out["index_url"], "container": engine.containers.get(f"devpictl-{NAME}")}
    finally:
        remove_cache(engine, NAME, env)


@pytest.fixture(autouse=True)
def no_policy(cache):
    """Every test starts without a policy."""
    result = run_cli("set-policy", "--clear", "--name", NAME, env=cache["env"])
    assert result.exit_code == 0, result.output


def compile_aged(index_url: str, tmp_path: Path, *args: str, project: str = "dpctl-aged") -> tuple[str | None, str]:
    """(the ``project`` version `uv pip compile` picks through ``index_url``, or None; its stderr)."""
    requirements = tmp_path / "requirements.in"
    requirements.write_text(f"{project}\n")
    done = uv_run(tmp_path, "pip", "compile", "--no-header", "--index-url", index_url, *args, str(requirements))
    pinned = [line.split("==")[1] for line in done.stdout.splitlines() if line.startswith(f"{project}==")]
    return (pinned[0] if done.returncode == 0 and pinned else None), done.stderr


def json_page(index_url: str, project: str) -> httpx.Response:
    return httpx.get(f"{index_url}{project}/", headers={"User-Agent": INSTALLER_AGENT, "Accept": JSON_ACCEPT}, trust_env=False, timeout=30)


def front_lines(container, path: str) -> list[str]:
    """The front server's log lines (nginx) for GETs of ``path``."""
    log = container.logs(stdout=True, stderr=True).decode(errors="replace")
    return [line for line in log.splitlines() if " front " in line and f'"GET {path} HTTP/' in line]


@pytest.mark.parametrize("accept", [pp.JSON_PAGE, "text/html"])
def test_the_page_the_front_answered_from_a_json_upstream_is_the_page_devpi_records(cache, accept):
    project = "dpctl-twice"
    answered = httpx.get(f"{cache['index_url']}{project}/", headers={"User-Agent": INSTALLER_AGENT, "Accept": accept}, trust_env=False)
    assert answered.status_code == 200
    if accept == pp.JSON_PAGE:  # the first ask: the front's answer (templates/first_pages.py), its parse of the JSON page
        assert answered.headers.get("X-Devpictl-Page") == "front"
        assert [f["upload-time"] for f in answered.json()["files"]] == [t for _, t in RELEASES[project]]
    wait_recorded(cache["container"], project)
    status, stored = devpi_page(cache["container"], project, accept)
    assert status == 200 and answered.content == stored, (answered.text, stored.decode())


def test_json_pages_carry_the_upstreams_upload_times(cache, json_upstream):
    page = json_page(cache["index_url"], "dpctl-aged")
    assert page.headers["content-type"].startswith(pp.JSON_PAGE)
    data = page.json()
    assert data["meta"]["api-version"] == "1.1"
    assert data["versions"] == ["1.0", "1.1", "2.0"]
    upstream = httpx.get(f"{json_upstream['host_url']}/simple/dpctl-aged/", headers={"Accept": pp.JSON_PAGE}, trust_env=False).json()
    want = {f["filename"]: (f["upload-time"], f["size"]) for f in upstream["files"]}
    assert {f["filename"]: (f["upload-time"], f["size"]) for f in data["files"]} == want
    # Old installers' HTML pages stay devpi's own.
    html = httpx.get(f"{cache['index_url']}dpctl-aged/", headers={"User-Agent": INSTALLER_AGENT, "Accept": "text/html"}, trust_env=False)
    assert html.headers["content-type"].startswith("text/html") and html.text.count("<a ") == 3


@pytest.mark.parametrize("cutoff, version", [("2024-03-01T00:00:00Z", "1.0"), ("2024-12-31T00:00:00Z", "1.1")])
def test_uv_exclude_newer_picks_what_it_picks_against_the_upstream(cache, json_upstream, tmp_path, cutoff, version):
    direct = compile_aged(f"{json_upstream['host_url']}/simple/", tmp_path, "--exclude-newer", cutoff)
    through = compile_aged(cache["index_url"], tmp_path, "--exclude-newer", cutoff)
    assert direct[0] == through[0] == version, (direct, through)
    # Today's way, on pages without upload times (devpi's own JSON, API 1.0): uv finds no file to take.
    bare = compile_aged(f"{json_upstream['host_url']}/bare/simple/", tmp_path, "--exclude-newer", cutoff)
    assert bare[0] is None and "missing an upload date" in bare[1], bare


def settled_front_lines(container, path: str, at_least: int = 0) -> list[str]:
    """front_lines once the engine has copied them all: their count has stopped changing (and reached ``at_least``)."""
    deadline = time.monotonic() + 15
    seen = front_lines(container, path)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = front_lines(container, path)
        if len(now) == len(seen) and len(now) >= at_least:
            return now
        seen = now
    return seen


def test_warm_json_pages_never_reach_devpi(cache):
    path = "/root/pypi/+simple/dpctl-aged/"
    # Cached now, if no test did before (a flush's nginx reload may still be under way: until a hit).
    for _ in range(20):
        if json_page(cache["index_url"], "dpctl-aged").headers.get("X-Devpictl-Cache") == "HIT":
            break
    before = len(settled_front_lines(cache["container"], path))  # the engine copies log lines a little after nginx writes them
    answers = [json_page(cache["index_url"], "dpctl-aged") for _ in range(3)]
    assert {a.headers.get("X-Devpictl-Cache") for a in answers} == {"HIT"}
    assert all(a.json()["files"][0]["upload-time"] for a in answers)
    lines = settled_front_lines(cache["container"], path, before + 3)[before:]
    assert len(lines) == 3 and all("cache=HIT" in line for line in lines), lines


def test_an_html_only_upstreams_files_take_their_last_modified_as_upload_time(cache, json_upstream, tmp_path):
    upstream = httpx.get(f"{json_upstream['host_url']}/simple/dpctl-plain/", headers={"Accept": pp.JSON_PAGE}, trust_env=False)
    assert upstream.headers["content-type"].startswith("text/html")  # the upstream has no JSON page for it
    page = json_page(cache["index_url"], "dpctl-plain").json()
    assert page["meta"]["api-version"] == "1.1" and page["versions"] == ["1.0", "1.1"]
    got = {pp.file_version("dpctl-plain", f["filename"]): pp.parse_time(f.get("upload-time")) for f in page["files"]}
    assert got == {version: pp.parse_time(uploaded) for version, uploaded in PLAIN}, page
    # So uv's exclude-newer works through the cache, and so does the minimum release age.
    assert compile_aged(cache["index_url"], tmp_path, "--exclude-newer", "2024-03-01T00:00:00Z", project="dpctl-plain")[0] == "1.0"
    age = int(NOW - pp.parse_time(PLAIN[1][1])) + DAY  # 1.1 is younger than that
    result = run_cli("set-policy", "--min-release-age", f"{age}s", "--name", NAME, env=cache["env"])
    assert result.exit_code == 0, result.output
    assert compile_aged(cache["index_url"], tmp_path, project="dpctl-plain")[0] == "1.0"


def test_min_release_age_holds_a_new_release_back_until_it_comes_of_age(cache, tmp_path):
    assert compile_aged(cache["index_url"], tmp_path)[0] == "2.0"
    result = run_cli("set-policy", "--min-release-age", "7d", "--name", NAME, env=cache["env"])
    assert result.exit_code == 0, result.output
    assert "files younger than 1w held back" in result.output
    assert compile_aged(cache["index_url"], tmp_path)[0] == "1.1"
    page = json_page(cache["index_url"], "dpctl-aged")
    assert page.json()["versions"] == ["1.0", "1.1"] and page.headers["X-Devpictl-Held-Back"] == "1"
    # status, the page at / and stats show it (stats: uv's page, fetched, and the one above, from the front's cache).
    shown = status_json(cache["env"], NAME)
    assert shown["policy"] == "files younger than 1w held back" and shown["policy_settings"]["min_release_age"] == 7 * DAY
    dom = chromium(tmp_path, "--dump-dom", cache["index_url"].removesuffix("root/pypi/+simple/"))
    assert 'Page policy</dt><dd id="policy">files younger than 1w held back<' in dom.stdout, dom.stdout[-3000:]
    counted = json.loads(run_cli("stats", "--name", NAME, "--json", env=cache["env"]).stdout)["held_back"]
    assert counted["pages"] >= 2 and counted["files"] >= 2 and counted["projects"][0]["project"] == "dpctl-aged", counted
    done = pip_run(cache["index_url"], tmp_path, "download", "--no-deps", "-d", str(tmp_path / "dl"), "dpctl-aged")
    assert done.returncode == 0 and "dpctl_aged-1.1-" in done.stdout, done.stdout + done.stderr
    # The exception: this project may be newer.
    result = run_cli("set-policy", "--allow-newer", "dpctl-aged==2.0", "--name", NAME, env=cache["env"])
    assert result.exit_code == 0, result.output
    assert compile_aged(cache["index_url"], tmp_path)[0] == "2.0"
    result = run_cli("set-policy", "--clear", "--min-release-age", "7d", "--name", NAME, env=cache["env"])
    assert result.exit_code == 0, result.output
    assert compile_aged(cache["index_url"], tmp_path)[0] == "1.1"
    # Eight days pass on the policy's clock (a test-only key of the policy file), not the machine's.
    move_policy_clock(cache["container"], 8 * DAY)
    assert compile_aged(cache["index_url"], tmp_path)[0] == "2.0"


def move_policy_clock(container, seconds: float) -> None:
    script = (
        "import json, sys; p = sys.argv[1]; d = json.load(open(p)); d['clock_offset'] = float(sys.argv[2]); "
        "open(p + '.new', 'w').write(json.dumps(d)); import os; os.replace(p + '.new', p)"
    )
    from devpictl import layout

    path = f"{layout.RUN_DIR}/{layout.PAGE_POLICY_FILE}"
    done = container.exec_run(["python3", "-c", script, path, str(seconds)], user="root")
    assert done.exit_code == 0, done.output
    done = container.exec_run([layout.FLUSH_CACHE])
    assert done.exit_code == 0, done.output


def test_a_denied_project_is_refused_with_the_reason_by_pip_and_uv(cache, tmp_path):
    result = run_cli("set-policy", "--deny", "DPCTL_Evil", "--name", NAME, env=cache["env"])
    assert result.exit_code == 0, result.output
    reason = "devpictl policy: project dpctl-evil is denied on this cache"
    uv = uv_run(tmp_path, "pip", "install", "--no-deps", "--target", str(tmp_path / "uv"), "--index-url", cache["index_url"], "dpctl-evil")
    assert uv.returncode != 0 and reason in uv.stderr and "403" in uv.stderr, uv.stderr
    pip = pip_run(cache["index_url"], tmp_path, "install", "--no-deps", "--target", str(tmp_path / "pip"), "dpctl-evil")
    assert pip.returncode != 0 and reason in pip.stdout + pip.stderr and "403" in pip.stderr, pip.stdout + pip.stderr
    # The list is remembered: `up` again keeps it.
    assert "dpctl-evil" in next(Path(cache["env"]["DEVPICTL_DATA_DIR"]).rglob("cache.toml")).read_text()
    # Others are served.
    assert compile_aged(cache["index_url"], tmp_path)[0] == "2.0"


def test_warm_says_in_one_line_that_the_policy_refuses_a_project(cache, tmp_path):
    result = run_cli("set-policy", "--deny", "dpctl-evil", "--name", NAME, env=cache["env"])
    assert result.exit_code == 0, result.output
    lock = tmp_path / "pylock.toml"
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "test"\n[[packages]]\nname = "dpctl-evil"\nversion = "1.0"\n'
        '[[packages.wheels]]\nname = "dpctl_evil-1.0-py3-none-any.whl"\n'
    )
    result = run_cli("warm", str(lock), "--name", NAME, env=cache["env"])
    assert result.exit_code == 5, result.output
    assert one_error_line(result) == (
        "error: dpctl-evil==1.0: devpictl policy: project dpctl-evil is denied on this cache (devpictl set-policy --no-deny dpctl-evil lifts it)"
    )
    assert "refused:" not in result.stderr and "failed:" not in result.stderr, result.stderr


def test_a_broken_policy_file_refuses_pages_until_set_policy_writes_it_again(cache):
    from devpictl import layout

    done = cache["container"].exec_run(
        ["sh", "-c", f'echo \'{{"min_release_age": "7d"\' > {layout.RUN_DIR}/{layout.PAGE_POLICY_FILE}'], user="root"
    )
    assert done.exit_code == 0, done.output
    assert cache["container"].exec_run([layout.FLUSH_CACHE]).exit_code == 0
    page = json_page(cache["index_url"], "dpctl-aged")
    assert page.status_code == 503 and "page policy file is unreadable" in page.text, (page.status_code, page.text)
    assert status_json(cache["env"], NAME)["policy_settings"] is None
    result = run_cli("set-policy", "--clear", "--name", NAME, env=cache["env"])
    assert result.exit_code == 0 and "(unchanged)" not in result.output, result.output
    assert json_page(cache["index_url"], "dpctl-aged").status_code == 200
