"""Fixtures more than one unit test file uses."""

from __future__ import annotations

import pytest

from devpictl import container as ctr
from devpictl import image as img
from devpictl import layout, lifecycle, network, password, probe
from devpictl.cache import Cache
from devpictl.coremetadata import MetadataCheck
from devpictl.image import DEFAULT_IMAGE
from devpictl.mirrors import OFFICIAL
from devpictl.settings import Instance, ensure_root_password
from tests.unit.fakes import ROOT_PASSWORD, CreatingEngine, FakeDevpi, FakeEngine, configured, fake_cache_of


@pytest.fixture(autouse=True)
def fake_caches(monkeypatch):
    """Every Cache devpictl makes of a (fake) container is that container's FakeCache: no command runs in it."""
    monkeypatch.setattr(Cache, "of", staticmethod(fake_cache_of))


@pytest.fixture
def running_cache(monkeypatch):
    """lifecycle.up against a running container and a fake devpi; records readiness waits and upstream checks."""
    ensure_root_password(Instance("default"))
    engine = FakeEngine()
    seen: dict[str, list] = {"ready": [], "checked": [], "server": []}

    def make(offline: bool, ixconfig: dict, core_metadata: bool = False):
        # The container's devpi-server.yml: with enable-core-metadata, or as an older image wrote it.
        config = img.render_server_config(img.BuildOptions(devpi_server_version="6.20.3" if core_metadata else "6.19.1"))
        container = engine.add("default", env=("DEVPICTL_FRONT=1", f"DEVPICTL_OFFLINE={int(offline)}"))
        container.cache.files[layout.SERVER_CONFIG] = config
        server = FakeDevpi(ixconfig)
        seen["server"].append(server)
        server.serve(monkeypatch)
        return container

    monkeypatch.setattr(lifecycle, "wait_for_api", lambda *a, **kw: None)
    monkeypatch.setattr(lifecycle, "wait_until_ready", lambda client, project, *a: seen["ready"].append(project))
    monkeypatch.setattr(probe, "check_upstream", lambda cache, url, project, *a: seen["checked"].append(url))
    monkeypatch.setattr(password, "login_root", lambda client, instance: client.login("root", ROOT_PASSWORD))

    def measure(cache, url, project, timeout=20.0):
        seen["measured"].append((url, project))
        return seen["metadata"]

    seen["measured"] = []
    seen["metadata"] = MetadataCheck(True, "pip-24.0-py3-none-any.whl.metadata answers")
    monkeypatch.setattr(probe, "measure_core_metadata", measure)
    return engine, make, seen


@pytest.fixture
def fresh_engine(monkeypatch):
    """An engine on which `up` creates a cache (image present, network 'testnet'), and a devpi that is ready at once.

    ``ready`` lists the projects `up` waited for.
    """
    engine = CreatingEngine(images=(DEFAULT_IMAGE,), networks=("testnet",))
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    monkeypatch.setattr(network, "check_port_free", lambda host, port: None)
    monkeypatch.setattr(ctr, "volume_initialised", lambda engine, image, instance: True)
    server = FakeDevpi(configured(OFFICIAL))
    server.serve(monkeypatch)
    monkeypatch.setattr(lifecycle, "wait_for_api", lambda *a, **kw: None)
    monkeypatch.setattr(password, "login_root", lambda client, instance: None)
    engine.ready = []
    monkeypatch.setattr(lifecycle, "wait_until_ready", lambda client, project, *a: engine.ready.append(project))
    return engine
