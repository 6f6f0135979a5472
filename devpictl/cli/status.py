"""devpictl status / ls: what one cache, or every cache here, is doing."""

from __future__ import annotations

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("ls")(ls)
    app.command("ps", hidden=True)(ls)


def status(
    name: str = typer.Option(
        None, "--name", "-n", envvar="DEVPICTL_NAME", help="Which cache [default: the only one; with several, all of them are listed]."
    ),
    lag: bool = typer.Option(
        False,
        "--lag",
        help="Also measure how far the upstream and each fallback are behind the official index (from this machine; takes a few seconds).",
    ),
    json_output: bool = options.JSON,
) -> None:
    """Show the cache's state, health, URL, upstream, devpi version and size.

    Example: devpictl status --json
    """
    from devpictl import inventory
    from devpictl import status as cache_status
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.errors import CacheNotFound
    from devpictl.settings import Instance, check_name

    if name is not None:
        check_name(name)
    engine = connect()
    if name is None:
        names = inventory.known_names(engine)
        if not names:
            raise CacheNotFound("no caches here yet: create one with `devpictl up`")
        if len(names) > 1:
            show_caches(inventory.known_caches(engine, names), json_output)
            if not json_output:
                ui.err.print("Several caches: `devpictl status --name NAME` shows one.")
            return
        name = names[0]
    instance = Instance(check_name(name))
    st = cache_status.status(engine, instance)
    lags = upstream_lags(st) if lag else {}
    if json_output:
        ui.print_json(cache_status.StatusReport(st, lags if lag else None))
        return
    rows = [
        ("cache", st.name),
        ("state", f"{st.state} (health: {st.health})"),
        ("index url", st.index_url or "-"),
        ("upstream", f"{st.upstream_name} {st.upstream} ({describe_reachability(st)})" if st.upstream else "-"),
        *([("fallbacks", describe_fallbacks(st))] if st.fallbacks else []),
        ("offline mode", "on (serves only cached files; the upstream is not asked)" if st.offline else "off"),
        ("role", describe_replication(st.replication)),
        ("devpi-server", st.devpi_version or "-"),
        ("front server", "nginx" if st.front_server else "off (devpi alone)"),
        ("https", describe_https(st)),
        ("read access", "a login of one of devpi's users (--read-auth)" if st.read_auth else "anyone who reaches the port"),
        ("core metadata", describe_core_metadata(st)),
        ("page policy", st.policy or "-"),
        ("cache size", ui.human_size(st.cache_bytes)),
        *([("cached pages", describe_pages(st))] if st.cached_pages is not None else []),
        ("image", st.image or "-"),
        ("volume", st.volume),
        ("root password", "the primary's (users come from there)" if is_replica(st) else f"in {st.password_file}"),
        ("next", st.next_step),
    ]
    if lag:
        rows.insert(4 + bool(st.fallbacks), ("behind", "; ".join(f"{url}: {describe_lag(found)}" for url, found in lags.items()) or "-"))
    for key, value in rows:
        ui.out.print(f"{key:>14}: {value}")


def describe_pages(st) -> str:
    if not st.pages_from_previous_upstream:
        return str(st.cached_pages)
    return (
        f"{st.cached_pages}, {st.pages_from_previous_upstream} still from the previous upstream "
        "(each comes from this one at its next request, and is served with the files the cache holds while it fails)"
    )


def upstream_lags(st) -> dict[str, dict[str, object]]:
    """{url: the lag keys of `mirrors test --json`} for the cache's upstream and fallbacks."""
    from devpictl.cli.choosing import mirror_lags
    from devpictl.mirrors import LAG_PROJECTS, Upstream

    # The official index shows as words, not a URL: it is the reference itself.
    urls = [url for url in [st.upstream, *(f["url"] for f in st.fallbacks)] if url and url.startswith(("http://", "https://"))]
    members = [Upstream("custom", url) for url in urls]
    found = mirror_lags(members, list(LAG_PROJECTS), None, 10.0) if members else {}
    lags = {url: found.get(member) for url, member in zip(urls, members, strict=True)}
    return {url: fresh.as_dict() if fresh is not None else {} for url, fresh in lags.items()}


