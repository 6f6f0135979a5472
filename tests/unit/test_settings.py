"""What devpictl keeps and checks: the root password store, cache names and ports, extra labels, sizes and limits."""

from __future__ import annotations

import stat

import pytest

from devpictl import settings
from devpictl.errors import BadInput
from devpictl.settings import check_pids_limit, memory_bytes


class TestRootPassword:
    def test_generated_once_with_mode_0600(self, tmp_path):
        instance = settings.Instance("default")
        password, created = settings.ensure_root_password(instance)
        assert created is True
        assert len(password) >= 24
        path = instance.password_file
        assert path == tmp_path / "devpictl-data" / "caches" / "default" / "root-password"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.read_text() == password + "\n"

    def test_reused_on_the_second_call(self):
        instance = settings.Instance("default")
        first, _ = settings.ensure_root_password(instance)
        second, created = settings.ensure_root_password(instance)
        assert (second, created) == (first, False)
        assert settings.read_root_password(instance) == first

    def test_each_cache_has_its_own(self):
        a, _ = settings.ensure_root_password(settings.Instance("a"))
        b, _ = settings.ensure_root_password(settings.Instance("b"))
        assert a != b

    def test_forget(self):
        instance = settings.Instance("default")
        settings.ensure_root_password(instance)
        settings.forget_root_password(instance)
        assert settings.read_root_password(instance) is None
        settings.forget_root_password(instance)  # a second time is fine

    def test_empty_file_gets_a_new_password(self):
        instance = settings.Instance("default")
        instance.state_dir.mkdir(parents=True)
        instance.password_file.write_text("\n")
        password, created = settings.ensure_root_password(instance)
        assert created is True
        assert instance.password_file.read_text().strip() == password

    def test_existing_empty_file_is_made_0600(self):
        instance = settings.Instance("default")
        instance.state_dir.mkdir(parents=True)
        instance.password_file.write_text("")
        instance.password_file.chmod(0o644)
        settings.ensure_root_password(instance)
        assert stat.S_IMODE(instance.password_file.stat().st_mode) == 0o600


class TestNamesAndPorts:
    @pytest.mark.parametrize("name", ["default", "a", "0", "ci-1.x_y", "a" * 40])
    def test_good_names(self, name):
        assert settings.check_name(name) == name

    @pytest.mark.parametrize("name", ["", "Bad Name!", "UPPER", "-lead", ".lead", "_lead", "a" * 41, "a/b", "a b", "naïve"])
    def test_bad_names(self, name):
        with pytest.raises(BadInput, match="is not allowed") as info:
            settings.check_name(name)
        assert repr(name) in str(info.value)

    def test_trailing_newline_is_not_a_name(self):
        with pytest.raises(BadInput):
            settings.check_name("default\n")

    @pytest.mark.parametrize("port", [1, 3141, 65535])
    def test_good_ports(self, port):
        assert settings.check_port(port) == port

    @pytest.mark.parametrize("port", [0, -1, 65536, 70000])
    def test_bad_ports(self, port):
        with pytest.raises(BadInput, match=f"port {port} is out of range: use a number from 1 to 65535"):
            settings.check_port(port)

    def test_instance_names(self, tmp_path):
        instance = settings.Instance("ci")
        assert instance.container == "devpictl-ci"
        assert instance.volume == "devpictl-ci-data"
        assert instance.state_dir == tmp_path / "devpictl-data" / "caches" / "ci"


class TestExtraLabels:
    @pytest.mark.parametrize(
        "raw, labels",
        [
            ("", {}),
            ("team=ci", {"team": "ci"}),
            (" team=ci , owner=me ,", {"team": "ci", "owner": "me"}),
            ("empty=", {"empty": ""}),
            ("url=a=b", {"url": "a=b"}),
        ],
    )
    def test_parsing(self, raw, labels):
        assert settings.extra_labels({"DEVPICTL_LABELS": raw}) == labels

    def test_unset(self):
        assert settings.extra_labels({}) == {}

    @pytest.mark.parametrize("raw, item", [("bad", "bad"), ("team=ci,bad", "bad"), ("=value", "=value")])
    def test_errors_name_the_item(self, raw, item):
        with pytest.raises(BadInput, match="is not KEY=VALUE") as info:
            settings.extra_labels({"DEVPICTL_LABELS": raw})
        assert repr(item) in str(info.value)

    def test_read_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("DEVPICTL_LABELS", "run=42")
        assert settings.extra_labels() == {"run": "42"}
        assert settings.Instance("x").labels() == {"devpictl.managed": "1", "devpictl.instance": "x", "run": "42"}

    def test_instance_labels_without_extras(self, monkeypatch):
        monkeypatch.delenv("DEVPICTL_LABELS", raising=False)
        assert settings.Instance("x").labels() == {"devpictl.managed": "1", "devpictl.instance": "x"}


class TestResourceLimits:
    @pytest.mark.parametrize(
        "value, size",
        [
            ("2g", 2 * 1024**3),
            ("1536m", 1536 * 1024**2),
            ("300M", 300 * 1024**2),
            ("1G", 1024**3),
            ("256m", 256 * 1024**2),
            ("262144k", 256 * 1024**2),
        ],
    )
    def test_memory_notation(self, value, size):
        assert memory_bytes(value) == size

    def test_just_under_the_floor_is_refused(self):
        with pytest.raises(BadInput, match="too little"):
            memory_bytes(f"{256 * 1024 - 1}k")

    def test_pids_limit_floor(self):
        assert check_pids_limit(64) == 64
        with pytest.raises(BadInput):
            check_pids_limit(63)
