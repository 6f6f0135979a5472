"""DevpiClient against a fake devpi-server (httpx.MockTransport) answering as docs/devpi-facts.md records."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from devpictl.devpi import INSTALLER_AGENT, DevpiClient, index_url
from devpictl.errors import CacheUnreachable, DevpiError, LoginRefused, UpstreamUnreachable

BASE = "http://127.0.0.1:3141"
PASSWORD = "s3cret-Root-pw"
TOKEN = "1.eyJ0b2tlbiI6InRlc3QifQ.fakesig"

PYPI_IXCONFIG = {
    "type": "mirror",
    "volatile": False,
    "mirror_url": "https://official.index.example/simple/",
    "mirror_web_url_fmt": "https://official.index.example/project/{name}/",
    "title": "PyPI",
    "mirror_cache_expiry": 1800,
}

SIMPLE_PAGE = """<!DOCTYPE html>
<html>
  <head>
    <title>root/pypi: links for pip</title>
  </head>
  <body>
    <h1>root/pypi: links for pip</h1>
    <a href="../../+f/d3a/1b2/pip-24.0-py3-none-any.whl#sha256=ba0d021a166865d2265246961bec0152ff124de910c5cc39f1156ce3fa7c69dc" data-requires-python="&gt;=3.7">pip-24.0-py3-none-any.whl</a><br/>
    <a href="../../+f/ea9/4a5/pip-24.0.tar.gz#sha256=ea9bd1a847e8c5774a5777bb398c19e80bcd4e2aa16a4b301b718fe6f593aba2" data-requires-python="&gt;=3.7">pip-24.0.tar.gz</a><br/>
  </body>
