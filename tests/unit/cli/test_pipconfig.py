"""`devpictl pip-config` through CliRunner: showing, --shell, --write, --dry-run, --undo, and
its one-line errors. --url stands in for a running cache, so no test needs Docker."""

from __future__ import annotations

import json
import stat
import tomllib

import pytest
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl.cli import app
from devpictl.errors import EngineUnavailable
from tests.unit.clihelp import assert_one_line_error
from tests.unit.fakes import FakeEngine

URL = "http://127.0.0.1:3141/root/pypi/+simple/"
LAN_URL = "http://cache.lan:3141/root/pypi/+simple/"
HTTPS_URL = "https://cache.example/root/pypi/+simple/"

runner = CliRunner()


@pytest.fixture(autouse=True)
def engine_calls(monkeypatch) -> list[str]:
    """With --url nothing may ask the engine; without it, the engine is down."""
    calls: list[str] = []

    def connect():
        calls.append("connect")
        raise EngineUnavailable("cannot reach the Docker engine (test): start Docker")

    monkeypatch.setattr(ctr, "connect", connect)
    return calls


@pytest.fixture
def home(isolation):
    return isolation


def invoke(*args: str):
    return runner.invoke(app, ["pip-config", *args])


def ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def snapshot(root):
    """Every file under ``root`` with its bytes and mode."""
    return {p: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in sorted(root.rglob("*")) if p.is_file()}


class TestShow:
    def test_pip_by_default(self, engine_calls):
        assert ok("--url", LAN_URL).stdout == f"[global]\nindex-url = {LAN_URL}\ntrusted-host = cache.lan\n"
        assert engine_calls == []

    def test_url_is_checked_and_given_a_trailing_slash(self):
        assert f"index-url = {URL}\n" in ok("--url", URL.rstrip("/")).stdout
        assert_one_line_error(invoke("--url", "ftp://x/simple"), 2, "'ftp://x/simple' is not an index URL")

    def test_several_tools_name_their_files(self, home):
        out = ok("--url", URL, "--tool", "uv,pdm", "-t", "poetry").stdout
        assert f"# uv: {home}/.config/uv/uv.toml\n[[index]]\n" in out
        assert f'# pdm: {home}/.config/pdm/config.toml\n[pypi]\nurl = "{URL}"\nverify_ssl = false\n' in out
        assert f"poetry source add --priority=primary devpictl {URL}" in out
        assert snapshot(home) == {}

    def test_json(self, home):
        data = json.loads(ok("--url", HTTPS_URL, "--tool", "pip,uv,pdm,poetry", "--json").stdout)
        assert data["index_url"] == HTTPS_URL and data["written"] is False
        assert data["tools"]["pip"] == {
            "file": f"{home}/.config/pip/pip.conf",
            "settings": {"index-url": HTTPS_URL},
            "env": {"PIP_INDEX_URL": HTTPS_URL},
        }
        assert data["tools"]["uv"]["settings"] == {"name": "devpictl", "url": HTTPS_URL, "default": True}
        assert data["tools"]["pdm"]["settings"] == {"pypi.url": HTTPS_URL}
        assert data["tools"]["poetry"]["file"] is None
        assert data["tools"]["poetry"]["command"] == f"poetry source add --priority=primary devpictl {HTTPS_URL}"

    def test_without_url_the_running_cache_is_asked(self, engine_calls):
        assert_one_line_error(invoke("--shell"), 3, "cannot reach the Docker engine")
        assert engine_calls == ["connect"]


