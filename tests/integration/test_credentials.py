"""An upstream that needs a login: devpi fetches through devpictl's plugin, and the credentials show nowhere."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.private_upstream import PASSWORD, USER
from tests.integration.support import RUN_ID, cache_env, compose_upstream, pip_install, remove_cache, run_cli, up_on_test_upstream

NAME = f"cred{RUN_ID}"


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, docker_services, docker_compose_project_name, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("devpictl-data-credentials")
    env = cache_env(NAME, data_dir, devpi_image)
    compose_upstream(docker_services, docker_compose_project_name, "private", "six", status=401)  # it asks for a login
    try:
        index_url = up_on_test_upstream(env, test_upstream)
        yield {"env": env, "index_url": index_url, "data_dir": data_dir}
    finally:
        remove_cache(engine, NAME, env)


def test_an_upstream_behind_a_login_serves_and_never_shows_its_password(cache, engine, tmp_path):
    private = f"http://{USER}:{PASSWORD}@private:8080/simple"
    outputs = []
    switched = run_cli("set-upstream", private, "--probe-project", "six", env=cache["env"])  # the check logs in too
    outputs.append(switched.output)
    assert switched.exit_code == 0, switched.output
    status = run_cli("status", "--json", env=cache["env"])
    outputs.append(status.output)
    assert json.loads(status.stdout)["upstream_reachable"] is True, status.output
    # devpi fetched the page and the file from the private index, through the plugin.
    installed = pip_install(cache["index_url"], "six==1.16.0", tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # Nowhere: devpi's anonymously readable config, devpictl's output, the container's config and log.
    base = cache["index_url"].split("/root/pypi/")[0]
    config = httpx.get(f"{base}/root/pypi", headers={"Accept": "application/json"}, trust_env=False).text
    assert json.loads(config)["result"]["mirror_url"].rstrip("/") == "http://private:8080/simple"
    container = engine.containers.get(f"devpictl-{NAME}")
    for text in (config, *outputs, json.dumps(container.attrs), container.logs().decode(errors="replace")):
        assert PASSWORD not in text
    # The store keeps them for the next container, for the owner only.
    stored = cache["data_dir"] / "caches" / NAME / "upstream-auth.json"
    assert oct(stored.stat().st_mode & 0o777) == "0o600"
