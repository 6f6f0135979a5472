"""The Cache handle: where it comes from, its one exec and its typed errors, what it learns once."""

from __future__ import annotations

import pytest

from devpictl import layout
from devpictl.cache import Cache, ExecResult, exec_in
from devpictl.errors import BadInput, CacheNotFound, DevpiError, EngineError, ExecFailed
from devpictl.settings import Instance
from tests.unit.fakes import FakeEngine, exec_answering


class TestWhereItComesFrom:
    def test_a_running_cache(self):
        engine = FakeEngine()
        container = engine.add("default")
        assert Cache.running(engine, Instance("default")).container is container

    def test_no_cache_is_not_found(self):
        with pytest.raises(CacheNotFound) as info:
            Cache.running(FakeEngine(), Instance("ci"))
        assert str(info.value) == "no cache named 'ci': start it with `devpictl up --name ci`"

    def test_a_stopped_cache_is_not_found_and_says_how_to_start_it(self):
        engine = FakeEngine()
        engine.add("ci", status="exited")
        with pytest.raises(CacheNotFound) as info:
            Cache.running(engine, Instance("ci"))
        assert str(info.value) == "cache is exited named 'ci': start it with `devpictl up --name ci`"


class TestExec:
    def test_exec_output_is_text_and_read_text_goes_through_it(self):
        container = FakeEngine().add("default", exec_answers=lambda cmd, env: (0, b"caf\xc3\xa9 \xff\n"))
        assert exec_in(container, ["cat", "x"], {"A": "1"}) == ExecResult(0, "café \ufffd\n")
        assert container.execs == [(["cat", "x"], {"A": "1"})]
        assert Cache(container).read_text("/etc/x") == "café \ufffd\n"  # the real Cache, through the same exec

    def test_an_exec_the_engine_cannot_run_is_a_typed_error(self):
        import docker.errors

        container = FakeEngine().add("default")

        def gone(*args, **kwargs):
            raise docker.errors.APIError("Container abc is not running")

        container.exec_run = gone
        with pytest.raises(ExecFailed) as info:
            Cache(container).disk_usage("/data")
        assert "Container abc is not running" in info.value.reason and info.value.exit_code == 3


class TestOfficialUrl:
    """devpi's own default upstream, read inside the container."""

    def test_official_url_is_read_from_devpi_once(self):
        container = exec_answering(0, b"some warning\nhttps://official.index.example/simple/\n")
        cache = Cache(container)  # the real one: its exec reaches the (fake) engine
        assert cache.official_url() == "https://official.index.example/simple"
        assert cache.official_url() == "https://official.index.example/simple"
        [(cmd, _)] = container.execs  # asked once for the command's life
        assert cmd[0] == "/opt/devpi/bin/python"

    @pytest.mark.parametrize("code, output", [(1, b"Traceback...\nImportError: no devpi\n"), (0, b""), (0, b"None\n")])
    def test_official_url_failure(self, code, output):
        with pytest.raises(DevpiError, match="cannot read devpi's default upstream"):
            Cache(exec_answering(code, output)).official_url()


class TestTypedOperations:
    """The real Cache's operations over its exec, as the fake engine answers them."""

    def test_disk_usage_reads_dus_first_word(self):
        assert Cache(exec_answering(0, b"123456\t/data\n")).disk_usage("/data") == 123456
        assert Cache(exec_answering(1, b"du: cannot access '/data'\n")).disk_usage("/data") is None

    def test_disk_usages_map_each_path(self):
        container = exec_answering(0, b"123456\t/data/server/+files/root/pypi\n2048\t/data/server/+files/root/dev\nnoise\n")
        sizes = Cache(container).disk_usages("/data/server/+files/*/*")
        assert sizes == {"/data/server/+files/root/pypi": 123456, "/data/server/+files/root/dev": 2048}
        [(cmd, _)] = container.execs
        assert cmd[:2] == ["sh", "-c"] and "du -sb /data/server/+files/*/*" in cmd[2]

    def test_serves_core_metadata_reads_devpi_server_yml_once(self):
        container = exec_answering(0, b"devpi-server:\n  enable-core-metadata: true\n")
        cache = Cache(container)
        assert cache.serves_core_metadata() and cache.serves_core_metadata()
        assert container.execs == [(["cat", layout.SERVER_CONFIG], {})]
        assert not Cache(exec_answering(0, b"devpi-server:\n  serverdir: /data/server\n")).serves_core_metadata()
        assert not Cache(exec_answering(1, b"cat: no such file\n")).serves_core_metadata()

    def test_run_python_runs_the_rendered_template_with_the_images_python(self):
        container = exec_answering(0, b'{"files": 0}\n')
        result = Cache(container).run_python("prune.py", ("--dry-run",), {"A": "1"})
        assert result.ok and result.last_line == '{"files": 0}'
        [(cmd, env)] = container.execs
        assert cmd[0] == layout.PYTHON and cmd[1] == "-c" and cmd[-1] == "--dry-run" and env == {"A": "1"}
        assert "--max-bytes" in cmd[2]  # the script itself, rendered

    def test_a_front_server_that_cannot_flush_is_one_line_that_says_what_to_do(self):
        with pytest.raises(EngineError, match=r"could not empty the front server's page cache \(no nginx\): run `devpictl down`"):
            Cache(exec_answering(1, b"no nginx\n")).flush_front()

    def test_the_client_is_opened_once_and_closed_with_the_handle(self):
        with Cache(FakeEngine().add("default", port=3199)) as cache:
            client = cache.client
            assert cache.client is client and client.base_url == "http://127.0.0.1:3199"
        assert client.http.is_closed


