"""The address a cache is published on: resolved to a literal before anything is published, and the warning beyond loopback."""

from __future__ import annotations

import json
import socket

import pytest

from devpictl import container as ctr
from devpictl import network
from devpictl.errors import BadInput, PortInUse
from devpictl.mirrors import OFFICIAL
from devpictl.precedence import save_remembered
from devpictl.settings import Instance
from tests.unit.clihelp import invoke
from tests.unit.fakes import configured


class TestCheckHost:
    """Only literal addresses reach the engine, which takes any other value as every interface."""

    @pytest.mark.parametrize(
        "value, literal",
        [
            ("127.0.0.1", "127.0.0.1"),
            ("localhost", "127.0.0.1"),
            ("LOCALHOST.", "127.0.0.1"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("0.0.0.0", "0.0.0.0"),
            ("::", "::"),
            (" 10.0.0.5 ", "10.0.0.5"),
            ("0:0::1", "::1"),
        ],
    )
    def test_literals(self, value, literal, monkeypatch):
        monkeypatch.setattr("socket.getaddrinfo", lambda *a, **kw: pytest.fail("a literal needs no resolver"))
        assert network.check_host(value) == literal

    def test_a_name_resolves_to_its_ipv4_address_first(self, monkeypatch):
        import socket

        answers = [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::5", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.5", 0)),
        ]
        monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **kw: answers if host == "cache.example" else pytest.fail(host))
        assert network.check_host("cache.example") == "192.0.2.5"

    @pytest.mark.parametrize(
        "value, fragment",
        [
            ("not an ip", "is not an IP address or host name"),
            ("127.0.0.1:80", "carries a port"),
            ("[::1]:3141", "carries a port"),
            ("localhost:3141", "carries a port"),
            ("", "is not an IP address"),
            ("http://127.0.0.1", "is not an IP address"),
            ("[::1", "is not an IP address"),
            ("::1]", "is not an IP address"),
            ("256.1.1.1", "does not resolve"),
        ],
    )
    def test_refused(self, value, fragment, monkeypatch):
        import socket

        def getaddrinfo(*args, **kwargs):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        with pytest.raises(BadInput, match=fragment):
            network.check_host(value)

    @pytest.mark.parametrize(
        "host, loopback",
        [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("0.0.0.0", False), ("::", False), ("192.0.2.1", False), ("", False)],
    )
    def test_only_loopback_is_local(self, host, loopback):
        assert network.publishes_to_network(host) is not loopback


@pytest.fixture
def published(running_cache, monkeypatch):
    """The real up (CLI and core) on a running cache whose container is published on the address a test names."""
    engine, make, _ = running_cache
    monkeypatch.setattr(ctr, "connect", lambda: engine)

    def publish(host: str) -> None:
        container = make(False, configured(OFFICIAL))
        container.attrs["HostConfig"]["PortBindings"]["3141/tcp"][0]["HostIp"] = host

    return publish


class TestBindAllWarning:
    """The warning follows the address the container is published on, whatever chose it."""

    @pytest.mark.parametrize(
        "args, env, remembered, host",
        [
            (["--host", "0.0.0.0"], {}, None, "0.0.0.0"),
            ([], {"DEVPICTL_HOST": "0.0.0.0"}, None, "0.0.0.0"),
            ([], {}, "0.0.0.0", "0.0.0.0"),
            (["--host", "::"], {}, None, "::"),
            ([], {}, None, "0.0.0.0"),  # nothing asked for it: the container's published address decides
            (["--host", "192.0.2.10"], {}, None, "192.0.2.10"),  # one address, but not loopback
        ],
        ids=["flag", "environment", "remembered", "ipv6", "published-only", "lan-address"],
    )
    @pytest.mark.parametrize("json_output", [False, True])
    def test_warned_on_stderr_whatever_chose_the_host(self, published, args, env, remembered, host, json_output):
        published(host)
        if remembered:
            save_remembered(Instance("default"), {"host": remembered})
        result = invoke("up", *args, *(["--json"] if json_output else []), env=env)
        assert result.exit_code == 0, result.output
        warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert len(warning) == 1, result.stderr
        assert f"published on {host}:3141" in warning[0]
        assert "anyone who can reach it can read the cache" in warning[0]
        assert "with the root password, write to it" in warning[0]
        assert "warning" not in result.stdout
        if json_output:
            json.loads(result.stdout)  # stdout stays pure JSON

    @pytest.mark.parametrize("host", ["127.0.0.1", "::1", "127.0.0.2"])
    def test_loopback_is_not_warned_about(self, published, host):
        published(host)
        result = invoke("up")
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output


class TestPortFree:
    def test_a_port_something_listens_on_is_in_use(self):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            with pytest.raises(PortInUse) as info:
                network.check_port_free("127.0.0.1", port)
        assert str(info.value) == f"port {port} on 127.0.0.1 is already in use: pick another with --port"

    def test_a_free_port_passes(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        network.check_port_free("127.0.0.1", port)

    def test_an_address_this_machine_does_not_have(self):
        with pytest.raises(PortInUse, match="this machine has no address 192.0.2.1: pass --host"):
            network.check_port_free("192.0.2.1", 3141)  # TEST-NET-1: never assigned to a machine