class TestShell:
    def test_bare_shell_means_export_lines(self):
        out = ok("--url", LAN_URL, "--tool", "pip,uv,pdm,poetry", "--shell").stdout
        assert out.splitlines() == [
            f"export PIP_INDEX_URL={LAN_URL}",
            "export PIP_TRUSTED_HOST=cache.lan",
            f"export UV_DEFAULT_INDEX={LAN_URL}",
            f"export PDM_PYPI_URL={LAN_URL}",
            "export PDM_PYPI_VERIFY_SSL=false",
            f"# poetry reads its package source from the project only; run there: poetry source add --priority=primary devpictl {LAN_URL}",
        ]

    def test_bare_shell_before_another_option(self):
        assert ok("--shell", "--url", HTTPS_URL).stdout == f"export PIP_INDEX_URL={HTTPS_URL}\n"

    def test_https_needs_no_exceptions(self):
        out = ok("--url", HTTPS_URL, "--tool", "pip,uv,pdm", "--shell", "zsh").stdout
        assert out == f"export PIP_INDEX_URL={HTTPS_URL}\nexport UV_DEFAULT_INDEX={HTTPS_URL}\nexport PDM_PYPI_URL={HTTPS_URL}\n"

    def test_fish_and_powershell(self):
        assert ok("--url", HTTPS_URL, "--shell", "fish").stdout == f"set -gx PIP_INDEX_URL '{HTTPS_URL}'\n"
        assert ok("--url", HTTPS_URL, "--shell", "pwsh", "-t", "uv").stdout == f"$env:UV_DEFAULT_INDEX = '{HTTPS_URL}'\n"

    def test_unknown_shell(self):
        assert_one_line_error(invoke("--url", URL, "--shell", "tcsh"), 2, "unknown shell 'tcsh'")


PIP_CONF = "# my pip settings\n[global]\ntimeout = 60\n\n[install]\nno-compile = true\n"
UV_TOML = '# mine\nlink-mode = "copy"\n'
PDM_TOML = "# mine\ncheck_update = false\n"
PYPROJECT = '[project]\nname = "demo"\nversion = "0.1.0"\n\n[tool.poetry]\npackage-mode = false  # an app\n'


