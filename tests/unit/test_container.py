"""The Docker side of a cache through a fake engine: finding it, creating it, handing files in, reading it back."""

from __future__ import annotations

import io
import tarfile
from types import SimpleNamespace

import docker.errors
import pytest

from devpictl import container as ctr
from devpictl import frontlog, layout
from devpictl.errors import BadInput, EngineError, EngineUnavailable, PortInUse
from devpictl.frontlog import HEALTH_CHECK_AGENT
from devpictl.settings import Instance
from tests.unit.fakes import CreatingEngine, FakeEngine

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


class TestEngineUnreachable:
    @pytest.mark.parametrize(
        "text, said",
        [
            (
                "('Connection aborted.', PermissionError(13, 'Permission denied'))",
                "(permission denied on the engine's socket): add your user to the docker group",
            ),
            ("('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))", "(no engine socket): start Docker"),
            ("Connection refused", "(connection refused): start Docker"),
        ],
        ids=["permission", "no-socket", "refused"],
    )
    def test_the_reason_and_the_fix(self, text, said):
        message = str(EngineUnavailable.from_exception(docker.errors.DockerException(text)))
        assert message.startswith(f"cannot reach the Docker engine {said}")

    def test_an_unknown_reason_is_kept_short_on_one_line(self):
        message = str(EngineUnavailable.from_exception(docker.errors.DockerException("odd\n" + "x" * 300)))
        assert "\n" not in message and len(message) < 250
        assert message.startswith("cannot reach the Docker engine (odd xxx")
        assert message.endswith("...): start Docker, or set DOCKER_HOST to a running engine")

    def test_connect_turns_an_unreachable_engine_into_one_error(self, monkeypatch):
        def from_env(**kwargs):
            raise docker.errors.DockerException("Connection refused")

        monkeypatch.setattr(docker, "from_env", from_env)
        with pytest.raises(EngineUnavailable, match=r"\(connection refused\): start Docker"):
            ctr.connect()


class TestFinding:
    def test_no_container_is_none(self):
        assert ctr.find_container(FakeEngine(), Instance("default")) is None

    def test_a_container_devpictl_did_not_make_is_refused(self):
        engine = FakeEngine()
        engine.add("default").labels = {}
        with pytest.raises(EngineError, match="'devpictl-default' exists but was not made by devpictl"):
            ctr.find_container(engine, Instance("default"))

    def test_a_container_of_another_cache_name_is_refused(self):
        engine = FakeEngine()
        engine.add("default").labels["devpictl.instance"] = "other"
        with pytest.raises(EngineError, match="pick another --name"):
            ctr.find_container(engine, Instance("default"))


class TestImagesAndVolumes:
    def test_image_exists_and_its_labels(self):
        engine = FakeEngine(images=("team/devpi:1",))
        engine.image_labels["team/devpi:1"] = {"devpictl.web": "1"}
        assert ctr.image_exists(engine, "team/devpi:1") and not ctr.image_exists(engine, "team/devpi:2")
        assert ctr.image_labels(engine, "team/devpi:1") == {"devpictl.web": "1"}
        assert ctr.image_labels(engine, "team/devpi:2") is None

    def test_image_label_is_the_first_tag_else_the_short_id(self):
        container = FakeEngine().add("default")
        assert ctr.image_label(container) == "devpictl/devpi-server:6.20.3"
        container.image.tags = []
        assert ctr.image_label(container) == "sha256:1234"

    def test_ensure_volume_creates_it_once(self):
        engine = CreatingEngine()
        assert ctr.ensure_volume(engine, Instance("ci")) is True
        assert ctr.ensure_volume(engine, Instance("ci")) is False
        assert engine.calls == ["volumes.create"]
        assert ctr.volume_exists(engine, Instance("ci")) and not ctr.volume_exists(engine, Instance("other"))

    def test_a_volume_devpictl_did_not_make_is_not_ours(self):
        engine = FakeEngine(volumes=("devpictl-ci-data",))
        ctr.check_volume_is_ours(engine, Instance("ci"))
        engine.foreign_volumes.add("devpictl-ci-data")
        with pytest.raises(EngineError, match="'devpictl-ci-data' was not made by devpictl, so `down --volumes` leaves it"):
            ctr.check_volume_is_ours(engine, Instance("ci"))

    def test_remove_volume_waits_while_the_engine_still_holds_it(self, monkeypatch):
        monkeypatch.setattr(ctr.time, "sleep", lambda seconds: None)
        answers = iter([docker.errors.APIError("volume is in use"), docker.errors.APIError("volume is in use"), None])
        removed: list[str] = []

        def remove():
            error = next(answers)
            if error is not None:
                raise error
            removed.append("devpictl-ci-data")

        engine = FakeEngine()
        missing = engine.volumes.get
        engine.volumes.get = lambda name: SimpleNamespace(remove=remove) if name == "devpictl-ci-data" else missing(name)
        ctr.remove_volume(engine, Instance("ci"))
        assert removed == ["devpictl-ci-data"]
        ctr.remove_volume(engine, Instance("gone"))  # no such volume: nothing to do


