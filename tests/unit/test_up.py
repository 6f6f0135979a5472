"""The real `up` (CLI and core) creating a cache on a fake engine: what it remembers, and what it leaves after a signal."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl import lifecycle, password, switching
from devpictl import status as cache_status
from devpictl.cli import app
from devpictl.errors import Terminated
from devpictl.image import DEFAULT_IMAGE
from devpictl.mirrors import OFFICIAL
from devpictl.settings import Instance, load_remembered
from tests.unit.fakes import CreatingEngine
from tests.unit.test_cache import OFFICIAL_URL, FakeDevpi, configured

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
runner = CliRunner()


@pytest.fixture
def engine(monkeypatch):
    """A fresh engine (image present, network 'testnet') and a devpi that is ready at once."""
    engine = CreatingEngine(images=(DEFAULT_IMAGE,), networks=("testnet",))
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    monkeypatch.setattr(ctr, "check_port_free", lambda host, port: None)
    monkeypatch.setattr(ctr, "volume_initialised", lambda engine, image, instance: True)
    server = FakeDevpi(configured(OFFICIAL))
    for module in (lifecycle, switching, cache_status):
        monkeypatch.setattr(module, "DevpiClient", lambda base_url, **kw: server.client())
    monkeypatch.setattr(switching, "official_url", lambda container: OFFICIAL_URL)
    monkeypatch.setattr(lifecycle, "wait_for_api", lambda *a, **kw: None)
    monkeypatch.setattr(password, "login_root", lambda client, instance: None)
    monkeypatch.setattr(switching, "flush_front_cache", lambda container: None)
    engine.ready = []
    monkeypatch.setattr(lifecycle, "wait_until_ready", lambda client, project, *a: engine.ready.append(project))
    return engine


def up(*args: str):
    result = runner.invoke(app, ["up", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


class TestUpAfterDown:
    """`up` after `down` brings back the same cache: port, network, CA bundle and probe project."""

    def test_everything_comes_back(self, engine, tmp_path):
        bundle = tmp_path / "ca.pem"
        bundle.write_bytes(PEM)
        up("--port", "3299", "--network", "testnet", "--ca-bundle", str(bundle), "--probe-project", "six")
        assert runner.invoke(app, ["down"]).exit_code == 0
        engine.handed.clear()
        engine.ready.clear()

        up()  # nothing given: everything from what the first up remembered
        created = engine.created["devpictl-default"]
        assert created["ports"] == {"3141/tcp": ("127.0.0.1", 3299)}
        assert created["network"] == "testnet"
        assert engine.handed["devpictl-default"]["ca-bundle.pem"] == PEM
        assert engine.ready == ["six"]
        remembered = load_remembered(Instance("default"))
        assert (remembered["memory"], remembered["pids_limit"]) == ("2048m", 512)


class TestSignalDuringUp:
    """SIGTERM (as Terminated) and SIGINT in the middle of `up` remove what it created, exit 143 / 130."""

    @pytest.mark.parametrize("signal, code", [(Terminated, 143), (KeyboardInterrupt, 130)], ids=["SIGTERM", "SIGINT"])
    def test_cleans_up_like_a_failure(self, engine, monkeypatch, signal, code):
        def interrupted(*args):
            raise signal()

        monkeypatch.setattr(lifecycle, "wait_until_ready", interrupted)
        result = runner.invoke(app, ["up", "--port", "3299"])
        assert result.exit_code == code, result.output
        assert engine.by_name == {} and "devpictl-default-data" not in engine.volume_names
        assert "container.remove" in engine.calls and "volume.remove" in engine.calls
        assert not Instance("default").password_file.exists()


class TestSizeLimit:
    """`up --max-size`: the container's entrypoint keeps the mirrored files under it; remembered like the limits."""

    def test_handed_to_the_container_and_remembered(self, engine):
        up("--max-size", "20G")
        created = engine.created["devpictl-default"]
        assert created["environment"]["DEVPICTL_MAX_BYTES"] == str(20 * 1024**3)
        assert load_remembered(Instance("default"))["max_bytes"] == 20 * 1024**3

    def test_none_by_default(self, engine):
        up()
        assert engine.created["devpictl-default"]["environment"]["DEVPICTL_MAX_BYTES"] == "0"

    def test_another_limit_needs_down_first(self, engine):
        up("--max-size", "20G")
        result = runner.invoke(app, ["up", "--max-size", "10G"])
        assert result.exit_code == 4
        assert "runs with another size limit: run `devpictl down --name default` first" in result.stderr

    def test_a_bad_size_changes_nothing(self, engine):
        result = runner.invoke(app, ["up", "--max-size", "lots"])
        assert result.exit_code == 2
        assert result.stderr == "error: --max-size 'lots' is not a size: give a number with K, M, G or T, e.g. 20G\n"
        assert engine.mutations() == []
