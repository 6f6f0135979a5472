"""devpictl up / logs / down: the life of one cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("logs")(logs)
    app.command("down")(down)


def up(
    mirror: str = typer.Option(
        None,
        "--mirror",
        "-m",
        envvar="DEVPICTL_MIRROR",
        autocompletion=options.complete_mirror,
        help="Upstream: a catalog name or your entry (see `devpictl mirrors`), an index URL, or 'fastest' (measure, take the fastest). Default: keep the cache's, or pypi.",
    ),
    port: int = typer.Option(
        None, "--port", "-p", envvar="DEVPICTL_PORT", help="Host port to publish the cache on [default: remembered, else 3141]."
    ),
    host: str = typer.Option(
        None,
        "--host",
        envvar="DEVPICTL_HOST",
        help="Host address to publish on; 0.0.0.0 opens the cache to your network [default: remembered, else 127.0.0.1].",
    ),
    name: str = options.NAME,
    image: str = options.UP_IMAGE,
    devpi_server_version: str = options.DEVPI_VERSION,
    base_image: str = options.BASE_IMAGE,
    pip_mirror: str = options.PIP_MIRROR,
    apt_mirror: str = options.APT_MIRROR,
    wheelhouse: Path = options.WHEELHOUSE,
    ca_bundle: Path = options.CA_BUNDLE,
    web: bool = options.WEB,
    front: bool = typer.Option(
        None, "--front/--no-front", help="Put nginx before devpi (files from disk, cached pages) [default: remembered, else on]."
    ),
    offline: bool = typer.Option(
        None,
        "--offline/--online",
        help="Run devpi in offline mode: serve only files already cached, never ask the upstream; readiness then waits for the API only [default: remembered, else online].",
    ),
    fallback: str = options.FALLBACK,
    max_lag: str = options.MAX_LAG,
    network: str = typer.Option(None, "--network", envvar="DEVPICTL_NETWORK", help="Also attach the cache to this Docker network."),
    probe_project: str = options.PROBE,
    memory: str = typer.Option(
        None,
        "--memory",
        envvar="DEVPICTL_MEMORY",
        help="Memory limit of the cache container, e.g. 2g or 1536m; beyond it the engine kills and restarts devpi [default: remembered, else 2g].",
    ),
    max_size: str = typer.Option(
        None,
        "--max-size",
        envvar="DEVPICTL_MAX_SIZE",
        help="Keep the mirrored files under this size, least recently used out first, e.g. 20G; 0 for no limit [default: remembered, else none].",
    ),
    pids_limit: int = typer.Option(
        None,
        "--pids-limit",
        envvar="DEVPICTL_PIDS_LIMIT",
        help="Most processes and threads the cache container may run [default: remembered, else 512].",
    ),
    replica_of: str = typer.Option(
        None,
        "--replica-of",
        envvar="DEVPICTL_REPLICA_OF",
        help="Run as a devpi replica of the devpictl cache at this URL (http://HOST:PORT): it follows the primary's changes and serves from its own volume [default: remembered, else a primary].",
    ),
    replica_secret: Path = typer.Option(
        None,
        "--replica-secret",
        envvar="DEVPICTL_REPLICA_SECRET",
        dir_okay=False,
        help="With --replica-of: the file `devpictl password --replica-secret FILE` wrote on the primary (kept, then needed no more).",
    ),
    min_release_age: str = options.MIN_RELEASE_AGE,
    allow_newer: list[str] = options.ALLOW_NEWER,
    deny: list[str] = options.DENY,
    allow_only: Path = options.ALLOW_ONLY,
    tls: str = typer.Option(
        None,
        "--tls",
        envvar="DEVPICTL_TLS",
        metavar="[self-signed|off]",
        help="Serve HTTPS with a certificate from a CA devpictl makes for this cache (pip-config then trusts it), or 'off' [default: remembered, else off].",
    ),
    tls_cert: Path = typer.Option(
        None,
        "--tls-cert",
        envvar="DEVPICTL_TLS_CERT",
        dir_okay=False,
        help="Serve HTTPS with this PEM certificate (and chain), with --tls-key; copied into the volume.",
    ),
    tls_key: Path = typer.Option(
        None,
        "--tls-key",
        envvar="DEVPICTL_TLS_KEY",
        dir_okay=False,
        help="The unencrypted PEM key of --tls-cert; copied into the volume (0600), never kept elsewhere.",
    ),
    tls_name: list[str] = typer.Option(
        None,
        "--tls-name",
        help="A host name or address clients reach the cache at (repeat it): the self-signed certificate is made for these, a given one must cover them [default: remembered, else this machine's name and loopback].",
    ),
    http: str = typer.Option(
        None,
        "--http",
        envvar="DEVPICTL_HTTP",
        metavar="[redirect|refuse]",
        help="With HTTPS: what plain HTTP on the same port gets [default: remembered, else redirect].",
    ),
    read_auth: bool = typer.Option(
        None,
        "--read-auth/--no-read-auth",
        envvar="DEVPICTL_READ_AUTH",
        help="Reading needs a login of one of devpi's users; pip-config writes one for you [default: remembered, else off].",
    ),
    check: bool = options.CHECK,
    refresh_pages: bool = options.REFRESH_PAGES,
    timeout: float = options.TIMEOUT,
    json_output: bool = options.JSON,
    verbose: bool = options.VERBOSE,
) -> None:
    """Build if needed, run, set the upstream and wait until the cache serves files.

    With --replica-of, the cache is a replica of another devpictl cache (its
    upstream and users come from there) and `up` returns once it has caught up.

    Example: devpictl up --mirror nju
    """
    from dataclasses import replace

    from devpictl import image as img
    from devpictl import lifecycle, precedence
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.network import network_warning, publishes_to_network
    from devpictl.settings import Instance, cache_lock, check_name

    instance = Instance(check_name(name))
    choice = options.upstream_choice(mirror or None, fallback, max_lag)  # an empty --mirror keeps the cache's upstream
    build_opts = options.build_options(
        base_image,
        pip_mirror,
        wheelhouse,
        ca_bundle,
        web,
        front=front is not False,
        devpi_server_version=devpi_server_version,
        apt_mirror=apt_mirror,
    )
    img.check_inputs(build_opts)
    opts = precedence.ask(
        instance,
        fastest=choice.fastest,
        build=build_opts,
        upstream=choice.upstream,
        fallbacks=choice.fallbacks,
        host=host,
        port=port,
        image=image,
        network=network,
        ca_bundle=ca_bundle,
        probe_project=probe_project,
        front=front,
        offline=offline,
        memory=memory,
        pids_limit=pids_limit,
        max_bytes=max_size,
        replica_of=replica_of,
        replica_secret=replica_secret,
        min_release_age=min_release_age,
        allow_newer=allow_newer or None,
        deny=deny or None,
        allow_only=allow_only,
        tls=tls,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_names=tls_name or None,
        http=http,
        read_auth=read_auth,
        check=check,
        refresh_pages=refresh_pages,
        timeout=timeout,
        environ=dict(os.environ),
        build_given=options.given_build_options(base_image, pip_mirror, wheelhouse, web, devpi_server_version, apt_mirror),
    )
    engine = connect()
    upstream, fallbacks = choice.chosen(probe_project, quiet=json_output)
    opts = replace(opts, upstream=upstream, fallbacks=fallbacks)
    with cache_lock(instance), ui.reporter(json_output, verbose) as rep:
        result = lifecycle.up(engine, opts, rep)
    # Whatever chose the address (flag, DEVPICTL_HOST, remembered), warn on stderr:
    # stdout stays clean for --json.
    if publishes_to_network(result.host):
        ui.err.print(f"[yellow]warning:[/] {network_warning(result.host, result.port)}")
    if json_output:
        ui.print_json(result)
        return
    if result.changed:
        for action in result.actions:
            ui.out.print(f"  {action}")
    else:
        ui.out.print(f"Cache {result.name!r} is already up with upstream {result.upstream.name}; nothing changed.")
    ui.out.print(f"Cache {result.name!r} is ready. Index URL: [bold]{result.index_url}[/]")
    if result.primary_url:
        ui.out.print(f"It is a replica of {result.primary_url}: uploads and settings go to the primary, and reach it from there.")
    if result.offline:
        ui.out.print("Offline mode: it serves only files it has cached and asks no upstream (`devpictl down` and `up --online` to end it).")
    ui.out.print(f"Point pip at it: devpictl pip-config --write{'' if name == 'default' else ' --name ' + name}")


def logs(
    name: str = options.NAME,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    tail: int = typer.Option(200, "--tail", help="How many lines to show from the end.", min=0),
    all_lines: bool = typer.Option(False, "--all", help="Also show the health check's requests (every 10 s)."),
) -> None:
    """Show the cache's log: devpi-server's and the front server's.

    The front server writes a line a request: cache=HIT or MISS for pages,
    disk=disk for files served from the volume. Health checks are left out
    unless --all.

    Example: devpictl logs -f
    """
    from devpictl.cache import Cache
    from devpictl.container import connect
    from devpictl.errors import CacheNotFound
    from devpictl.settings import Instance, check_name

    instance = Instance(check_name(name))
    found = Cache.find(connect(), instance)
    if found is None:
        raise CacheNotFound(f"no cache named {instance.name!r}: create it with `devpictl up --name {instance.name}`")
    try:
        for line in found.log_lines(tail=tail, follow=follow, health_checks=all_lines):
            sys.stdout.write(line)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


def down(
    name: str = options.NAME,
    volumes: bool = typer.Option(False, "--volumes", "-v", help="Also delete the cache's data volume (everything it downloaded)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask before deleting data."),
    json_output: bool = options.JSON,
) -> None:
    """Stop and remove the cache container; its data volume stays unless --volumes.

    Example: devpictl down --volumes --yes
    """
    from devpictl import lifecycle
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
        actions = lifecycle.down(engine, instance, volumes=volumes)
    if json_output:
        ui.print_json(lifecycle.DownResult(instance.name, actions))
    elif actions:
        for action in actions:
            ui.out.print(action)
    else:
        ui.out.print(f"No cache named {instance.name!r}; nothing to do.")
