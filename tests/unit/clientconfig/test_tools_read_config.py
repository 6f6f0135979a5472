"""The installers themselves read what `devpictl pip-config --write` writes: pip (each scope),
uv and pipenv (resolving from a local index through their config files alone), pdm and poetry. Each file
already holds unrelated settings, which must survive, and --undo must give back its exact
bytes. No Docker, no network beyond 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devpictl.cli import app
from devpictl.clientconfig import pip as pipcfg

runner = CliRunner()


def devpictl(*args: str) -> str:
    result = runner.invoke(app, ["pip-config", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def tool_env(isolation, tmp_path) -> dict[str, str]:
    """The environment for a tool run: the test's home, and none of the host's installer settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "PDM_", "POETRY_", "PIPENV_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env.update(
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "share"),
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_PROGRESS="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    cwd.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def write(path: Path, text: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path.read_bytes()


def pip_debug_files(output: str) -> dict[str, list[Path]]:
    """The files `pip config debug` lists for each scope."""
    files: dict[str, list[Path]] = {}
    scope = None
    for line in output.splitlines():
        if not line.startswith(" ") and line.endswith(":"):
            scope = line[:-1]
            files[scope] = []
        elif scope and line.startswith("  ") and not line.startswith("   ") and ", exists: " in line:
            files[scope].append(Path(line.strip().split(", exists: ")[0]))
    return files


