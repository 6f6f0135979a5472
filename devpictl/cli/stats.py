"""devpictl stats: what the cache has been doing."""

from __future__ import annotations

import typer

from devpictl.cli import options

SPARKS = "▁▂▃▄▅▆▇█"


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    return "".join(SPARKS[min(len(SPARKS) - 1, v * (len(SPARKS) - 1) // top)] if top else SPARKS[0] for v in values)


def ratio_line(ratios: list[float | None]) -> str:
    """0% is the lowest bar, 100% the highest; a blank is an hour when nothing cacheable was asked."""
    return "".join(" " if r is None else SPARKS[round(r * (len(SPARKS) - 1))] for r in ratios)


def ratio(counts) -> str:
    if counts.hit_ratio is None:
        return "none asked"
    return f"{counts.hit_ratio:.0%} from the cache ({counts.local} of {counts.local + counts.fetched})"


def held_back(result) -> str:
    """What the page policy's minimum release age left off the pages served."""
    if not result.held_back_pages:
        return "nothing (no page served left a young file off)"
    top = ", ".join(f"{p} ({n})" for p, n in result.held_back_projects.most_common(5))
    return f"{result.held_back_files} young files left off {result.held_back_pages} pages served: {top}"


def refused(result) -> str:
    """Requests for the files of projects the page policy refuses."""
    if not result.refused:
        return "nothing"
    top = ", ".join(f"{p} ({n})" for p, n in result.refused_projects.most_common(5))
    return f"{result.refused} requests for files of refused projects: {top}"


def stats(
    since: str = typer.Option("7d", "--since", help="How far back to count: h, d or w, e.g. 1d [default: 7d, or as far as the log goes]."),
    name: str = options.WHICH_CACHE,
    json_output: bool = options.JSON,
) -> None:
    """Show what the cache did: requests, hit ratio, bytes, top projects.

    Counted from the front server's request lines in the container's log, so
    it covers as far back as that log goes (up to 100 MB of lines).

    Example: devpictl stats --since 1d
    """
    import datetime

    from devpictl import container as ctr
    from devpictl import stats as core
    from devpictl.cache import Cache
    from devpictl.cli import ui
    from devpictl.settings import Instance, duration_days

    days = duration_days(since, "--since", "7d")
    instance = Instance(options.only_cache(name))
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    cache = Cache.running(ctr.connect(), instance)
    result = core.cache_stats(cache, start)
    if json_output:
        ui.print_json(core.CacheStats(instance.name, result))
        return
    if not cache.front:
        ui.err.print("Cache runs without its front server: only the requests it logs are counted.")
    ui.out.print(f"Cache {instance.name!r}, since {result.since or start.isoformat(timespec='seconds')}:", markup=False)
    hours = core.timeline(result)
    traffic = [h.requests for h in hours]
    rows = [
        ("requests", f"{result.requests} ({ui.human_size(result.bytes_served)} served)"),
        ("simple pages", ratio(result.pages)),
        ("files", ratio(result.files)),
        ("core metadata", ratio(result.metadata)),
        ("fetched", f"{ui.human_size(result.bytes_fetched)} of files from the upstream"),
        ("top projects", ", ".join(f"{p} ({n})" for p, n in result.projects.most_common(5)) or "-"),
        ("held back", held_back(result)),
        ("refused", refused(result)),
        ("size", ", ".join(f"{index} {ui.human_size(n)}" for index, n in sorted(result.index_bytes.items())) or "-"),
    ]
    if hours:
        rows += [
            ("per hour", f"{sparkline(traffic)}  requests (peak {max(traffic)})"),
            ("hit ratio", f"{ratio_line([h.hit_ratio for h in hours])}  per hour (▁ 0%, █ 100%, blank: none asked)"),
            ("hours", f"{hours[0].hour}h to {hours[-1].hour}h UTC" if len(hours) > 1 else f"{hours[0].hour}h UTC"),
        ]
    for key, value in rows:
        ui.out.print(f"{key:>14}: {value}", markup=False)
