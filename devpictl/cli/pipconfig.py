"""devpictl pip-config: point pip, uv, pdm, poetry and pipenv at the cache, and take it back."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperCommand

from devpictl.cli import options


class ShellValueOptional(TyperCommand):
    """Lets ``--shell`` stand alone, meaning ``--shell sh`` (bash, zsh); Typer has no optional values."""

    def parse_args(self, ctx, args):
        fixed: list[str] = []
        for i, arg in enumerate(args):
            fixed.append(arg)
            if arg == "--shell" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                fixed.append("sh")
        return super().parse_args(ctx, fixed)


def register(app: typer.Typer) -> None:
    app.command("pip-config", cls=ShellValueOptional)(pip_config)


def pip_config(
    name: str = options.WHICH_CACHE,
    tool: list[str] = typer.Option(
        None,
        "--tool",
        "-t",
        metavar="TOOL[,TOOL]",
        help="Installer to configure: pip, uv, pdm, poetry, pipenv; repeat it or separate with commas [default: pip; with --undo: all].",
    ),
    write: bool = typer.Option(
        False,
        "--write",
        help="Write the settings into each tool's config file, keeping every other setting; the first write saves the original for --undo.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the diff that --write (or --undo) would make, and change nothing."),
    undo: bool = typer.Option(False, "--undo", help="Put back, byte for byte, the files devpictl changed (deleting those it created)."),
    shell: str = typer.Option(
        None,
        "--shell",
        metavar="[sh|fish|powershell]",
        help='Print environment variables for your shell instead (bash/zsh unless you name fish or powershell): eval "$(devpictl pip-config --shell)".',
    ),
    scope: str = typer.Option(
        None,
        "--scope",
        metavar="[user|global|site]",
        help="pip's file: user, global (every user; needs root) or site (one Python environment) [default: user].",
    ),
    python: Path = typer.Option(
        None,
        "--python",
        metavar="PATH",
        help="For --scope site: the interpreter of the environment to configure, e.g. .venv/bin/python [default: the one running devpictl].",
    ),
    project: Path = typer.Option(
        None,
        "--project",
        metavar="DIR",
        help="For poetry and pipenv: the project directory whose pyproject.toml (poetry) or Pipfile (pipenv) gets the cache as its default source.",
    ),
    url: str = typer.Option(
        None,
        "--url",
        metavar="URL",
        help="Use this index URL instead of asking Docker for the running cache's, e.g. a cache on another machine.",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="With --write: make the cache uv's default even if another index is. With --undo: restore a file changed since devpictl wrote it.",
    ),
    index: str = typer.Option(
        None,
        "--index",
        metavar="USER/INDEX",
        help="Point them at this team index of the cache (its uploads and the mirror, from one URL) [default: the mirror, root/pypi].",
    ),
    json_output: bool = options.JSON,
) -> None:
    """Show or write what points pip, uv, pdm, poetry and pipenv at the cache.

    Example: devpictl pip-config --tool pip,uv --write
    """
    from devpictl.clientconfig.registry import parse_tools
    from devpictl.clientconfig.shell import parse_shell
    from devpictl.settings import check_name

    if name is not None:
        check_name(name)
    tools = parse_tools(tool, default=() if undo else ("pip",))
    shell_syntax = parse_shell(shell) if shell is not None else None
    _check_combination(
        tools,
        tools_given=bool(tool),
        write=write,
        dry_run=dry_run,
        undo=undo,
        shell=shell_syntax,
        scope=scope,
        python=python,
        project=project,
        url=url,
        force=force,
        index=index,
    )
    if python is not None and scope is None:
        scope = "site"

    if undo:
        _undo(tools, _undo_paths(tools, scope, python, project), dry_run, force, json_output)
        return
    index_url = _index_url(name, url, index, create_login=write and not dry_run)
    if shell_syntax is not None and _public(index_url) != index_url:
        from devpictl.errors import BadInput

        raise BadInput("this cache needs a login to read, and --shell would print its password: use --write (its files only you may read)")
    if shell_syntax is not None:
        _show_shell(tools, index_url, shell_syntax, json_output)
    elif write or dry_run:
        _write(tools, index_url, scope, python, project, dry_run, force, json_output)
    else:
        _show(tools, index_url, scope, python, project, json_output)


def _check_combination(
    tools: tuple[str, ...],
    *,
    tools_given: bool,
    write: bool,
    dry_run: bool,
    undo: bool,
    shell: str | None,
    scope: str | None,
    python: Path | None,
    project: Path | None,
    url: str | None,
    force: bool,
    index: str | None = None,
) -> None:
    """Refuse, before anything else happens, options that cannot go together."""
    from devpictl.clientconfig.registry import INSTALLERS
    from devpictl.errors import BadInput

    def taken_by(option: str) -> list[str]:
        return [name for name, installer in INSTALLERS.items() if option in installer.options]

    if shell is not None and (write or undo or dry_run):
        raise BadInput("--shell prints variables for your shell and writes no file: leave out --write, --undo and --dry-run")
    if undo and write:
        raise BadInput("--undo puts files back and --write changes them: use one at a time")
    if undo and url:
        raise BadInput("--undo needs no URL: leave out --url")
    if undo and index:
        raise BadInput("--undo needs no index: leave out --index")
    if url and index:
        raise BadInput("--url is a whole index URL already: leave out --index, or give --url the team index's URL")
    if force and not (write or undo or dry_run):
        raise BadInput("--force only changes what --write or --undo do: add one of them")
    if scope is not None and scope not in ("user", "global", "site"):
        raise BadInput(f"unknown pip scope {scope!r}: use user, global or site")
    if python is not None and scope not in (None, "site"):
        raise BadInput("--python picks the environment for --scope site: leave out --scope or use --scope site")
    if (scope is not None or python is not None) and tools_given and not set(taken_by("scope")) & set(tools):
        raise BadInput("--scope and --python are pip's: add --tool pip")
    if project is not None and (tools_given or not undo) and not set(taken_by("project")) & set(tools):
        raise BadInput("--project is poetry's and pipenv's: add --tool poetry or --tool pipenv")


def _index_url(name: str | None, url: str | None, index: str | None = None, *, create_login: bool = False) -> str:
    """--url, checked; else the running cache's index URL, or its team ``index``'s (which needs the engine).

    For an HTTPS cache with devpictl's CA, the URL carries the trust bundle installers
    need (IndexURL); with --read-auth, this machine's user's login, made when
    ``create_login`` (else a stand-in, since it is only shown, and never its password).
    """
    if url is not None:
        from devpictl.mirrors import parse_index_url

        return parse_index_url(url) + "/"
    from devpictl import container as ctr
    from devpictl import devpi, readauth
    from devpictl.cache import Cache
    from devpictl.settings import Instance

    instance = Instance(options.only_cache(name))
    if index is not None:
        from devpictl import teams

        index = teams.check_index(index)
        with teams.session(instance) as s:
            teams.find_index(teams.all_indexes(s.client.users()), index, instance.name)
            url = devpi.index_url(s.base_url, index)
            return readauth.installer_url(
                url, instance, https=s.https, read_auth=s.read_auth, root_client=lambda: s.client, create_login=create_login
            )
    with Cache.running(ctr.connect(), instance) as cache:
        url = devpi.index_url(cache.local_base_url)
        return readauth.installer_url(
            url,
            instance,
            https=cache.tls is not None,
            read_auth=cache.read_auth,
            root_client=lambda: cache.client,
            create_login=create_login,
        )


def _tool_file(tool: str, scope: str | None, python: Path | None, project: Path | None) -> Path | None:
    """The file devpictl edits for ``tool`` (None: a project tool without --project)."""
    from devpictl.clientconfig.registry import get

    return get(tool).config_file(scope=scope, python=python, project=project)


def _show(tools, index_url, scope, python, project, json_output) -> None:
    from devpictl.clientconfig.registry import ShownConfig, get

    files = {tool: _tool_file(tool, scope, python, project) for tool in tools}
    if json_output:
        _print_json(ShownConfig(index_url, files))
        return
    parts = []
    for tool in tools:
        header = ""
        # A project tool has no file without --project: its header says what to do, alone or not.
        if len(tools) > 1 or files[tool] is None:
            header = f"# {tool}: {files[tool] or _project_installer(tool).outside_project(index_url)}\n"
        parts.append(header + get(tool).snippet(index_url))
    _echo("\n".join(parts), nl=False)


def _show_shell(tools, index_url, shell, json_output) -> None:
    from devpictl.clientconfig.registry import ShellEnv, get
    from devpictl.clientconfig.shell import render

    if json_output:
        _print_json(ShellEnv(index_url, tuple(tools)))
        return
    out = []
    for tool in tools:
        variables = get(tool).env_vars(index_url)
        if variables:
            out.append(render(variables, shell))
        else:
            out.append(f"# {tool} reads its package source from the project only; run there: {get(tool).command(index_url)}\n")
    _echo("".join(out), nl=False)


def _say(line: str, note: bool = False) -> None:
    """One line for people: results on stdout, notes on stderr; never read as rich markup."""
    from rich.text import Text

    from devpictl.cli import ui

    (ui.err if note else ui.out).print(Text(_public(f"note: {line}" if note else line)))


def _write(tools, index_url, scope, python, project, dry_run, force, json_output) -> None:
    from devpictl.clientconfig import manifest as mf
    from devpictl.clientconfig.registry import Written, get

    manifest = mf.Manifest()
    # Plan every file first: a refusal for one tool leaves all of them unchanged.
    changes: dict[str, mf.Change | None] = {}
    for tool in tools:
        path = _tool_file(tool, scope, python, project)
        changes[tool] = (
            None
            if path is None
            else mf.plan_change(
                get(tool),
                path,
                index_url,
                scope=(scope or "user") if "scope" in get(tool).options else None,
                force=force,
                manifest=manifest,
            )
        )
    applied: dict[str, mf.Applied] = {}
    if not dry_run:
        for tool, change in changes.items():
            if change is not None and change.changed:
                applied[tool] = mf.apply_change(change, manifest)

    if json_output:
        _print_json(Written(index_url, dry_run, changes, applied))
        return

    for tool, change in changes.items():
        if change is None:
            command = get(tool).command(index_url)
            if command:
                _say(f"{tool} has no setting outside a project; run this in your project (or add --project DIR):")
                _echo(f"  {command}")
            else:
                _say(
                    f"{tool} has no setting outside a project: add --project DIR, the directory of its {_project_installer(tool).project_file_name}"
                )
            continue
        if dry_run:
            _echo(change.diff() if change.changed else f"# {tool}: {change.path} already points at the cache\n", nl=False)
        elif not change.changed:
            _say(f"{tool}: {change.path} already points at {index_url}")
        else:
            done = applied[tool]
            line = f"{tool}: {'created' if change.old is None else 'updated'} {change.path}"
            if done.first:
                line += f"; `devpictl pip-config --undo --tool {tool}` puts it back"
            _say(line)
        for note in change.notes:
            _say(note, note=True)
        trust = get(tool).trust_note(index_url)
        if trust is not None:
            _say(trust, note=True)


def _undo_paths(tools, scope, python, project) -> list[Path] | None:
    """The files --undo is limited to, when --scope, --python or --project name them."""
    from devpictl.clientconfig.base import ProjectInstaller
    from devpictl.clientconfig.registry import INSTALLERS

    paths: list[Path | None] = []
    if scope is not None:
        paths.append(_tool_file("pip", scope, python, None))
    if project is not None:
        # The project files there of the project tools asked for (any, without --tool).
        candidates = [i for name, i in INSTALLERS.items() if isinstance(i, ProjectInstaller) and (not tools or name in tools)]
        found = [i for i in candidates if (Path(project) / i.project_file_name).is_file()] or candidates[:1]
        paths += [i.config_file(project=project) for i in found]  # none there: the first names its missing file
    return [path for path in paths if path is not None] or None


def _project_installer(tool: str):
    """The installer of ``tool``, one that reads its index from a project file (config_file gave None)."""
    from devpictl.clientconfig.base import ProjectInstaller
    from devpictl.clientconfig.registry import get

    installer = get(tool)
    assert isinstance(installer, ProjectInstaller), tool
    return installer


def _undo(tools, paths, dry_run, force, json_output) -> None:
    from devpictl.clientconfig import manifest as mf

    manifest = mf.Manifest()
    restores = mf.plan_undo(manifest, tools or None, paths, force=force or dry_run)
    if not dry_run:
        for restore in restores:
            mf.apply_restore(restore, manifest)
    if json_output:
        _print_json(mf.Undone(dry_run, restores))
        return
    if not restores:
        which = ", ".join(tools) if tools else "any tool"
        _say(f"Nothing to undo: devpictl has not changed {'that file' if paths else 'a config file'} for {which}.")
    for restore in restores:
        if dry_run:
            _echo(restore.diff() or f"# {restore.tool}: {restore.path} is already as it was\n", nl=False)
        elif restore.original is None:
            _say(f"{restore.tool}: deleted {restore.path} (devpictl had created it)")
        else:
            _say(f"{restore.tool}: restored {restore.path}")


def _public(text: str) -> str:
    """What pip-config prints: never a password, whatever file or URL it shows."""
    from devpictl.clientconfig.base import hide_passwords

    return hide_passwords(text)


def _echo(text: str, nl: bool = True) -> None:
    typer.echo(_public(text), nl=nl)


def _print_json(result) -> None:
    import sys

    from devpictl.results import to_json

    sys.stdout.write(_public(to_json(result)) + "\n")