class TestPorts:
    def test_another_cache_on_the_port_is_named(self):
        engine = FakeEngine()
        engine.add("ci", port=3200)
        with pytest.raises(PortInUse) as info:
            ctr.check_no_cache_on_port(engine, 3200)
        assert str(info.value) == "port 3200 belongs to devpictl cache 'ci': pick another with --port, or `devpictl down --name ci` first"
        ctr.check_no_cache_on_port(engine, 3201)

    def test_the_default_cache_needs_no_name_in_the_fix(self):
        engine = FakeEngine()
        engine.add("default", port=3200)
        with pytest.raises(PortInUse, match=r"or `devpictl down` first"):
            ctr.check_no_cache_on_port(engine, 3200)

    @pytest.mark.parametrize(
        "host, port, published, base",
        [
            ("127.0.0.1", "3199", ("127.0.0.1", 3199), "http://127.0.0.1:3199"),
            ("0.0.0.0", "3141", ("0.0.0.0", 3141), "http://127.0.0.1:3141"),
            ("", "3141", ("0.0.0.0", 3141), "http://127.0.0.1:3141"),
            ("::1", "3141", ("::1", 3141), "http://[::1]:3141"),
            ("::", "3141", ("::", 3141), "http://[::]:3141"),
        ],
    )
    def test_published_address_and_the_url_to_reach_it(self, host, port, published, base):
        container = FakeEngine().add("default")
        container.attrs["HostConfig"]["PortBindings"]["3141/tcp"] = [{"HostIp": host, "HostPort": port}]
        assert ctr.published_address(container) == published
        assert ctr.local_base_url(container) == base

    def test_no_port_binding_reads_as_the_default(self):
        container = FakeEngine().add("default")
        container.attrs["HostConfig"]["PortBindings"] = {}
        assert ctr.published_address(container) == ("0.0.0.0", 3141)


class TestCreate:
    def spec(self, **kwargs) -> ctr.ContainerSpec:
        return ctr.ContainerSpec(Instance("x"), "img", "127.0.0.1", 3141, **kwargs)

    @pytest.mark.parametrize("offline, value", [(True, "1"), (False, "0")])
    def test_container_environment_says_offline(self, offline, value):
        engine = CreatingEngine()
        ctr.create_container(engine, self.spec(offline=offline))
        assert engine.created["devpictl-x"]["environment"]["DEVPICTL_OFFLINE"] == value

    def test_container_gets_memory_and_pids_limits(self):
        engine = CreatingEngine()
        ctr.create_container(engine, self.spec(memory=2 * 1024**3, pids_limit=512))
        created = engine.created["devpictl-x"]
        assert created["mem_limit"] == created["memswap_limit"] == 2 * 1024**3
        assert created["pids_limit"] == 512

    def test_labels_port_volume_and_restart_policy(self):
        engine = CreatingEngine()
        ctr.create_container(engine, self.spec(network="testnet", max_bytes=20 * 1024**3, front=False))
        created = engine.created["devpictl-x"]
        assert created["labels"] == Instance("x").labels()
        assert created["ports"] == {"3141/tcp": ("127.0.0.1", 3141)}
        assert created["volumes"] == {"devpictl-x-data": {"bind": "/data", "mode": "rw"}}
        assert created["restart_policy"] == {"Name": "unless-stopped"} and created["init"] is True
        assert created["network"] == "testnet"
        assert created["environment"] == {"DEVPICTL_FRONT": "0", "DEVPICTL_OFFLINE": "0", "DEVPICTL_MAX_BYTES": str(20 * 1024**3)}

    @pytest.mark.parametrize(
        "error, said",
        [
            (
                docker.errors.NotFound("404", explanation="network testnet not found"),
                "network testnet not found; check --network and --image",
            ),
            (docker.errors.APIError("500", explanation="Conflict. The name is in use"), "Conflict. The name is in use"),
        ],
        ids=["not-found", "refused"],
    )
    def test_an_engine_that_refuses_is_one_error(self, error, said):
        engine = FakeEngine()

        def refuse(*args, **kwargs):
            raise error

        engine.containers.create = refuse
        with pytest.raises(EngineError) as info:
            ctr.create_container(engine, self.spec())
        assert str(info.value) == f"cannot create the cache container: {said}"

    def test_the_network_must_exist(self):
        ctr.check_network(FakeEngine(networks=("testnet",)), "testnet")
        with pytest.raises(BadInput, match="there is no Docker network 'nope': create it with `docker network create nope`"):
            ctr.check_network(FakeEngine(), "nope")