# Runs pip with its hardcoded /etc replaced by argv[1], the test's stand-in for /etc.
PIP_WITH_ETC = """
import sys
from pip._internal.utils import appdirs
real = appdirs.site_config_dirs
appdirs.site_config_dirs = lambda name: [sys.argv[1] if d == "/etc" else d for d in real(name)]
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


class TestPip:
    def test_pip_reads_the_files_devpictl_names(self, tool_env, tmp_path, monkeypatch):
        dirs = f"{tmp_path}/xdg-a{os.pathsep}{tmp_path}/xdg-b"
        monkeypatch.setenv("XDG_CONFIG_DIRS", dirs)
        tool_env["XDG_CONFIG_DIRS"] = dirs
        listed = pip_debug_files(run([sys.executable, "-m", "pip", "config", "debug"], tool_env, tmp_path / "work"))
        ours = pipcfg.config_files()
        for scope in ("global", "user", "site"):
            assert listed[scope] == ours[scope], scope

    def test_user_scope(self, tool_env, isolation, tmp_path):
        path = isolation / ".config/pip/pip.conf"
        original = write(path, "# mine\n[global]\ntimeout = 61\nindex_url = https://old.example/simple\n\n[install]\nno-compile = true\n")
        url = "http://cache.lan:3141/root/pypi/+simple/"
        devpictl("--url", url, "--write")

        pip = [sys.executable, "-m", "pip", "config"]
        listed = run([*pip, "list"], tool_env, tmp_path / "work").splitlines()
        for line in (f"global.index-url='{url}'", "global.trusted-host='cache.lan'", "global.timeout='61'", "install.no-compile='true'"):
            assert line in listed
        assert [line for line in listed if "index" in line] == [f"global.index-url='{url}'"]
        debug = run([*pip, "debug"], tool_env, tmp_path / "work")
        ours = debug.split(f"  {path}, exists: True\n")[1].split("\n  /")[0]  # the keys pip read from it
        assert f"    global.index-url: {url}\n" in ours and "    global.timeout: 61\n" in ours

        devpictl("--undo")
        assert path.read_bytes() == original

    def test_global_scope(self, tool_env, tmp_path, monkeypatch):
        etc = tmp_path / "etc"
        monkeypatch.setattr(pipcfg, "ETC_DIR", etc)
        monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
        tool_env["XDG_CONFIG_DIRS"] = str(tmp_path / "xdg")
        original = write(etc / "pip.conf", "[global]\ntimeout = 62\n")
        url = "http://127.0.0.1:3141/root/pypi/+simple/"
        devpictl("--url", url, "--scope", "global", "--write")

        pip = [sys.executable, "-c", PIP_WITH_ETC, str(etc), "config"]
        debug = run([*pip, "debug"], tool_env, tmp_path / "work")
        global_part = debug.split("\nsite:")[0]
        assert f"{etc}/pip.conf, exists: True\n" in global_part
        assert f"global.index-url: {url}" in global_part and "global.timeout: 62" in global_part
        assert f"global.index-url='{url}'" in run([*pip, "list"], tool_env, tmp_path / "work").splitlines()

        devpictl("--undo", "--scope", "global")
        assert (etc / "pip.conf").read_bytes() == original

    def test_site_scope_of_another_environment(self, tool_env, tmp_path):
        venv = tmp_path / "venv"
        # This venv's python runs the host's pip (system site packages), with the venv's sys.prefix.
        run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], tool_env, tmp_path)
        python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
        url = "https://cache.example/root/pypi/+simple/"
        devpictl("--url", url, "--python", str(python), "--write")

        debug = run([str(python), "-m", "pip", "config", "debug"], tool_env, tmp_path / "work")
        assert f"site:\n  {venv}/pip.conf, exists: True\n    global.index-url: {url}\n" in debug
        assert f"global.index-url='{url}'" in run([str(python), "-m", "pip", "config", "list"], tool_env, tmp_path / "work")

        devpictl("--undo", "--tool", "pip")
        assert not (venv / "pip.conf").exists()


def make_wheel(folder: Path, name: str = "devpictl_demo", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: devpictl-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture
def local_index(tmp_path):
    """A PEP 503 index on 127.0.0.1 with one wheel; yields its simple URL and the paths it served."""
    root = tmp_path / "index"
    project = root / "simple" / "devpictl-demo"
    project.mkdir(parents=True)
    wheel = make_wheel(project)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (project / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="{wheel.name}#sha256={digest}">{wheel.name}</a></body></html>\n'
    )
    (root / "simple" / "index.html").write_text('<!DOCTYPE html><html><body><a href="devpictl-demo/">devpictl-demo</a></body></html>\n')
    served: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format, *args):
            served.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_uv_resolves_from_the_index_in_its_config_file(tool_env, isolation, tmp_path, local_index):
    from uv import find_uv_bin

    url, served = local_index
    path = isolation / ".config/uv/uv.toml"
    original = write(
        path,
        (
            "# my uv settings\n"
            'link-mode = "copy"\n'
            "\n"
            "[[index]]  # only for packages pinned to it\n"
            'name = "gpu"\n'
            'url = "http://127.0.0.1:9/never-used/"\n'
            "explicit = true\n"
        ),
    )
    devpictl("--url", url, "--tool", "uv", "--write")

    work = tmp_path / "work"
    (work / "requirements.in").parent.mkdir(parents=True)
    (work / "requirements.in").write_text("devpictl-demo\n")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    # No --index-url or --default-index: the index comes from uv.toml alone.
    out = run(
        [find_uv_bin(), "pip", "compile", "requirements.in", "--python-version", version, "--emit-index-url", "--quiet"], tool_env, work
    )
    assert "devpictl-demo==1.0" in out.splitlines()
    assert f"--index-url {url}" in out.splitlines()
    assert "/simple/devpictl-demo/" in served

    devpictl("--undo", "--tool", "uv")
    assert path.read_bytes() == original


def tool_or_fail(name: str) -> str:
    """The tool's path; a missing tool fails the test (CI must not pass by skipping it).

    The test extra installs the tool next to this Python; PATH may not name that venv.
    """
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if not found:
        pytest.fail(f"{name} is not installed (it comes with devpictl's test extra: pip install -e '.[test]')")
    return found


def test_pdm_reads_its_global_config(tool_env, isolation, tmp_path):
    pdm = tool_or_fail("pdm")
    path = isolation / ".config/pdm/config.toml"
    # check_update = false also keeps pdm off the network.
    original = write(path, '# mine\ncheck_update = false\n\n[venv]\nbackend = "venv"  # no virtualenv here\n')
    url = "http://cache.lan:3141/root/pypi/+simple/"
    devpictl("--url", url, "--tool", "pdm", "--write")

    work = tmp_path / "work"
    assert run([pdm, "config", "pypi.url"], tool_env, work).strip() == url
    assert run([pdm, "config", "pypi.verify_ssl"], tool_env, work).strip() == "False"
    assert run([pdm, "config", "venv.backend"], tool_env, work).strip() == "venv"
    assert run([pdm, "config", "check_update"], tool_env, work).strip() == "False"

    devpictl("--undo", "--tool", "pdm")
    assert path.read_bytes() == original


def test_poetry_reads_the_project_source(tool_env, tmp_path):
    poetry = tool_or_fail("poetry")
    project = tmp_path / "project"
    original = write(
        project / "pyproject.toml",
        (
            "[project]\n"
            'name = "demo"\n'
            'version = "0.1.0"\n'
            'requires-python = ">=3.10"\n'
            "\n"
            "[tool.poetry]\n"
            "package-mode = false  # an application\n"
            "\n"
            "[[tool.poetry.source]]\n"
            'name = "corp"\n'
            'url = "https://corp.example/simple/"\n'
            'priority = "supplemental"\n'
        ),
    )
    url = "http://127.0.0.1:3141/root/pypi/+simple/"
    devpictl("--url", url, "--tool", "poetry", "--project", str(project), "--write")

    shown = [line.split(None, 2) for line in run([poetry, "source", "show", "--no-ansi"], tool_env, project).splitlines() if line.strip()]
    fields = [(parts[0], parts[2].strip()) for parts in shown if len(parts) == 3 and parts[1] == ":"]
    assert fields == [
        ("name", "corp"),
        ("url", "https://corp.example/simple/"),
        ("priority", "supplemental"),
        ("name", "devpictl"),
        ("url", url),
        ("priority", "primary"),
    ]
    run([poetry, "check", "--no-ansi"], tool_env, project)

    devpictl("--undo", "--tool", "poetry")
    assert (project / "pyproject.toml").read_bytes() == original


def test_pipenv_locks_from_the_first_source_in_its_pipfile(tool_env, tmp_path, local_index):
    pipenv = tool_or_fail("pipenv")
    url, served = local_index
    project = tmp_path / "project"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    original = write(
        project / "Pipfile",
        (
            "# my project\n"
            "[[source]]\n"
            'url = "https://pypi.example/simple"\n'
            "verify_ssl = true\n"
            'name = "pypi"  # never reached here\n'
            "\n"
            "[packages]\n"
            'devpictl-demo = "*"\n'
            "\n"
            "[requires]\n"
            f'python_version = "{version}"\n'
        ),
    )
    devpictl("--url", url, "--tool", "pipenv", "--project", str(project), "--write")

    # The project's own environment, made from this Python; nothing else of the host's.
    tool_env.update(PIPENV_VENV_IN_PROJECT="1", PIPENV_IGNORE_VIRTUALENVS="1", PIPENV_NOSPIN="1", PIPENV_YES="1")
    run([pipenv, "lock", "--python", sys.executable], tool_env, project)
    lock = json.loads((project / "Pipfile.lock").read_text())
    assert [s["name"] for s in lock["_meta"]["sources"]] == ["devpictl", "pypi"]
    assert lock["default"]["devpictl-demo"]["index"] == "devpictl"
    assert lock["default"]["devpictl-demo"]["version"] == "==1.0"
    assert "/simple/devpictl-demo/" in served

    devpictl("--undo", "--tool", "pipenv")
    assert (project / "Pipfile").read_bytes() == original