@pytest.fixture
def configured(home, tmp_path):
    """A home and a poetry project that already hold the user's own settings."""
    files = {
        home / ".config/pip/pip.conf": PIP_CONF,
        home / ".config/uv/uv.toml": UV_TOML,
        home / ".config/pdm/config.toml": PDM_TOML,
        tmp_path / "project/pyproject.toml": PYPROJECT,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (home / ".config/pip/pip.conf").chmod(0o600)
    return tmp_path


ALL = ("--tool", "pip,uv,pdm,poetry")


class TestWriteAndUndo:
    def test_dry_run_shows_diffs_and_changes_nothing(self, configured):
        before = snapshot(configured)
        out = ok("--url", URL, *ALL, "--project", str(configured / "project"), "--dry-run").stdout
        assert f"+++ {configured}/home/.config/pip/pip.conf\n" in out
        assert f"+index-url = {URL}\n" in out
        assert '+[[index]]\n+name = "devpictl"\n' in out
        assert "+[pypi]\n" in out
        assert "+[[tool.poetry.source]]\n" in out
        assert snapshot(configured) == before

    def test_write_keeps_every_other_setting_and_undo_restores_the_bytes(self, configured):
        before = snapshot(configured)
        project = str(configured / "project")
        result = ok("--url", URL, *ALL, "--project", project, "--write")
        for tool in ("pip", "uv", "pdm", "poetry"):
            assert f"{tool}: updated " in result.stdout
        home = configured / "home"
        assert (home / ".config/pip/pip.conf").read_text() == (
            f"# my pip settings\n[global]\ntimeout = 60\nindex-url = {URL}\ntrusted-host = 127.0.0.1\n\n[install]\nno-compile = true\n"
        )
        assert stat.S_IMODE((home / ".config/pip/pip.conf").stat().st_mode) == 0o600
        assert tomllib.loads((home / ".config/uv/uv.toml").read_text()) == {
            "link-mode": "copy",
            "index": [{"name": "devpictl", "url": URL, "default": True}],
        }
        assert (home / ".config/uv/uv.toml").read_text().startswith(UV_TOML)
        assert tomllib.loads((home / ".config/pdm/config.toml").read_text()) == {
            "check_update": False,
            "pypi": {"url": URL, "verify_ssl": False},
        }
        pyproject = tomllib.loads((configured / "project/pyproject.toml").read_text())
        assert pyproject["tool"]["poetry"] == {
            "package-mode": False,
            "source": [{"name": "devpictl", "url": URL, "priority": "primary"}],
        }

        # A second write (another cache) keeps the first originals.
        ok("--url", HTTPS_URL, *ALL, "--project", project, "--write")
        assert "trusted-host" not in (home / ".config/pip/pip.conf").read_text()
        assert "verify_ssl" not in (home / ".config/pdm/config.toml").read_text()

        result = ok("--undo")
        assert sorted(result.stdout.split()[::3]) == ["pdm:", "pip:", "poetry:", "uv:"]
        after = snapshot(configured)
        assert {p: v for p, v in after.items() if "devpictl-data" not in str(p)} == before

    def test_undo_deletes_files_it_created_and_only_for_the_tools_asked(self, home):
        ok("--url", URL, "-t", "pip,uv", "--write")
        assert (home / ".config/uv/uv.toml").exists()
        assert "uv: deleted" in ok("--undo", "--tool", "uv").stdout
        assert not (home / ".config/uv/uv.toml").exists()
        assert (home / ".config/pip/pip.conf").exists()
        again = ok("--undo", "--tool", "uv")  # nothing left to undo for uv: says so, changes nothing
        assert "Nothing to undo: devpictl has not changed a config file for uv." in again.output
        ok("--undo")
        assert not (home / ".config/pip/pip.conf").exists()

    @pytest.mark.parametrize("existing", [None, 0o644], ids=["new-files", "files-others-could-read"])
    def test_an_index_url_with_credentials_is_written_for_the_owner_only(self, home, existing):
        import stat

        files = [home / ".config/pip/pip.conf", home / ".config/uv/uv.toml"]
        for path in files if existing else ():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
            path.chmod(existing)
        ok("--url", "http://ci:t0ken@cache.example:3141/root/pypi/+simple/", "-t", "pip,uv", "--write")
        assert [stat.S_IMODE(path.stat().st_mode) for path in files] == [0o600, 0o600]
        ok("--url", URL, "-t", "pip", "--write")  # without credentials the mode stays
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600

    def test_undo_dry_run(self, home):
        ok("--url", URL, "--write")
        out = ok("--undo", "--dry-run").stdout
        assert out.startswith(f"--- {home}/.config/pip/pip.conf\n+++ /dev/null\n")
        assert (home / ".config/pip/pip.conf").exists()

    def test_undo_refuses_a_file_edited_since(self, home):
        ok("--url", URL, "--write")
        path = home / ".config/pip/pip.conf"
        path.write_text(path.read_text() + "timeout = 5\n")
        assert_one_line_error(invoke("--undo"), 4, "changed since devpictl wrote it", "--force")
        assert "timeout = 5" in path.read_text()
        ok("--undo", "--force")
        assert not path.exists()

    def test_unchanged_file_is_not_rewritten(self, home):
        ok("--url", URL, "--write")
        assert "already points at" in ok("--url", URL, "--write").stdout

    def test_json_write(self, home):
        data = json.loads(ok("--url", URL, "-t", "pip,poetry", "--write", "--json").stdout)
        assert data["written"] is True
        pip = data["tools"]["pip"]
        assert pip["file"] == f"{home}/.config/pip/pip.conf"
        assert pip["changed"] is True and pip["created"] is True and pip["backup"] is None
        assert data["tools"]["poetry"]["command"].startswith("poetry source add --priority=primary devpictl ")

    def test_backup_lives_in_the_data_dir(self, home, tmp_path):
        (home / ".config/pip").mkdir(parents=True)
        (home / ".config/pip/pip.conf").write_text("[global]\ntimeout = 1\n")
        data = json.loads(ok("--url", URL, "--write", "--json").stdout)
        backup = data["tools"]["pip"]["backup"]
        assert backup.startswith(str(tmp_path / "devpictl-data" / "clientconfig"))
        assert sorted(p.name for p in (home / ".config/pip").iterdir()) == ["pip.conf"]

    def test_poetry_without_a_project_prints_the_command(self, home):
        out = ok("--url", URL, "-t", "poetry", "--write").stdout
        assert out.splitlines()[-1].strip() == f"poetry source add --priority=primary devpictl {URL}"
        assert snapshot(home) == {}

    def test_pip_site_scope(self, tmp_path):
        venv = tmp_path / "venv"
        (venv / "bin").mkdir(parents=True)
        python = venv / "bin" / "python"
        python.write_text(f"#!/bin/sh\necho {venv}\n")
        python.chmod(0o755)
        ok("--url", URL, "--python", str(python), "--write")
        assert f"index-url = {URL}" in (venv / "pip.conf").read_text()
        assert "pip: deleted" in ok("--undo", "--scope", "site", "--python", str(python)).stdout


class TestUvDefaultConflict:
    OTHER = '[[index]]\nname = "corp"\nurl = "https://corp.example/simple"\ndefault = true\n'

    def test_refused_then_forced(self, home):
        path = home / ".config/uv/uv.toml"
        path.parent.mkdir(parents=True)
        path.write_text(self.OTHER)
        assert_one_line_error(invoke("--url", URL, "-t", "pip,uv", "--write"), 4, "index 'corp'", "already uv's default index", "--force")
        assert path.read_text() == self.OTHER
        assert not (home / ".config/pip/pip.conf").exists()  # nothing changed for any tool
        ok("--url", URL, "-t", "uv", "--write", "--force")
        assert [i["name"] for i in tomllib.loads(path.read_text())["index"]] == ["devpictl", "corp"]
        ok("--undo")
        assert path.read_text() == self.OTHER


class TestErrors:
    @pytest.mark.parametrize(
        "args, code, fragments",
        [
            (["--tool", "conda"], 2, ["unknown tool 'conda'", "pip, uv, pdm, poetry"]),
            (["--url", URL, "--shell", "--write"], 2, ["--shell prints variables", "--write"]),
            (["--undo", "--write"], 2, ["--undo puts files back"]),
            (["--undo", "--url", URL], 2, ["--undo needs no URL"]),
            (["--url", URL, "--scope", "system"], 2, ["unknown pip scope 'system'"]),
            (["--url", URL, "--scope", "user", "--python", "python3"], 2, ["--python picks the environment for --scope site"]),
            (["--url", URL, "--tool", "uv", "--scope", "user"], 2, ["--scope and --python are pip's"]),
            (["--url", URL, "--project", "."], 2, ["--project is poetry's"]),
            (["--url", URL, "--force"], 2, ["--force only changes what --write or --undo do"]),
            (["--url", URL, "-t", "poetry", "--project", "/nonexistent", "--write"], 2, ["/nonexistent has no pyproject.toml"]),
            (["--url", URL, "--python", "/nonexistent/python", "--write"], 2, ["cannot run /nonexistent/python"]),
            (["--name", "Bad Name!", "--url", URL], 2, ["is not allowed"]),
        ],
    )
    def test_one_line(self, args, code, fragments, engine_calls, home):
        assert_one_line_error(invoke(*args), code, *fragments)
        assert engine_calls == []
        assert snapshot(home) == {}

    @pytest.mark.parametrize(
        "tool, relative, text, fragment",
        [
            ("uv", ".config/uv/uv.toml", "[[index]\n", "is not valid TOML"),
            ("pdm", ".config/pdm/config.toml", "check_update = \n", "is not valid TOML"),
            ("pip", ".config/pip/pip.conf", "index-url = x\n", "is not a valid pip config file"),
        ],
    )
    def test_unparsable_file_is_named_and_left_alone(self, home, tool, relative, text, fragment):
        path = home / relative
        path.parent.mkdir(parents=True)
        path.write_text(text)
        assert_one_line_error(invoke("--url", URL, "-t", tool, "--write"), 2, f"{path} {fragment}", "fix it")
        assert path.read_text() == text
        assert not (home.parent / "devpictl-data").exists()


class TestPipenv:
    PIPFILE = '# mine\n[[source]]\nurl = "https://pypi.example/simple"\nverify_ssl = true\nname = "pypi"\n'

    @pytest.fixture
    def project(self, home, tmp_path):
        (tmp_path / "project").mkdir()
        (tmp_path / "project/Pipfile").write_text(self.PIPFILE)
        return tmp_path / "project"

    def test_show(self):
        out = ok("--url", URL, "-t", "pipenv").stdout
        assert out == f'# pipenv: your project\'s Pipfile\n[[source]]\nname = "devpictl"\nurl = "{URL}"\nverify_ssl = false\n'
        assert ok("--url", URL, "-t", "pipenv", "--shell").stdout == f"export PIPENV_PYPI_MIRROR={URL}\n"

    def test_dry_run_write_and_undo(self, project):
        before = snapshot(project)
        out = ok("--url", URL, "-t", "pipenv", "--project", str(project), "--dry-run").stdout
        assert f"+++ {project}/Pipfile\n" in out and '+name = "devpictl"\n' in out
        assert snapshot(project) == before
        assert "pipenv: updated " in ok("--url", URL, "-t", "pipenv", "--project", str(project), "--write").stdout
        assert [s["name"] for s in tomllib.loads((project / "Pipfile").read_text())["source"]] == ["devpictl", "pypi"]
        assert "pipenv: restored " in ok("--undo", "--project", str(project)).stdout
        assert snapshot(project) == before

    def test_lock_file_gets_a_note(self, project):
        (project / "Pipfile.lock").write_text("{}")
        result = ok("--url", URL, "-t", "pipenv", "--project", str(project), "--write")
        assert f"note: run `pipenv lock` in {project}" in result.output

    def test_write_without_a_project_says_what_to_add(self, home):
        out = ok("--url", URL, "-t", "pipenv", "--write").stdout
        assert out == "pipenv has no setting outside a project: add --project DIR, the directory of its Pipfile\n"
        assert snapshot(home) == {}

    def test_project_without_a_pipfile(self, home, tmp_path):
        assert_one_line_error(invoke("--url", URL, "-t", "pipenv", "--project", str(tmp_path), "--write"), 2, f"{tmp_path} has no Pipfile")
        assert_one_line_error(invoke("--url", URL, "-t", "uv", "--project", str(tmp_path)), 2, "--project is poetry's and pipenv's")


def test_poetry_alone_says_what_to_run():
    result = invoke("--url", URL, "--tool", "poetry")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.splitlines()[0]
        == f"# poetry: your project's pyproject.toml, or run: poetry source add --priority=primary devpictl {URL}"
    )


