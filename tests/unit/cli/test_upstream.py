"""`devpictl mirrors` and its subcommands, and 'fastest', through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from devpictl import container as ctr
from devpictl import lifecycle, mirrors, pip, speedtest, switching
from devpictl.cli import app
from devpictl.errors import EngineUnavailable
from devpictl.mirrors import CATALOG, OFFICIAL, RETIRED, find_by_url, resolve
from devpictl.settings import config_file
from tests.unit.clihelp import assert_one_line_error, invoke, undocumented_parameters
from tests.unit.fakes import FakeEngine
from tests.unit.localindex import Behaviour, LocalIndex, closed_port_url

MIRRORS = typer.main.get_command(app).commands["mirrors"]
OFFICIAL_URL = "https://index.invalid/simple"  # stands in for what devpi reports as its default
CORP = "https://pypi.corp.example/simple"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def measured(monkeypatch) -> list[list[str]]:
    """Records which mirrors each speed test measured (and still measures them)."""
    calls: list[list[str]] = []
    real = speedtest.measure

    def measure(targets, **kwargs):
        calls.append([name for name, _ in targets])
        return real(targets, **kwargs)

    monkeypatch.setattr(speedtest, "measure", measure)
    return calls


@pytest.fixture
def local_only(monkeypatch):
    """The catalog shrinks to the official index, which pip 'names' as nothing: no test reaches the internet."""
    monkeypatch.setattr(mirrors, "CATALOG", {"pypi": OFFICIAL})
    monkeypatch.setattr(pip, "default_index_url", lambda: None)


@pytest.fixture
def indexes():
    with LocalIndex() as fast, LocalIndex(Behaviour(first_byte_delay=0.1, chunk=50_000, chunk_delay=0.05)) as slow:
        yield {"fast": fast, "slow": slow}


def add(name: str, url: str, *extra: str):
    result = invoke("mirrors", "add", name, url, *extra)
    assert result.exit_code == 0, result.output
    return result


class TestHelp:
    @pytest.mark.parametrize("path", [[], ["test"], ["add"], ["remove"]])
    def test_every_mirrors_command_has_help(self, path):
        command = MIRRORS if not path else MIRRORS.commands[path[0]]
        assert command.help and command.help.strip()
        result = invoke("mirrors", *path, "--help")
        assert result.exit_code == 0, result.output
        assert command.help.strip().splitlines()[0] in result.output
        assert "Example: devpictl mirrors" in result.output

    @pytest.mark.parametrize("name", ["test", "add", "remove"])
    def test_every_parameter_has_help(self, name):
        assert undocumented_parameters(MIRRORS.commands[name], "mirrors", name) == []

    def test_subcommands(self):
        assert set(MIRRORS.commands) == {"test", "add", "remove"}

    def test_test_options(self):
        result = invoke("mirrors", "test", "--help")
        for option in ("--timeout", "--json", "--project", "--wheel-url-from-page"):
            assert option in result.output

    def test_fastest_is_documented(self):
        assert "'fastest'" in invoke("up", "--help").output
        assert "'fastest'" in invoke("set-upstream", "--help").output


class TestList:
    def test_builtins_and_retired(self):
        result = invoke("mirrors")
        assert result.exit_code == 0, result.output
        for upstream in CATALOG.values():
            assert upstream.name in result.output
        for retired in RETIRED:
            assert f"not offered: {retired}" in result.output
        assert "user entr" not in result.output

    def test_user_entries_are_marked(self):
        add("corp", CORP, "--note", "office mirror")
        result = invoke("mirrors")
        assert result.exit_code == 0, result.output
        (row,) = [line for line in result.stdout.splitlines() if line.split()[:1] == ["corp"]]
        assert CORP in row
        assert "user entry: office mirror" in row
        assert f"user entries are kept in {config_file()}" in result.stdout

    def test_whole_rows_when_stdout_is_not_a_terminal(self, monkeypatch):
        monkeypatch.setenv("COLUMNS", "80")
        note = "the office mirror on the third floor, ask the infrastructure team before relying on it"
        add("corp", CORP + "/a/long/path/to/the/simple/index", "--note", note)
        result = invoke("mirrors")  # CliRunner's stdout is no terminal
        (row,) = [line for line in result.stdout.splitlines() if line.split()[:1] == ["corp"]]
        assert row.rstrip().endswith(f"user entry: {note}") and CORP + "/a/long/path/to/the/simple/index" in row
        for upstream in CATALOG.values():
            (line,) = [line for line in result.stdout.splitlines() if line.split()[:1] == [upstream.name]]
            assert line.rstrip().endswith(upstream.note.split()[-1]), line

    def test_json_marks_user_entries(self):
        add("corp", CORP)
        data = json.loads(invoke("mirrors", "--json").stdout)
        assert [m["name"] for m in data] == [*CATALOG, "corp"]
        assert data[-1] == {"name": "corp", "url": CORP, "note": "", "user": True}
        assert not any("user" in m for m in data[:-1])


class TestAdd:
    def test_add_then_resolve(self):
        result = add("Corp", CORP + "/", "--note", "office  mirror")
        assert "Added mirror 'corp'" in result.stdout
        upstream = resolve("corp")
        assert (upstream.name, upstream.url, upstream.note, upstream.user) == ("corp", CORP, "office mirror", True)
        assert resolve("  CORP ") == upstream
        assert not upstream.is_official and not upstream.sends_serial_header
        assert find_by_url(CORP + "/", OFFICIAL_URL) == upstream

    def test_written_as_a_mirrors_table(self):
        import tomllib

        add("corp", CORP, "--note", "office")
        assert tomllib.loads(config_file().read_text()) == {"mirrors": {"corp": {"url": CORP, "note": "office"}}}

    def test_add_and_remove_keep_the_users_comments(self):
        path = config_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        mine = '# my devpictl settings\n[mirrors.old]  # the old office\nurl = "https://old.example/simple"\nnote = ""\n'
        path.write_text(mine)
        add("corp", CORP, "--note", "office")
        text = path.read_text()
        assert text.startswith(mine)
        assert "# my devpictl settings" in text and "# the old office" in text
        assert invoke("mirrors", "remove", "corp").exit_code == 0
        assert path.read_text().rstrip("\n") + "\n" == mine  # at most a blank line left at the end

    def test_builtins_still_win_and_unknown_names_list_user_entries(self):
        add("corp", CORP)
        assert resolve("tuna") is CATALOG["tuna"]
        result = invoke("set-upstream", "nosuch")
        assert_one_line_error(result, 2, "unknown mirror 'nosuch'", "tuna", "corp")

    @pytest.mark.parametrize(
        "name, fragment",
        [
            ("tuna", "shadows the built-in mirror 'tuna'"),
            ("TUNA", "shadows the built-in mirror 'tuna'"),
            ("pypi", "shadows the built-in mirror 'pypi'"),
            ("ustc", "reuses 'ustc'"),
            ("douban", "reuses 'douban'"),
            ("fastest", "reserves"),
            ("Fastest", "reserves"),
            ("custom", "reserves"),
            ("my.mirror", "not a usable name"),
            ("a/b", "not a usable name"),
            ("_x", "not a usable name"),
        ],
    )
    def test_refused_names(self, name, fragment):
        result = invoke("mirrors", "add", name, CORP)
        assert_one_line_error(result, 2, fragment, "pick another name")
        assert not config_file().exists()

    @pytest.mark.parametrize("url", ["ftp://x/simple", "http://", "pypi.corp.example/simple", "https://h/simple?x=1"])
    def test_bad_urls(self, url):
        assert_one_line_error(invoke("mirrors", "add", "corp", url), 2, "is not an index URL")
        assert not config_file().exists()

    def test_an_existing_name_is_not_replaced(self):
        add("corp", CORP)
        before = config_file().read_bytes()
        result = invoke("mirrors", "add", "corp", "https://other.example/simple")
        assert_one_line_error(result, 2, "already have a mirror named 'corp'", "devpictl mirrors remove corp")
        assert config_file().read_bytes() == before

    @pytest.mark.parametrize(
        "same",
        [
            CATALOG["tuna"].url + "/",
            CATALOG["tuna"].url.replace("pypi.tuna", "PYPI.Tuna"),
            CATALOG["tuna"].url.replace(".cn/", ".cn:443/"),
        ],
    )
    def test_a_catalog_url_is_named_not_duplicated(self, same):
        result = invoke("mirrors", "add", "tsinghua", same)
        assert_one_line_error(result, 2, "is already the mirror 'tuna'")
        assert not config_file().exists()

    def test_a_name_is_lower_case_and_says_so(self):
        result = invoke("mirrors", "add", "NB", CORP)
        assert result.exit_code == 0, result.output
        assert "Added mirror 'nb' (mirror names are lower case)" in result.stdout

    def test_other_content_is_kept(self):
        import tomllib

        config_file().parent.mkdir(parents=True)
        config_file().write_text('theme = "dark"\n[defaults]\nport = 3142\n[mirrors.old]\nurl = "https://old.example/simple"\nnote = ""\n')
        original = tomllib.loads(config_file().read_text())
        add("corp", CORP)
        after_add = tomllib.loads(config_file().read_text())
        assert after_add == {**original, "mirrors": {**original["mirrors"], "corp": {"url": CORP, "note": ""}}}
        assert invoke("mirrors", "remove", "corp").exit_code == 0
        assert tomllib.loads(config_file().read_text()) == original
        assert invoke("mirrors", "remove", "old").exit_code == 0
        assert tomllib.loads(config_file().read_text()) == {"theme": "dark", "defaults": {"port": 3142}}


class TestRemove:
    def test_remove(self):
        add("corp", CORP)
        result = invoke("mirrors", "remove", "CORP")
        assert result.exit_code == 0, result.output
        assert f"Removed mirror 'corp' ({CORP})" in result.stdout
        assert_one_line_error(invoke("set-upstream", "corp"), 2, "unknown mirror 'corp'")
        assert config_file().read_text() == ""

    @pytest.mark.parametrize(
        "name, fragment",
        [
            ("tuna", "'tuna' is a built-in mirror and cannot be removed"),
            ("pypi", "'pypi' is a built-in mirror"),
            ("ustc", "you have no mirror named 'ustc'"),
            ("nosuch", "you have no mirror named 'nosuch' (yours: corp)"),
        ],
    )
    def test_refused(self, name, fragment):
        add("corp", CORP)
        before = config_file().read_bytes()
        assert_one_line_error(invoke("mirrors", "remove", name), 2, fragment)
        assert config_file().read_bytes() == before

    def test_nothing_to_remove(self):
        assert_one_line_error(invoke("mirrors", "remove", "corp"), 2, "you have no mirror named 'corp' (yours: none)")
        assert not config_file().exists()


class TestBrokenConfig:
    BAD = b'# my settings\n[mirrors.corp\nurl = "https://pypi.corp.example/simple"\n'

    @pytest.fixture
    def bad_config(self) -> Path:
        path = config_file()
        path.parent.mkdir(parents=True)
        path.write_bytes(self.BAD)
        return path

    @pytest.mark.parametrize(
        "args",
        [
            ["mirrors", "add", "corp2", "https://other.example/simple"],
            ["mirrors", "remove", "corp"],
            ["mirrors"],
            ["mirrors", "--json"],
            ["mirrors", "test", "corp"],
            ["set-upstream", "corp"],
        ],
    )
    def test_invalid_toml_is_refused_and_kept(self, bad_config, args, measured):
        assert_one_line_error(invoke(*args), 2, f"{bad_config} is not valid TOML", "fix it or delete it")
        assert bad_config.read_bytes() == self.BAD
        assert measured == []

    def test_builtins_and_urls_do_not_need_the_config(self, bad_config):
        assert resolve("tuna") is CATALOG["tuna"]
        assert resolve(CORP).name == "custom"
        assert find_by_url(CORP, OFFICIAL_URL).name == "custom"

    def test_unreadable(self):
        config_file().mkdir(parents=True)  # a directory where the file should be
        assert_one_line_error(invoke("mirrors", "add", "corp", CORP), 2, f"cannot read {config_file()}")

    @pytest.mark.parametrize(
        "text, fragment",
        [
            ('mirrors = "tuna"\n', "'mirrors' must be a table"),
            ('[mirrors.tuna]\nurl = "https://x.example/simple"\n', "[mirrors.tuna] shadows the built-in mirror 'tuna'"),
            ('[mirrors.corp]\nnote = "no url"\n', "[mirrors.corp] needs url"),
            ('[mirrors.corp]\nurl = "ftp://x/simple"\n', "not an http(s) index URL"),
            ('[mirrors.corp]\nurl = "https://x.example/simple"\nnote = 3\n', "note that is not a string"),
        ],
    )
    def test_invalid_entries(self, text, fragment):
        config_file().parent.mkdir(parents=True)
        config_file().write_text(text)
        assert_one_line_error(invoke("mirrors"), 2, fragment)
        assert config_file().read_text() == text


class TestSpeedTest:
    def test_json(self, indexes, local_only):
        add("fast", indexes["fast"].url)
        add("slow", indexes["slow"].url)
        add("gone", closed_port_url())
        result = invoke("mirrors", "test", "gone", "slow", "fast", "--json", "--timeout", "3")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert [(r["name"], r["status"], r["rank"], r["fastest"]) for r in data] == [
            ("fast", "ok", 1, True),
            ("slow", "ok", 2, False),
            ("gone", "dead", None, False),
        ]
        assert data[0]["url"] == indexes["fast"].url
        assert data[0]["bytes"] > 0 and data[0]["bytes_per_second"] > data[1]["bytes_per_second"]
        assert data[2]["reason"] == "connection refused"

    def test_table(self, indexes, local_only):
        add("fast", indexes["fast"].url)
        add("slow", indexes["slow"].url)
        result = invoke("mirrors", "test", "slow", "fast", "--timeout", "3")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[1].split()[:4] == ["1", "fast", "ok,", "fastest"]
        assert lines[2].split()[:3] == ["2", "slow", "ok"]
        assert "Fastest: fast" in result.stdout and "devpictl up --mirror fast" in result.stdout

    def test_urls_and_every_mirror(self, indexes, local_only, measured):
        add("slow", indexes["slow"].url)
        result = invoke("mirrors", "test", indexes["fast"].url, "--json", "--timeout", "3")
        assert result.exit_code == 0, result.output
        host = indexes["fast"].url.split("/")[2]
        assert [r["name"] for r in json.loads(result.stdout)] == [host]
        result = invoke("mirrors", "test", "--json", "--timeout", "3")
        assert result.exit_code == 0, result.output
        data = {r["name"]: r for r in json.loads(result.stdout)}
        assert data["slow"]["fastest"]
        assert data["pypi"]["status"] == "not measured"
        assert "default index" in data["pypi"]["reason"]
        assert measured == [[host], ["pypi", "slow"]]

    def test_the_default_index_is_measured_where_pip_says(self, indexes, local_only, monkeypatch):
        monkeypatch.setattr(pip, "default_index_url", lambda: indexes["fast"].url)
        result = invoke("mirrors", "test", "pypi", "--json")
        assert result.exit_code == 0, result.output
        (row,) = json.loads(result.stdout)
        assert (row["name"], row["url"], row["status"], row["fastest"]) == ("pypi", indexes["fast"].url, "ok", True)

    def test_page_only(self, indexes, local_only):
        add("fast", indexes["fast"].url)
        result = invoke("mirrors", "test", "fast", "--page-only", "--json")
        (row,) = json.loads(result.stdout)
        assert (row["status"], row["file_url"], row["bytes"], row["fastest"]) == ("ok", None, 0, True)
        assert indexes["fast"].behaviour.paths == ["/simple/pip/"]

    def test_nothing_answers(self, local_only):
        add("gone", closed_port_url())
        result = invoke("mirrors", "test", "gone", "--json")
        assert result.exit_code == 5, result.output
        assert json.loads(result.stdout)[0]["status"] == "dead"
        assert result.stderr.startswith("error: no mirror served 'pip'")

    @pytest.mark.parametrize(
        "args, fragment",
        [
            (["nosuch"], "unknown mirror 'nosuch'"),
            (["ustc"], "'ustc' is not offered"),
            (["fastest"], "'fastest' works only with"),
            (["http://"], "is not an index URL"),
            (["--project", "../x", "tuna"], "'../x' is not a project name"),
        ],
    )
    def test_bad_input_measures_nothing(self, args, fragment, measured):
        assert_one_line_error(invoke("mirrors", "test", *args), 2, fragment)
        assert measured == []

    @pytest.mark.parametrize("timeout", ["0", "-1"])
    def test_a_timeout_must_be_positive(self, timeout, measured):
        assert_one_line_error(invoke("mirrors", "test", "tuna", "--timeout", timeout), 2, "is not a time limit", "--timeout 10")
        assert measured == []


class TestFastest:
    @pytest.fixture
    def engine(self, monkeypatch):
        engine = FakeEngine()
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        return engine

    @pytest.fixture
    def switched(self, monkeypatch) -> list:
        calls = []

        def set_upstream(engine, instance, upstream, **kwargs):
            calls.append(upstream)
            return switching.SwitchResult(instance.name, OFFICIAL, upstream, [f"switched to {upstream.name}"])

        monkeypatch.setattr(switching, "set_upstream", set_upstream)
        return calls

    def test_set_upstream_fastest(self, indexes, local_only, engine, switched):
        add("fast", indexes["fast"].url)
        add("slow", indexes["slow"].url)
        result = invoke("set-upstream", "fastest")
        assert result.exit_code == 0, result.output
        assert [u.name for u in switched] == ["fast"]
        assert switched[0].user and switched[0].url == indexes["fast"].url
        assert "ok, fastest" in result.stderr and "Fastest mirror: fast" in result.stderr
        assert result.stdout == "switched to fast\n"

    def test_set_upstream_fastest_json_shows_no_table(self, indexes, local_only, engine, switched):
        add("slow", indexes["slow"].url)
        result = invoke("set-upstream", "FASTEST", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["upstream"] == {"name": "slow", "url": indexes["slow"].url}
        assert result.stderr == ""

    @pytest.mark.parametrize("flag, wanted", [([], False), (["--refresh-pages"], True)])
    def test_refresh_pages_reaches_the_switch(self, engine, monkeypatch, flag, wanted):
        seen = {}

        def set_upstream(engine, instance, upstream, **kwargs):
            seen.update(kwargs)
            return switching.SwitchResult(instance.name, OFFICIAL, upstream, [])

        monkeypatch.setattr(switching, "set_upstream", set_upstream)
        result = invoke("set-upstream", "tuna", *flag)
        assert result.exit_code == 0, result.output
        assert seen["refresh_pages"] is wanted

    def test_none_answers(self, local_only, engine, switched):
        add("gone", closed_port_url())
        result = invoke("set-upstream", "fastest", "--json")
        assert_one_line_error(result, 5, "no mirror served 'pip' in the speed test", "name a mirror instead of 'fastest'")
        assert result.stdout == ""
        assert switched == []

    def test_up_fastest(self, indexes, local_only, engine, monkeypatch, tmp_path):
        add("fast", indexes["fast"].url)
        seen = []

        def up(engine, opts, reporter):
            seen.append(opts)
            return lifecycle.UpResult(
                opts.instance.name, "http://127.0.0.1:3141/root/pypi/+simple/", opts.upstream, ["started"], tmp_path / "pw"
            )

        monkeypatch.setattr(lifecycle, "up", up)
        result = invoke("up", "--mirror", "fastest", "--json")
        assert result.exit_code == 0, result.output
        assert seen[0].upstream.name == "fast"
        assert json.loads(result.stdout)["upstream"] == {"name": "fast", "url": indexes["fast"].url}

    @pytest.mark.parametrize("args", [["up", "--mirror", "fastest"], ["set-upstream", "fastest"]])
    def test_the_engine_is_checked_before_measuring(self, monkeypatch, measured, args):
        def connect():
            raise EngineUnavailable("cannot reach the Docker engine (test): start Docker")

        monkeypatch.setattr(ctr, "connect", connect)
        assert_one_line_error(invoke(*args), 3, "start Docker")
        assert measured == []

    def test_up_checks_its_inputs_before_measuring(self, measured):
        assert_one_line_error(invoke("up", "--mirror", "fastest", "--port", "0"), 2, "port 0 is out of range")
        assert measured == []

    def test_fastest_from_the_environment(self, indexes, local_only, engine, switched, monkeypatch):
        add("fast", indexes["fast"].url)
        seen = []
        monkeypatch.setattr(
            lifecycle,
            "up",
            lambda engine, opts, reporter: seen.append(opts) or lifecycle.UpResult("default", "u", opts.upstream, [], Path("pw")),
        )
        result = invoke("up", "--json", env={"DEVPICTL_MIRROR": "fastest"})
        assert result.exit_code == 0, result.output
        assert seen[0].upstream.name == "fast"

    def test_build_does_not_take_fastest(self):
        assert_one_line_error(invoke("build", "--print", "--pip-mirror", "fastest"), 2, "'fastest' works only with")


class TestMirrors:
    def test_lists_every_name_and_url(self):
        result = invoke("mirrors")
        assert result.exit_code == 0, result.output
        for upstream in CATALOG.values():
            assert upstream.name in result.output
            if upstream.url:
                assert upstream.url in result.output
        for retired in RETIRED:
            assert f"not offered: {retired}" in result.output

    def test_json(self):
        result = invoke("mirrors", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert [m["name"] for m in data] == list(CATALOG)
        assert {m["name"]: m["url"] for m in data} == {u.name: u.url for u in CATALOG.values()}
        assert data[0] == {"name": "pypi", "url": None, "note": CATALOG["pypi"].note}


class TestShellCompletion:
    """The shell completes mirror names: the catalog's and the user's entries."""

    @staticmethod
    def complete(words: str) -> list[str]:
        from typer.testing import CliRunner

        from devpictl.cli import app

        env = {"_DEVPICTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        result = CliRunner().invoke(app, [], prog_name="devpictl", env=env)
        assert result.exit_code == 0, result.output
        return result.output.split()

    def test_mirror_names_and_user_entries(self):
        add("corp", CORP)
        assert self.complete("devpictl up --mirror n") == ["nju"]
        assert self.complete("devpictl up --mirror co") == ["corp"]
        assert self.complete("devpictl set-upstream fa") == ["fastest"]
        assert self.complete("devpictl up --fallback tuna,bf") == ["tuna,bfsu"]
        assert set(self.complete("devpictl mirrors test t")) == {name for name in CATALOG if name.startswith("t")}
