"""devpictl up / status / logs / down: the life of one cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("status")(status)
    app.command("logs")(logs)
    app.command("down")(down)


def up(
    mirror: str = typer.Option(None, "--mirror", "-m", envvar="DEVPICTL_MIRROR", help="Upstream: a catalog name or your entry (see `devpictl mirrors`), an index URL, or 'fastest' (measure, take the fastest). Default: keep the cache's, or pypi."),
    port: int = typer.Option(None, "--port", "-p", envvar="DEVPICTL_PORT", help="Host port to publish the cache on [default: remembered, else 3141]."),
    host: str = typer.Option(None, "--host", envvar="DEVPICTL_HOST", help="Host address to publish on; 0.0.0.0 opens the cache to your network [default: remembered, else 127.0.0.1]."),
    name: str = options.NAME,
    image: str = options.UP_IMAGE,
    devpi_server_version: str = options.DEVPI_VERSION,
    base_image: str = options.BASE_IMAGE,
    pip_mirror: str = options.PIP_MIRROR,
    wheelhouse: Path = options.WHEELHOUSE,
    ca_bundle: Path = options.CA_BUNDLE,
    web: bool = options.WEB,
    front: bool = typer.Option(None, "--front/--no-front", help="Put nginx before devpi (files from disk, cached pages) [default: remembered, else on]."),
    offline: bool = typer.Option(None, "--offline/--online", help="Run devpi in offline mode: serve only files already cached, never ask the upstream; readiness then waits for the API only [default: remembered, else online]."),
    network: str = typer.Option(None, "--network", envvar="DEVPICTL_NETWORK", help="Also attach the cache to this Docker network."),
    probe_project: str = options.PROBE,
    memory: str = typer.Option(None, "--memory", envvar="DEVPICTL_MEMORY", help="Memory limit of the cache container, e.g. 2g or 1536m; beyond it the engine kills and restarts devpi [default: remembered, else 2g]."),
    pids_limit: int = typer.Option(None, "--pids-limit", envvar="DEVPICTL_PIDS_LIMIT", help="Most processes and threads the cache container may run [default: remembered, else 512]."),
    check: bool = options.CHECK,
    timeout: float = options.TIMEOUT,
    json_output: bool = options.JSON,
) -> None:
    """Build if needed, run, set the upstream and wait until the cache serves files.

    Example: devpictl up --mirror nju
    """
    from devpictl import cache
    from devpictl import image as img
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.mirrors import is_fastest, resolve
    from devpictl.settings import Instance, cache_lock, check_host, check_name, check_pids_limit, check_port, check_timeout, memory_bytes

    instance = Instance(check_name(name))
    upstream = resolve(mirror) if mirror and not is_fastest(mirror) else None
    if port is not None:
        check_port(port)
    if host is not None:
        host = check_host(host)
    check_timeout(timeout)
    if memory is not None:
        memory_bytes(memory)
    if pids_limit is not None:
        check_pids_limit(pids_limit)
    build_opts = options.build_options(
        base_image, pip_mirror, wheelhouse, ca_bundle, web, front=front is not False, devpi_server_version=devpi_server_version
    )
    if devpi_server_version and not image:
        image = img.default_image(build_opts.devpi_server_version)  # asking for a version means its image
    img.check_inputs(build_opts)
    opts = cache.UpOptions(
        instance=instance,
        upstream=upstream,
        host=host,
        port=port,
        image=image,
        build=build_opts,
        network=network,
        ca_bundle=ca_bundle,
        probe_project=probe_project,
        check=check,
        front=front,
        offline=offline,
        memory=memory,
        pids_limit=pids_limit,
        timeout=timeout,
        environ=dict(os.environ),
    )
    engine = connect()
    if is_fastest(mirror):
        from dataclasses import replace

        from devpictl.cli.upstream import fastest_upstream

        opts = replace(opts, upstream=fastest_upstream(opts.probe_project, quiet=json_output))
    with cache_lock(instance), ui.reporter(json_output) as rep:
        result = cache.up(engine, opts, rep)
    # Whatever chose the address (flag, DEVPICTL_HOST, remembered), warn on stderr:
    # stdout stays clean for --json.
    if cache.publishes_to_network(result.host):
        ui.err.print(f"[yellow]warning:[/] {cache.network_warning(result.host, result.port)}")
    if json_output:
        ui.print_json(
            {
                "name": result.name,
                "index_url": result.index_url,
                "upstream": {"name": result.upstream.name, "url": result.upstream.public_url},
                "changed": result.changed,
                "actions": result.actions,
                "password_file": str(result.password_file),
                "offline": result.offline,
            }
        )
        return
    if result.changed:
        for action in result.actions:
            ui.out.print(f"  {action}")
    else:
        ui.out.print(f"Cache {result.name!r} is already up with upstream {result.upstream.name}; nothing changed.")
    ui.out.print(f"Cache {result.name!r} is ready. Index URL: [bold]{result.index_url}[/]")
    if result.offline:
        ui.out.print("Offline mode: it serves only files it has cached and asks no upstream (`devpictl down` and `up --online` to end it).")
    ui.out.print(f"Point pip at it: devpictl pip-config --write{'' if name == 'default' else ' --name ' + name}")


def status(name: str = options.NAME, json_output: bool = options.JSON) -> None:
    """Show the cache's state, health, URL, upstream, devpi version and size.

    Example: devpictl status --json
    """
    from devpictl import cache
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.settings import Instance, check_name

    instance = Instance(check_name(name))
    st = cache.status(connect(), instance)
    if json_output:
        ui.print_json(st.as_dict())
        return
    size = f"{st.cache_bytes / 1e6:.1f} MB" if st.cache_bytes is not None else "unknown"
    rows = [
        ("cache", st.name),
        ("state", f"{st.state} (health: {st.health})"),
        ("index url", st.url or "-"),
        ("upstream", f"{st.upstream_name} {st.upstream} ({describe_reachability(st)})" if st.upstream else "-"),
        ("offline mode", "on (serves only cached files; the upstream is not asked)" if st.offline else "off"),
        ("devpi-server", st.devpi_version or "-"),
        ("front server", "nginx" if st.front_server else "off (devpi alone)"),
        ("cache size", size),
        ("image", st.image or "-"),
        ("volume", st.volume),
        ("root password", f"in {st.password_file}"),
    ]
    for key, value in rows:
        ui.out.print(f"{key:>14}: {value}")


def describe_reachability(st) -> str:
    """The upstream's state as status shows it beside the upstream's URL."""
    if st.offline:
        return "not asked: offline mode"
    if st.upstream_reachable is None:
        return f"not asked: {st.upstream_problem}" if st.upstream_problem else "not asked"
    if st.upstream_reachable:
        return "answering"
    return f"not answering: {st.upstream_problem}"


def logs(
    name: str = options.NAME,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    tail: int = typer.Option(200, "--tail", help="How many lines to show from the end.", min=0),
) -> None:
    """Show devpi-server's log.

    Example: devpictl logs -f
    """
    from devpictl import container as ctr
    from devpictl.container import connect
    from devpictl.errors import CacheNotFound
    from devpictl.settings import Instance, check_name

    instance = Instance(check_name(name))
    found = ctr.find_container(connect(), instance)
    if found is None:
        raise CacheNotFound(f"no cache named {instance.name!r}: create it with `devpictl up --name {instance.name}`")
    if follow:
        try:
            for chunk in found.logs(stream=True, follow=True, tail=tail):
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass
        return
    sys.stdout.write(found.logs(tail=tail).decode(errors="replace"))


def down(
    name: str = options.NAME,
    volumes: bool = typer.Option(False, "--volumes", help="Also delete the cache's data volume (everything it downloaded)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask before deleting data."),
    json_output: bool = options.JSON,
) -> None:
    """Stop and remove the cache container; its data volume stays unless --volumes.

    Example: devpictl down --volumes --yes
    """
    from devpictl import cache
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.errors import BadInput
    from devpictl.settings import Instance, cache_lock, check_name

    instance = Instance(check_name(name))
    engine = connect()
    if volumes and not yes:
        if not sys.stdin.isatty():
            raise BadInput(f"--volumes deletes everything cache {instance.name!r} downloaded: add --yes to confirm")
        typer.confirm(f"Delete volume {instance.volume} and everything cache {instance.name!r} downloaded?", abort=True)
    with cache_lock(instance):
        actions = cache.down(engine, instance, volumes=volumes)
    if json_output:
        ui.print_json({"name": instance.name, "actions": actions})
    elif actions:
        for action in actions:
            ui.out.print(action)
    else:
        ui.out.print(f"No cache named {instance.name!r}; nothing to do.")