</html>
"""


class FakeServer:
    """Records every request and answers from ``routes``: (METHOD, path) -> response or callable."""

    def __init__(self, routes: dict):
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"type": "error", "message": "no such resource"})
        return answer(request) if callable(answer) else answer

    def client(self) -> DevpiClient:
        return DevpiClient(BASE, transport=httpx.MockTransport(self))


def login_ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    if body == {"user": "root", "password": PASSWORD}:
        return httpx.Response(200, json={"type": "proxyauth", "result": {"password": TOKEN, "expiration": 36000}})
    return httpx.Response(401, json={"type": "error", "message": "could not authenticate user 'root'"})


def expected_auth() -> str:
    return base64.b64encode(f"root:{TOKEN}".encode()).decode()


class TestLogin:
    def test_posts_json_credentials_then_sends_the_token(self):
        server = FakeServer(
            {
                ("POST", "/+login"): login_ok,
                ("GET", "/root/pypi"): httpx.Response(200, json={"type": "indexconfig", "result": PYPI_IXCONFIG}),
            }
        )
        with server.client() as client:
            client.login("root", PASSWORD)
            client.get_index()
        login, show = server.requests
        assert login.method == "POST"
        assert login.headers["content-type"] == "application/json"
        assert login.headers["accept"] == "application/json"
        assert json.loads(login.content) == {"user": "root", "password": PASSWORD}
        assert "x-devpi-auth" not in login.headers
        assert show.headers["x-devpi-auth"] == expected_auth()
        assert base64.b64decode(show.headers["x-devpi-auth"]).decode() == f"root:{TOKEN}"

    def test_refused_login_hides_the_password(self):
        server = FakeServer({("POST", "/+login"): login_ok})
        wrong = "wrong-Passw0rd-xyz"
        with server.client() as client, pytest.raises(LoginRefused) as info:
            client.login("root", wrong)
        message = str(info.value)
        assert "root" in message
        assert wrong not in message
        assert "\n" not in message
        assert isinstance(info.value, DevpiError)

    def test_other_login_failure_is_a_devpi_error(self):
        server = FakeServer({("POST", "/+login"): httpx.Response(500, json={"message": "internal"})})
        with server.client() as client, pytest.raises(DevpiError, match="HTTP 500 internal") as info:
            client.login("root", PASSWORD)
        assert not isinstance(info.value, LoginRefused)
        assert PASSWORD not in str(info.value)


class TestIndex:
    def test_get_index_asks_without_the_project_list(self):
        server = FakeServer({("GET", "/root/pypi"): httpx.Response(200, json={"type": "indexconfig", "result": PYPI_IXCONFIG})})
        with server.client() as client:
            assert client.get_index() == PYPI_IXCONFIG
        [request] = server.requests
        assert request.url.params.get("no_projects") == ""
        assert "no_projects" in request.url.params
        assert request.url.query == b"no_projects="
        assert request.headers["accept"] == "application/json"

    def test_list_projects(self):
        result = {**PYPI_IXCONFIG, "projects": ["pip", "requests"]}
        server = FakeServer({("GET", "/root/pypi"): httpx.Response(200, json={"type": "indexconfig", "result": result})})
        with server.client() as client:
            assert client.list_projects() == ["pip", "requests"]
        assert "no_projects" not in server.requests[0].url.params

    def test_patch_index_sends_a_json_list_of_strings(self):
        changed = {**PYPI_IXCONFIG, "mirror_url": "https://pypi.tuna.tsinghua.edu.cn/simple"}
        server = FakeServer({("PATCH", "/root/pypi"): httpx.Response(200, json={"type": "indexconfig", "result": changed})})
        changes = ["mirror_url=https://pypi.tuna.tsinghua.edu.cn/simple", "mirror_ignore_serial_header=true"]
        with server.client() as client:
            assert client.patch_index(changes) == changed
        [request] = server.requests
        assert request.method == "PATCH"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["accept"] == "application/json"
        body = json.loads(request.content)
        assert body == changes
        assert all(isinstance(item, str) for item in body)

    def test_400_with_json_message_is_one_line(self):
        server = FakeServer(
            {
                ("PATCH", "/root/pypi"): httpx.Response(
                    400,
                    json={"type": "error", "message": "indexconfig got unexpected keyword arguments:\n  ['bogus']"},
                )
            }
        )
        with server.client() as client, pytest.raises(DevpiError) as info:
            client.patch_index(["bogus=1", "mirror_url=https://x/simple"])
        message = str(info.value)
        assert "\n" not in message
        assert "HTTP 400" in message
        assert "indexconfig got unexpected keyword arguments: ['bogus']" in message
        assert "(bogus, mirror_url)" in message

    def test_400_with_multiline_html_is_one_line(self):
        html = "<html>\n<head><title>400 Bad Request</title></head>\n<body>\n  <h1>Bad\n Request</h1>\n</body>\n</html>\n"
        server = FakeServer({("PATCH", "/root/pypi"): httpx.Response(400, text=html, headers={"content-type": "text/html"})})
        with server.client() as client, pytest.raises(DevpiError) as info:
            client.patch_index(["mirror_url=https://x/simple"])
        message = str(info.value)
        assert "\n" not in message and "\r" not in message
        assert message.startswith("devpi refused to change root/pypi (mirror_url): HTTP 400 <html>")
        assert "400 Bad Request" in message

    def test_403_without_auth(self):
        server = FakeServer({("PATCH", "/root/pypi"): httpx.Response(403, json={"type": "error", "message": "forbidden"})})
        with server.client() as client, pytest.raises(DevpiError, match="HTTP 403 forbidden"):
            client.patch_index(["mirror_cache_expiry=0"])

    def test_refresh_accepts_devpis_redirect(self):
        server = FakeServer(
            {("POST", "/root/pypi/+simple/pip/refresh"): httpx.Response(302, headers={"location": f"{BASE}/root/pypi/+simple/pip/"})}
        )
        with server.client() as client:
            assert client.refresh_project("pip") is True
        # The redirect is not followed.
        assert [(r.method, r.url.path) for r in server.requests] == [("POST", "/root/pypi/+simple/pip/refresh")]

    @pytest.mark.parametrize("status", [404, 500])
    def test_refresh_of_a_project_the_upstream_lacks_is_false(self, status):
        server = FakeServer({("POST", "/root/pypi/+simple/private/refresh"): httpx.Response(status, text="<html>\nerror\n</html>")})
        with server.client() as client:
            assert client.refresh_project("private") is False

    def test_refresh_without_permission_is_an_error(self):
        server = FakeServer({("POST", "/root/pypi/+simple/pip/refresh"): httpx.Response(403, json={"message": "forbidden"})})
        with server.client() as client, pytest.raises(DevpiError, match="refresh pip: HTTP 403 forbidden"):
            client.refresh_project("pip")


class TestSimpleFiles:
    def test_parses_file_names_with_an_installer_user_agent(self):
        server = FakeServer({("GET", "/root/pypi/+simple/pip/"): httpx.Response(200, text=SIMPLE_PAGE)})
        with server.client() as client:
            assert client.simple_files("pip") == ["pip-24.0-py3-none-any.whl", "pip-24.0.tar.gz"]
        [request] = server.requests
        assert request.headers["user-agent"] == INSTALLER_AGENT
        assert request.headers["user-agent"].startswith("pip/")
        assert request.headers["accept"] == "text/html"

    def test_page_without_links_gives_no_files(self):
        page = "<html><body><h1>root/pypi: links for nothing</h1></body></html>"
        server = FakeServer({("GET", "/root/pypi/+simple/nothing/"): httpx.Response(200, text=page)})
        with server.client() as client:
            assert client.simple_files("nothing") == []

    def test_404_gives_no_files(self):
        server = FakeServer({})
        with server.client() as client:
            assert client.simple_files("nosuch") == []

    @pytest.mark.parametrize("status", [502, 504])
    def test_upstream_failure_is_upstream_unreachable(self, status):
        server = FakeServer({("GET", "/root/pypi/+simple/pip/"): httpx.Response(status, text="Bad Gateway")})
        with server.client() as client, pytest.raises(UpstreamUnreachable, match=f"HTTP {status}"):
            client.simple_files("pip")


class TestUnreachable:
    def test_connection_error_is_cache_unreachable(self):
        def refuse(request):
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

        with DevpiClient(BASE, transport=httpx.MockTransport(refuse)) as client, pytest.raises(CacheUnreachable) as info:
            client.api()
        assert BASE in str(info.value)
        assert "ConnectError" in str(info.value)

    def test_timeout_is_cache_unreachable(self):
        def slow(request):
            raise httpx.ReadTimeout("timed out", request=request)

        with DevpiClient(BASE, transport=httpx.MockTransport(slow)) as client, pytest.raises(CacheUnreachable, match="in time"):
            client.simple_files("pip")

    def test_connection_error_during_login_hides_the_password(self):
        def refuse(request):
            raise httpx.ConnectError("refused", request=request)

        with DevpiClient(BASE, transport=httpx.MockTransport(refuse)) as client, pytest.raises(CacheUnreachable) as info:
            client.login("root", PASSWORD)
        assert PASSWORD not in str(info.value)


def test_api_and_status_results():
    server = FakeServer(
        {
            ("GET", "/+api"): httpx.Response(200, json={"type": "apiconfig", "result": {"login": f"{BASE}/+login"}}),
            ("GET", "/+status"): httpx.Response(
                200, json={"type": "status", "result": {"serverdir": "/data/server", "versioninfo": {"devpi-server": "6.20.3"}}}
            ),
        }
    )
    with server.client() as client:
        assert client.api() == {"login": f"{BASE}/+login"}
        assert client.server_status()["versioninfo"] == {"devpi-server": "6.20.3"}
    assert all(r.headers["accept"] == "application/json" for r in server.requests)


def test_base_url_trailing_slash_is_dropped():
    server = FakeServer({("GET", "/+api"): httpx.Response(200, json={"type": "apiconfig", "result": {}})})
    with DevpiClient(BASE + "/", transport=httpx.MockTransport(server)) as client:
        assert client.base_url == BASE
        client.api()
    assert str(server.requests[0].url) == f"{BASE}/+api"


def test_index_url():
    assert index_url("http://127.0.0.1:3141") == "http://127.0.0.1:3141/root/pypi/+simple/"