class TestHttpsAndReadAuth:
    """The TLS facts, read once from the container's switches; the client every command gets from them."""

    @pytest.fixture
    def opened(self, monkeypatch):
        """The keyword arguments of each DevpiClient a Cache opens, and the logins made on them."""
        from devpictl import cache as cache_module
        from devpictl import password
        from devpictl.devpi import DevpiClient

        seen: dict[str, list] = {"clients": [], "logins": []}

        def client(base_url, **kwargs):
            seen["clients"].append((base_url, kwargs))
            return DevpiClient(base_url, **kwargs)

        monkeypatch.setattr(cache_module, "DevpiClient", client)
        monkeypatch.setattr(password, "login_root", lambda client, instance: seen["logins"].append(instance.name))
        return seen

    @staticmethod
    def https_cache(read_auth: bool = True) -> Cache:
        from devpictl import tls

        instance = Instance("default")
        tls.keep_served(instance, tls.self_signed(instance, ["cache.lan"]), self_signed=True)
        env = ("DEVPICTL_FRONT=1", "DEVPICTL_TLS=refuse", *(["DEVPICTL_READ_AUTH=1"] if read_auth else []))
        return Cache(FakeEngine().add("default", env=env))

    def test_the_facts_come_from_the_switches(self):
        cache = self.https_cache()
        assert (cache.tls, cache.read_auth) == ("refuse", True)
        assert cache.local_base_url.startswith("https://")
        plain = Cache(FakeEngine().add("default"))
        assert (plain.tls, plain.read_auth) == (None, False)
        assert plain.local_base_url.startswith("http://")

    def test_the_client_pins_the_served_certificate_and_logs_in_as_root_once(self, opened):
        import ssl

        cache = self.https_cache()
        assert cache.client is cache.client
        ((base_url, kwargs),) = opened["clients"]
        assert base_url.startswith("https://")
        context = kwargs["verify"]
        assert isinstance(context, ssl.SSLContext) and not context.check_hostname
        assert context.cert_store_stats()["x509"] == 2  # the served chain, nothing of the system's
        assert opened["logins"] == ["default"]
        cache.close()

    def test_a_plain_cache_is_trusted_as_usual_and_nobody_logs_in(self, opened):
        with Cache(FakeEngine().add("default")) as cache:
            cache.client.close()
        assert opened["clients"][0][1]["verify"] is True and opened["logins"] == []

    def test_the_waiting_client_is_pinned_but_logs_in_as_nobody(self, opened):
        import ssl

        with self.https_cache().open_client() as client:
            assert client.base_url.startswith("https://")
        assert isinstance(opened["clients"][0][1]["verify"], ssl.SSLContext) and opened["logins"] == []

    def test_a_refused_login_closes_the_client(self, monkeypatch, opened):
        from devpictl import password
        from devpictl.errors import LoginRefused

        def refuse(client, instance):
            opened["refused"] = client
            raise LoginRefused("devpi refused the login as root")

        monkeypatch.setattr(password, "login_root", refuse)
        cache = self.https_cache()
        with pytest.raises(LoginRefused):
            cache.client  # noqa: B018
        assert opened["refused"].http.is_closed and cache._client is None

    def test_warm_gets_the_pinned_trust_and_roots_basic_login(self):
        import httpx

        from devpictl.settings import ensure_root_password

        password, _ = ensure_root_password(Instance("default"))
        verify, auth = self.https_cache().http_access()
        assert not isinstance(verify, bool)
        assert isinstance(auth, httpx.BasicAuth)
        request = next(auth.auth_flow(httpx.Request("GET", "https://x/")))
        assert request.headers["Authorization"] == httpx.BasicAuth("root", password)._auth_header
        assert self.https_cache(read_auth=False).http_access()[1] is None

    def test_without_a_kept_certificate_the_client_says_what_to_do(self):
        cache = Cache(FakeEngine().add("default", env=("DEVPICTL_TLS=redirect",)))
        with pytest.raises(BadInput, match="devpictl up"):
            cache.open_client()

    def test_restart_restarts_the_container_and_reads_the_facts_again(self):
        engine = FakeEngine()
        cache = Cache(engine.add("default"))
        cache.restart()
        assert "container.restart" in engine.calls