class TestHandInFiles:
    def test_files_arrive_read_only_in_the_run_dir(self):
        container = FakeEngine().add("default")
        arrived: list[tuple[str, bytes]] = []
        container.put_archive = lambda path, data: arrived.append((path, data)) or True
        ctr.hand_in_files(container, {"ca-bundle.pem": PEM})
        [(path, data)] = arrived
        assert path == layout.RUN_DIR
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            [member] = tar.getmembers()
            assert (member.name, member.mode) == ("ca-bundle.pem", 0o444)
            assert tar.extractfile(member).read() == PEM

    def test_nothing_to_hand_in_asks_nothing(self):
        engine = FakeEngine()
        ctr.hand_in_files(engine.add("default"), {})
        assert engine.calls == []

    def test_an_engine_that_does_not_take_them_is_an_error(self):
        container = FakeEngine().add("default")
        container.put_archive = lambda path, data: False
        with pytest.raises(EngineError, match="could not copy files into devpictl-default"):
            ctr.hand_in_files(container, {"ca-bundle.pem": PEM})


class TestStartAndRemove:
    @pytest.mark.parametrize(
        "text, error, said",
        [
            (
                "driver failed: Bind for 127.0.0.1:3141 failed: port is already allocated",
                PortInUse,
                "the engine could not publish the cache's port (port is already allocated): pick another with --port",
            ),
            ("OCI runtime create failed", EngineError, "cannot start devpictl-default: OCI runtime create failed"),
        ],
        ids=["port", "other"],
    )
    def test_a_start_the_engine_refuses(self, text, error, said):
        container = FakeEngine().add("default")

        def start():
            raise docker.errors.APIError("500", explanation=text)

        container.start = start
        with pytest.raises(error) as info:
            ctr.start(container)
        assert str(info.value) == said

    def test_remove_goes_on_when_stop_fails_and_the_container_is_gone(self):
        engine = FakeEngine()
        container = engine.add("default")

        def stop(**kwargs):
            raise docker.errors.APIError("500", explanation="cannot stop")

        def remove(**kwargs):
            engine.calls.append("container.remove")
            raise docker.errors.NotFound("gone")

        container.stop, container.remove = stop, remove
        ctr.remove(container)
        assert engine.calls == ["container.remove"]

    def test_run_once_names_the_last_line_of_a_failure(self):
        engine = FakeEngine()
        ran = engine.add("throwaway")
        ran.wait = lambda timeout: {"StatusCode": 3}
        ran.logs = lambda **kw: b"starting\nError: no such database\n"
        engine.containers.create = lambda image, **kwargs: ran
        with pytest.raises(EngineError, match="devpi-server --version failed in img: Error: no such database"):
            ctr.run_once(engine, "img", ["devpi-server", "--version"])
        assert "container.remove" in engine.calls  # removed, failure or not

    def test_run_once_returns_the_output(self):
        engine = FakeEngine()
        ran = engine.add("throwaway")
        ran.wait = lambda timeout: {"StatusCode": 0}
        ran.logs = lambda **kw: b"yes\n"
        made: dict = {}
        engine.containers.create = lambda image, **kwargs: made.update(kwargs) or ran
        assert ctr.run_once(engine, "img", ["true"], volume="devpictl-x-data") == "yes"
        assert made["network_mode"] == "none"
        assert made["volumes"] == {"devpictl-x-data": {"bind": "/data", "mode": "ro"}}