class TestPipConfig:
    @pytest.fixture
    def engine(self, monkeypatch):
        engine = FakeEngine()
        engine.add("default", port=3141)
        engine.add("ci", port=3150)
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        return engine

    def test_shows_the_settings(self, engine):
        result = invoke("--name", "default")  # two caches: without --name it lists them (tests/unit/test_inventory.py)
        assert result.exit_code == 0, result.output
        assert result.stdout == "[global]\nindex-url = http://127.0.0.1:3141/root/pypi/+simple/\ntrusted-host = 127.0.0.1\n"

    def test_write_sets_the_user_file(self, engine, isolation):
        path = isolation / ".config" / "pip" / "pip.conf"
        path.parent.mkdir(parents=True)
        path.write_text("[global]\ntimeout = 60\n")
        result = invoke("--write", "--name", "ci", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["index_url"] == "http://127.0.0.1:3150/root/pypi/+simple/"
        assert data["written"] is True
        pip = data["tools"]["pip"]
        assert pip["file"] == str(path)
        assert open(pip["backup"]).read() == "[global]\ntimeout = 60\n"  # the original, kept in devpictl's data dir
        assert path.read_text() == (
            "[global]\ntimeout = 60\nindex-url = http://127.0.0.1:3150/root/pypi/+simple/\ntrusted-host = 127.0.0.1\n"
        )

    def test_missing_cache(self, engine):
        assert_one_line_error(invoke("--name", "nosuch"), 8, "no cache named 'nosuch'", "devpictl up --name nosuch")
