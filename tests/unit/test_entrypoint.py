"""The container's entrypoint (templates/entrypoint.sh) run here, devpi and nginx stubbed: how it starts devpi-server."""

from __future__ import annotations

import stat
import subprocess

import pytest

from devpictl import image as img
from devpictl import layout

ENTRYPOINT = img.render_template("entrypoint.sh")  # as the image carries it
PRIMARY_URL = "http://cache-a:3141"
SECRET = "s" * 44


@pytest.fixture
def entrypoint(tmp_path):
    """The real entrypoint.sh, its /data and /run paths moved under tmp_path, devpi and nginx stubbed.

    Each stub writes its argv to tmp_path/NAME.args, so a test sees how devpi-server is started.
    """
    root = tmp_path / "root"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in ("data/server", "run/devpictl", "tmp"):
        (root / d).mkdir(parents=True)
    (root / "data/server/.nodeinfo").write_text("{}")  # an initialised volume
    (root / "data/secret").write_text("x" * 32)
    for stub in ("devpi-server", "nginx", "devpi-init", "devpi-gen-secret"):
        path = bin_dir / stub
        # nginx outlives devpi: the entrypoint stops both when the first exits, so nginx's
        # stub waits until devpi's has written its argv (whole: written aside, then renamed).
        args = f"{tmp_path}/{stub}.args"
        linger = f'while [ ! -e "{tmp_path}/devpi-server.args" ]; do sleep 0.05; done\n' if stub == "nginx" else ""
        path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{args}.tmp" && mv "{args}.tmp" "{args}"\n{linger}')
        path.chmod(0o755)

    def moved(text: str) -> str:
        for real in ("/data", "/run/devpictl", "/tmp/nginx", "/dev/shm"):
            text = text.replace(real, f"{root}{real}")
        return text.replace(layout.FLUSH_CACHE, f"{bin_dir}/devpictl-flush-cache")

    flush = bin_dir / "devpictl-flush-cache"
    flush.write_text(moved(img.render_template("flush-cache.sh")))
    flush.chmod(0o755)
    script = tmp_path / "entrypoint.sh"
    script.write_text(moved(ENTRYPOINT))

    def run(**env: str) -> list[str]:
        environ = {"PATH": f"{bin_dir}:/usr/bin:/bin", **env}
        done = subprocess.run(["bash", str(script)], env=environ, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return (tmp_path / "devpi-server.args").read_text().split()

    return run


class TestEntrypoint:
    @pytest.mark.parametrize("front", ["0", "1"])
    def test_offline_appends_offline_mode(self, entrypoint, front):
        args = entrypoint(DEVPICTL_FRONT=front, DEVPICTL_OFFLINE="1")
        assert args[-1] == "--offline-mode"
        assert args[:2] == ["-c", "/etc/devpi/devpi-server.yml"]

    @pytest.mark.parametrize("env", [{"DEVPICTL_OFFLINE": "0"}, {}])
    def test_online_by_default(self, entrypoint, env):
        assert "--offline-mode" not in entrypoint(DEVPICTL_FRONT="0", **env)

    def test_the_image_carries_this_entrypoint(self):
        import tarfile

        with tarfile.open(fileobj=img.build_context(img.BuildOptions())) as tar:
            shipped = tar.extractfile("entrypoint.sh").read()
        assert shipped == ENTRYPOINT.encode()
        assert b"--offline-mode" in shipped


class TestReplicaRoles:
    """What entrypoint.sh gives devpi for a primary and a replica (`up --replica-of`)."""

    def test_a_replica_follows_its_primary(self, entrypoint):
        args = entrypoint(DEVPICTL_FRONT="1", DEVPICTL_PRIMARY_URL=PRIMARY_URL)
        assert args[-2:] == ["--primary-url", PRIMARY_URL]
        assert "--role" not in args

    def test_behind_its_front_server_a_cache_can_take_replicas(self, entrypoint):
        args = entrypoint(DEVPICTL_FRONT="1")
        assert args[-2:] == ["--role", "primary"]

    def test_without_its_front_server_devpi_would_show_its_changelog_to_anyone(self, entrypoint):
        assert "--role" not in entrypoint(DEVPICTL_FRONT="0")

    def test_a_handed_in_secret_replaces_devpis_and_goes(self, entrypoint, tmp_path):
        handed = tmp_path / "root/run/devpictl/devpi-secret"
        handed.write_text(SECRET)
        entrypoint(DEVPICTL_FRONT="0", DEVPICTL_PRIMARY_URL=PRIMARY_URL)
        secret = tmp_path / "root/data/secret"
        assert secret.read_text() == SECRET
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600  # devpi refuses any other mode
        assert not handed.exists()

    def test_plain_http_by_default(self, entrypoint, tmp_path):
        entrypoint(DEVPICTL_FRONT="1")
        assert access_conf(tmp_path) == ["listen 3141 reuseport;"]

    @pytest.mark.parametrize("http", ["redirect", "refuse"])
    def test_https_with_the_handed_in_certificate_moved_into_the_volume(self, entrypoint, tmp_path, http):
        run = tmp_path / "root/run/devpictl"
        (run / layout.TLS_CERT_FILE).write_text("CERT")
        (run / layout.TLS_KEY_FILE).write_text("KEY")
        entrypoint(DEVPICTL_FRONT="1", DEVPICTL_TLS=http, DEVPICTL_READ_AUTH="1")
        tls_dir = tmp_path / "root/data/tls"
        assert (tls_dir / "cert.pem").read_text() == "CERT" and (tls_dir / "key.pem").read_text() == "KEY"
        assert stat.S_IMODE((tls_dir / "key.pem").stat().st_mode) == 0o600
        assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
        assert not (run / layout.TLS_KEY_FILE).exists() and not (run / layout.TLS_CERT_FILE).exists()
        lines = access_conf(tmp_path)
        assert "listen 3141 ssl reuseport;" in lines
        assert f"ssl_certificate_key {tls_dir}/key.pem;" in lines
        assert ("error_page 497 =308 https://$http_host$request_uri;" in lines) == (http == "redirect")
        assert "auth_request /+devpictl/authcheck;" in lines

    def test_https_without_a_certificate_stops(self, entrypoint, tmp_path):
        with pytest.raises(AssertionError, match="holds no certificate"):
            entrypoint(DEVPICTL_FRONT="1", DEVPICTL_TLS="redirect")

    def test_a_mounted_secret_stays(self, entrypoint, tmp_path):
        mounted = tmp_path / "mounted-secret"
        mounted.write_text(SECRET)
        entrypoint(DEVPICTL_FRONT="0", DEVPICTL_SECRET_FILE=str(mounted))
        assert (tmp_path / "root/data/secret").read_text() == SECRET
        assert mounted.exists()


def access_conf(tmp_path) -> list[str]:
    """The listen, TLS and login lines the entrypoint wrote for nginx."""
    return (tmp_path / "root" / layout.FRONT_ACCESS_CONF.lstrip("/")).read_text().splitlines()
