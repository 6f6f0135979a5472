"""`up` itself (lifecycle.up, and through the CLI): creating a cache on a fake engine, what it remembers, what it leaves
after a signal, and `up` on a running cache, offline and online."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl import lifecycle, reporter
from devpictl.cli import app
from devpictl.coremetadata import MetadataCheck
from devpictl.errors import Conflict, Terminated
from devpictl.mirrors import OFFICIAL
from devpictl.precedence import load_remembered
from devpictl.settings import Instance
from tests.unit.fakes import TUNA, configured, up_options

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
runner = CliRunner()


@pytest.fixture
def engine(fresh_engine):
    return fresh_engine


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


class TestFailedFirstUp:
    def test_leaves_no_ghost_in_ls_and_keeps_the_log(self, engine, monkeypatch):
        from devpictl.errors import UpstreamUnreachable

        def unreachable(*args):
            raise UpstreamUnreachable("upstream https://mirror.example/simple did not answer")

        monkeypatch.setattr(lifecycle, "wait_until_ready", unreachable)
        monkeypatch.setattr(ctr, "logs_tail", lambda container, lines=40: "devpi's last words\n")
        result = runner.invoke(app, ["up", "--port", "3299"])
        assert result.exit_code == 5, result.output
        assert Instance("default").failure_log.read_text() == "devpi's last words\n"  # the error line points at it
        listed = runner.invoke(app, ["ls"])
        assert listed.stdout == "No caches here yet: `devpictl up` makes one.\n", listed.output


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


class TestUpOffline:
    """`up` on a running cache (see conftest.running_cache): offline asks no upstream, online follows the measurements."""

    def test_offline_waits_for_the_api_only(self, running_cache):
        engine, make, seen = running_cache
        make(True, configured(TUNA))
        result = lifecycle.up(engine, up_options(offline=True), reporter.QuietReporter())
        assert result.offline is True
        assert seen["ready"] == [] and seen["checked"] == []
        assert load_remembered(Instance("default"))["offline"] is True
        assert engine.mutations() == []

    def test_online_waits_until_the_probe_lists_files(self, running_cache):
        engine, make, seen = running_cache
        make(False, configured(TUNA))
        result = lifecycle.up(engine, up_options(), reporter.QuietReporter())
        assert result.offline is False
        assert seen["ready"] == ["pip"]
        assert load_remembered(Instance("default"))["offline"] is False

    def test_offline_refuses_to_switch_the_upstream_and_asks_nobody(self, running_cache):
        engine, make, seen = running_cache
        make(True, configured(OFFICIAL))
        with pytest.raises(Conflict, match="offline mode and asks no upstream"):
            lifecycle.up(engine, up_options(offline=True, upstream=TUNA), reporter.QuietReporter())
        assert seen["checked"] == []
        assert seen["server"][0].patches() == []

    def test_offline_keeps_its_upstream(self, running_cache):
        engine, make, seen = running_cache
        make(True, configured(TUNA))
        result = lifecycle.up(engine, up_options(offline=True, upstream=TUNA), reporter.QuietReporter())
        assert result.upstream is TUNA and result.actions == []

    def test_offline_announces_the_metadata_of_stored_wheels_without_asking(self, running_cache):
        # Offline, devpi lists only stored wheels and reads their METADATA out of them.
        engine, make, seen = running_cache
        make(True, configured(TUNA), core_metadata=True)
        result = lifecycle.up(engine, up_options(offline=True), reporter.QuietReporter())
        assert seen["server"][0].patches() == [["mirror_provides_core_metadata=true"]]
        assert result.core_metadata is True
        assert seen["measured"] == []

    def test_online_up_follows_the_measurement(self, running_cache):
        engine, make, seen = running_cache
        make(False, {**configured(TUNA), "mirror_provides_core_metadata": True}, core_metadata=True)
        seen["metadata"] = MetadataCheck(False, "pip-24.0-py3-none-any.whl.metadata answers HTTP 404")
        result = lifecycle.up(engine, up_options(), reporter.QuietReporter())
        assert seen["measured"] == [(TUNA.url, "pip")]
        assert seen["server"][0].patches() == [["mirror_provides_core_metadata=false"]]
        assert result.core_metadata is False
        assert result.actions == ["stopped announcing core metadata: pip-24.0-py3-none-any.whl.metadata answers HTTP 404"]

    def test_a_second_up_with_the_same_measurement_changes_nothing(self, running_cache):
        engine, make, seen = running_cache
        make(False, {**configured(TUNA), "mirror_provides_core_metadata": True}, core_metadata=True)
        result = lifecycle.up(engine, up_options(), reporter.QuietReporter())
        assert result.actions == [] and result.core_metadata is True
        assert seen["server"][0].patches() == []

    def test_an_image_without_core_metadata_is_neither_measured_nor_changed(self, running_cache):
        # devpi-server < 6.20 refuses the index option: it must never be sent.
        engine, make, seen = running_cache
        make(False, configured(TUNA), core_metadata=False)
        result = lifecycle.up(engine, up_options(), reporter.QuietReporter())
        assert seen["measured"] == [] and seen["server"][0].patches() == []
        assert result.core_metadata is False


class TestUpPagePolicy:
    """`up` hands the page policy into the running cache through its Cache, and empties the front's pages, only when it changed."""

    def test_a_new_policy_is_handed_in_once(self, running_cache, monkeypatch):
        from devpictl import layout, policy

        engine, make, _ = running_cache
        monkeypatch.setattr(ctr, "runs_image", lambda *a: True)  # the image the first `up` remembered is the one it runs
        cache = make(False, configured(TUNA)).cache
        result = lifecycle.up(engine, up_options(min_release_age="7d", deny=["dpctl-evil"]), reporter.QuietReporter())
        assert "page policy: files younger than 1w held back; denied: dpctl-evil" in result.actions
        assert cache.handed[layout.PAGE_POLICY_FILE].decode() == cache.files[policy.POLICY_PATH]
        assert json.loads(cache.files[policy.POLICY_PATH])["deny"] == ["dpctl-evil"] and cache.flushes == 1
        again = lifecycle.up(engine, up_options(), reporter.QuietReporter())  # remembered: the same policy
        assert not any(action.startswith("page policy") for action in again.actions) and cache.flushes == 1

    def test_no_policy_asked_hands_nothing_in(self, running_cache):
        from devpictl import layout

        engine, make, _ = running_cache
        cache = make(False, configured(TUNA)).cache
        result = lifecycle.up(engine, up_options(), reporter.QuietReporter())
        assert layout.PAGE_POLICY_FILE not in cache.handed and cache.flushes == 0
        assert not any(action.startswith("page policy") for action in result.actions)