def describe_lag(fields: dict) -> str:
    if fields.get("releases_behind") is None:
        return f"not measured ({fields.get('lag_problem')})"
    from devpictl.freshness import Lag

    return Lag(fields["releases_behind"], fields["hours_behind"]).describe()


def ls(json_output: bool = options.JSON) -> None:
    """List the caches devpictl knows here, running or not (alias: ps).

    Running, stopped, or down with its data kept; each with what to do next.

    Example: devpictl ls
    """
    from devpictl import inventory
    from devpictl.container import connect

    show_caches(inventory.known_caches(connect()), json_output)


def show_caches(caches, json_output: bool) -> None:
    from rich.table import Table

    from devpictl.cli import ui

    if json_output:
        ui.print_json(caches)
        return
    if not caches:
        ui.out.print("No caches here yet: `devpictl up` makes one.")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "STATE", "INDEX URL", "UPSTREAM", "SIZE"):
        table.add_column(column, no_wrap=True)  # a URL to copy must stay whole
    table.add_column("NEXT", overflow="fold")
    for c in caches:
        state = c.state if c.health in (None, "none") else f"{c.state} ({c.health})"
        table.add_row(c.name, state, c.index_url or "-", c.upstream_name or "-", ui.human_size(c.cache_bytes), c.next_step)
    ui.print_table(table)


def describe_core_metadata(st) -> str:
    """Whether installers get <wheel>.metadata (PEP 658) from the cache, as status shows it."""
    if st.core_metadata is None:
        return "-"
    if st.core_metadata:
        return "served (installers resolve without downloading wheels)"
    return f"not served: {st.core_metadata_note}"


def describe_fallbacks(st) -> str:
    """The fallbacks in order, each with its state; and what it means when none answers."""
    states = []
    for item in st.fallbacks:
        if item["reachable"] is None:
            states.append(f"{item['name']} {item['url']} (not asked)")
        else:
            states.append(
                f"{item['name']} {item['url']} ({'answering' if item['reachable'] else 'not answering: ' + str(item['problem'])})"
            )
    text = ", then ".join(states)
    if st.upstream_reachable is False and all(item["reachable"] is False for item in st.fallbacks):
        text += "; the upstream and every fallback are down: the cache serves only what it holds"
    return text


def is_replica(st) -> bool:
    return bool(st.replication) and st.replication["role"] == "replica"


def describe_replication(replication: dict | None) -> str:
    """A cache's place in devpi replication, as status shows it."""
    if replication is None:
        return "-"
    if replication["role"] == "replica":
        lag = "lag unknown: the primary has not answered yet" if replication["lag"] is None else f"{replication['lag']} changes behind"
        waiting = "" if replication["files_waiting"] is None else f", {replication['files_waiting']} files in its download queue"
        return f"replica of {replication['primary_url']} ({lag}{waiting})"
    replicas = replication["replicas"]
    if not replicas:
        return "primary (no replica has polled it since it started)"
    lags = ", ".join(f"{r['address']} {r['lag'] if r['lag'] is not None else '?'} behind" for r in replicas)
    return f"primary of {len(replicas)} replica{'s' if len(replicas) > 1 else ''} ({lags})"


def describe_reachability(st) -> str:
    """The upstream's state as status shows it beside the upstream's URL."""
    if st.offline:
        return "not asked: offline mode"
    if st.upstream_reachable is None:
        return f"not asked: {st.upstream_problem}" if st.upstream_problem else "not asked"
    if st.upstream_reachable:
        return "answering"
    return f"not answering: {st.upstream_problem}"


def describe_https(st) -> str:
    if not st.https:
        return "off (plain HTTP)"
    expires = f"certificate valid until {st.certificate_expires[:10]}" if st.certificate_expires else "certificate end not known here"
    return f"on, {expires}; plain HTTP is {'redirected' if st.https == 'redirect' else 'refused'}"