class TestReadingItBack:
    def test_switches_from_the_environment(self):
        engine = FakeEngine()
        made_before_the_switches = engine.add("a", env=())
        assert ctr.front_enabled(made_before_the_switches) and not ctr.offline_enabled(made_before_the_switches)
        assert ctr.max_bytes(made_before_the_switches) == 0
        container = engine.add("b", env=("DEVPICTL_FRONT=0", "DEVPICTL_OFFLINE=1", f"DEVPICTL_MAX_BYTES={20 * 1024**3}"))
        assert not ctr.front_enabled(container) and ctr.offline_enabled(container)
        assert ctr.max_bytes(container) == 20 * 1024**3

    def test_offline_enabled_reads_the_environment(self):
        assert ctr.offline_enabled(FakeEngine().add("default", env=("DEVPICTL_OFFLINE=1",)))
        assert not ctr.offline_enabled(FakeEngine().add("default", env=("DEVPICTL_OFFLINE=0",)))
        assert not ctr.offline_enabled(FakeEngine().add("default", env=()))  # made before offline mode existed

    def test_a_max_bytes_that_is_no_number_is_none(self):
        assert ctr.max_bytes(FakeEngine().add("default", env=("DEVPICTL_MAX_BYTES=lots",))) == 0

    def test_limits_and_health(self):
        container = FakeEngine().add("default")
        assert ctr.limits(container) == (0, 0)
        container.attrs["HostConfig"].update(Memory=2 * 1024**3, PidsLimit=512)
        assert ctr.limits(container) == (2 * 1024**3, 512)
        assert ctr.health(container) == "healthy"
        del container.attrs["State"]
        assert ctr.health(container) == "none"  # an image without a health check

    @pytest.mark.parametrize(
        "status, restarts, failed",
        [
            ("running", 2, False),
            ("running", 3, True),
            ("restarting", 2, True),
            ("exited", 2, True),
            ("dead", 2, True),
        ],
    )
    def test_failed_since(self, status, restarts, failed):
        container = FakeEngine().add("default", status=status)
        container.attrs["RestartCount"] = restarts
        assert ctr.failed_since(container, 2) is failed

    @pytest.mark.parametrize("text, line", [("a\n\n  b  \n\n", "b"), ("one", "one"), ("", "no output"), ("\n \n", "no output")])
    def test_last_line(self, text, line):
        assert ctr.last_line(text) == line

    def test_health_checks_are_told_apart(self):
        line = '2026-11-25T10:55:16+00:00 front {} "{} HTTP/1.1" 200 310 cache=- disk=- 0.001 s "{}"'
        assert ctr.is_health_check(line.format("127.0.0.1", "GET /+api", HEALTH_CHECK_AGENT))
        assert ctr.is_health_check("2026-11-25 10:55:16,670 INFO  [req0] GET /+api\n")
        assert not ctr.is_health_check(line.format("172.17.0.1", "GET /+api", "devpi-client/7.3.0"))
        # The agent is anyone's to send: from outside the container it hides nothing (a login guess included).
        assert not ctr.is_health_check(line.format("172.17.0.1", "POST /+login", HEALTH_CHECK_AGENT))
        assert frontlog.read(line.format("172.17.0.1", "POST /+login", HEALTH_CHECK_AGENT)) is not None


class TestImageLabel:
    """What `status` shows as the image: the tag the container was made from, even when another tag names the same image."""

    def test_the_tag_it_was_created_from_among_several(self):
        container = FakeEngine().add("default")
        container.image.tags = ["aaa/other:latest", "devpictl/devpi-server:6.20.3"]
        container.attrs["Config"]["Image"] = "devpictl/devpi-server:6.20.3"
        assert ctr.image_label(container) == "devpictl/devpi-server:6.20.3"

    def test_a_tag_moved_elsewhere_gives_the_first_one(self):
        container = FakeEngine().add("default")
        container.image.tags = ["team/devpi:2"]
        container.attrs["Config"]["Image"] = "team/devpi:1"
        assert ctr.image_label(container) == "team/devpi:2"

    def test_a_removed_image_gives_the_name_it_was_created_from(self):
        container = FakeEngine().add("default")
        container.image = None
        container.attrs["Config"]["Image"] = "team/devpi:1"
        assert ctr.image_label(container) == "team/devpi:1"