class TestHttps:
    """`up --tls self-signed` and `--read-auth`: the container's switches, the certificate handed in, renewal, no silent change."""

    @pytest.fixture
    def tls_image(self, engine):
        from devpictl.image import DEFAULT_IMAGE

        engine.image_labels[DEFAULT_IMAGE] = {"devpictl.tls": "1"}

    def test_a_new_cache_gets_its_certificate_and_switches(self, engine, tls_image):
        from devpictl import tls

        answer = up("--port", "3299", "--tls", "self-signed", "--tls-name", "cache.lan", "--read-auth")
        assert answer["index_url"] == "https://127.0.0.1:3299/root/pypi/+simple/"
        env = engine.created["devpictl-default"]["environment"]
        assert env["DEVPICTL_TLS"] == "redirect" and env["DEVPICTL_READ_AUTH"] == "1"
        handed = engine.handed["devpictl-default"]
        assert b"PRIVATE KEY" in handed["tls-key.pem"]
        assert handed["tls-cert.pem"] == tls.served_file(Instance("default")).read_bytes()
        assert b"PRIVATE KEY" not in tls.served_file(Instance("default")).read_bytes()  # the host keeps the public part
        remembered = load_remembered(Instance("default"))
        assert (remembered["tls"], remembered["tls_names"], remembered["read_auth"]) == ("self-signed", ("cache.lan",), True)

    def test_up_again_keeps_it_and_renews_it_near_its_end(self, engine, tls_image, monkeypatch):
        import datetime

        from devpictl import certificates, tls

        up("--port", "3299", "--tls", "self-signed")
        served = tls.served_file(Instance("default")).read_bytes()
        engine.calls.clear()
        up()
        assert tls.served_file(Instance("default")).read_bytes() == served and "container.restart" not in engine.calls
        later = tls.now() + datetime.timedelta(days=certificates.SERVER_DAYS - 10)
        monkeypatch.setattr(tls, "now", lambda: later)
        answer = up()
        assert tls.served_file(Instance("default")).read_bytes() != served
        assert "container.restart" in engine.calls
        assert any("new certificate" in action for action in answer["actions"])

    def test_switching_https_on_an_existing_cache_needs_down_first(self, engine, tls_image):
        up("--port", "3299")
        result = runner.invoke(app, ["up", "--tls", "self-signed"])
        assert result.exit_code == Conflict.exit_code, result.output
        assert "down" in result.output

    def test_an_image_built_before_https_is_refused_before_anything_is_made(self, engine):
        result = runner.invoke(app, ["up", "--port", "3299", "--tls", "self-signed"])
        assert result.exit_code == 2, result.output
        assert "older devpictl" in result.output and "devpictl-default" not in engine.created
