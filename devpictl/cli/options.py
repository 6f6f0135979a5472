"""Options shared by several commands, each with its environment variable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from devpictl.image import DEFAULT_BASE_IMAGE, DEFAULT_IMAGE, DEVPI_SERVER_VERSION

if TYPE_CHECKING:
    from devpictl.mirrors import Upstream

NAME = typer.Option("default", "--name", "-n", envvar="DEVPICTL_NAME", help="Which cache (several can run side by side).")


def complete_mirror_name(incomplete: str) -> list[str]:
    """Shell completion of a mirror's name: the catalog's, and your entries."""
    from devpictl.errors import DevpictlError
    from devpictl.mirrors import CATALOG, user_mirrors

    try:
        names = [*CATALOG, *user_mirrors()]
    except DevpictlError:  # a broken config.toml: complete the catalog
        names = [*CATALOG]
    return [name for name in names if name.startswith(incomplete.lower())]


def complete_mirror(incomplete: str) -> list[str]:
    """Shell completion of --mirror and set-upstream's MIRROR: a mirror's name, or 'fastest'."""
    return complete_mirror_name(incomplete) + (["fastest"] if "fastest".startswith(incomplete.lower()) else [])


def complete_mirrors(incomplete: str) -> list[str]:
    """Shell completion of a comma-separated list of mirrors (--fallback): the last item is completed."""
    done, _, last = incomplete.rpartition(",")
    return [f"{done},{name}" if done else name for name in complete_mirror_name(last)]


# For commands that read one cache: without --name, the only one here, as `status` picks it.
WHICH_CACHE = typer.Option(
    None, "--name", "-n", envvar="DEVPICTL_NAME", help="Which cache [default: the only one here; with several, name one]."
)


def only_cache(name: str | None) -> str:
    """``name``, checked; else the only cache devpictl knows here. Several are one error that lists them."""
    from devpictl import inventory
    from devpictl.container import connect
    from devpictl.errors import BadInput, CacheNotFound
    from devpictl.settings import check_name

    if name is not None:
        return check_name(name)
    names = inventory.known_names(connect())
    if not names:
        raise CacheNotFound("no caches here yet: create one with `devpictl up`")
    if len(names) > 1:
        raise BadInput(f"several caches here ({', '.join(names)}): pick one with --name, e.g. --name {names[0]} (`devpictl ls` shows them)")
    return names[0]


JSON = typer.Option(False, "--json", help="Print a JSON result for scripts instead of progress.")
VERBOSE = typer.Option(False, "--verbose", help="Print every line of an image build, not just its progress.")
IMAGE = typer.Option(
    None,
    "--image",
    envvar="DEVPICTL_IMAGE",
    help=f"Image tag to build [default: devpictl/devpi-server:VERSION, -web and -nofront added for those builds, e.g. {DEFAULT_IMAGE}].",
)
DEVPI_VERSION = typer.Option(
    None,
    "--devpi-server-version",
    envvar="DEVPICTL_DEVPI_SERVER_VERSION",
    help=f"devpi-server release the image pins [default: {DEVPI_SERVER_VERSION}].",
)
UP_IMAGE = typer.Option(
    None,
    "--image",
    envvar="DEVPICTL_IMAGE",
    help=f"Image tag to run (built if missing), used as it is [default: remembered, else {DEFAULT_IMAGE}; build options pick the image built with them].",
)
BASE_IMAGE = typer.Option(
    None, "--base-image", envvar="DEVPICTL_BASE_IMAGE", help=f"Image with python3 (and venv) to build on [default: {DEFAULT_BASE_IMAGE}]."
)
APT_MIRROR = typer.Option(
    None,
    "--apt-mirror",
    envvar="DEVPICTL_APT_MIRROR",
    help="Debian archive for the build's apt steps (nginx): a name (see `devpictl mirrors`) or a URL ending in /debian (default: the base image's).",
)
PIP_MIRROR = typer.Option(
    None,
    "--pip-mirror",
    envvar="DEVPICTL_PIP_MIRROR",
    help="Index the build's pip installs devpi from: a catalog name or URL (default: pip's default).",
)
WHEELHOUSE = typer.Option(
    None,
    "--wheelhouse",
    envvar="DEVPICTL_WHEELHOUSE",
    help="Build offline: pip installs only from this directory of wheels.",
    file_okay=False,
)
CA_BUNDLE = typer.Option(
    None,
    "--ca-bundle",
    envvar="DEVPICTL_CA_BUNDLE",
    help="PEM bundle to trust for HTTPS (a TLS-inspecting proxy's CA; for --replica-of https://..., the primary's CA), in the build and in the cache.",
    dir_okay=False,
)
WEB = typer.Option(False, "--web", help="Also install devpi-web (its search indexer stays off).")
PROBE = typer.Option(
    None,
    "--probe-project",
    envvar="DEVPICTL_PROBE_PROJECT",
    help="Project whose simple page must list files for the cache to count as ready [default: remembered, else pip].",
)
CHECK = typer.Option(True, "--check/--no-check", help="Check that a new upstream answers a simple page before switching to it.")
REFRESH_PAGES = typer.Option(
    False,
    "--refresh-pages",
    help="After a switch, fetch every cached page from the new upstream now, with progress, and name the projects it lacks (minutes on a large cache) instead of at each page's next request.",
)
FALLBACK = typer.Option(
    None,
    "--fallback",
    envvar="DEVPICTL_FALLBACK",
    autocompletion=complete_mirrors,
    help="Upstreams to ask, in order, when the main one fails (connection error, timeout, 5xx): names or URLs, comma-separated, e.g. tuna,bfsu; 'none' for none [default: remembered, else none].",
)
MAX_LAG = typer.Option(
    None,
    "--max-lag",
    envvar="DEVPICTL_MAX_LAG",
    help="With 'fastest': pass over mirrors further behind the official index than this, e.g. 6h or 1d.",
)
TIMEOUT = typer.Option(180.0, "--timeout", envvar="DEVPICTL_TIMEOUT", help="Seconds to wait for devpi to become ready.")


def build_options(
    base_image: str | None,
    pip_mirror: str | None,
    wheelhouse: Path | None,
    ca_bundle: Path | None,
    web: bool,
    front: bool = True,
    devpi_server_version: str | None = None,
    apt_mirror: str | None = None,
):
    """The BuildOptions these CLI values ask for."""
    from devpictl.image import BuildOptions, check_version
    from devpictl.mirrors import resolve, resolve_apt_mirror
    from devpictl.settings import extra_labels

    return BuildOptions(
        base_image=base_image or DEFAULT_BASE_IMAGE,
        devpi_server_version=check_version(devpi_server_version or DEVPI_SERVER_VERSION),
        pip_index=resolve(pip_mirror) if pip_mirror else None,
        web=web,
        wheelhouse=wheelhouse,
        ca_bundle=ca_bundle,
        front=front,
        apt_mirror=resolve_apt_mirror(apt_mirror) if apt_mirror else None,
        labels=extra_labels(),
    )


def given_build_options(
    base_image: str | None,
    pip_mirror: str | None,
    wheelhouse: Path | None,
    web: bool,
    devpi_server_version: str | None,
    apt_mirror: str | None,
) -> frozenset[str]:
    """The build options given on the command line or in the environment (the rest are defaults)."""
    values = {
        "base_image": base_image,
        "pip_mirror": pip_mirror,
        "wheelhouse": wheelhouse,
        "web": web or None,
        "devpi_server_version": devpi_server_version,
        "apt_mirror": apt_mirror,
    }
    return frozenset(name for name, value in values.items() if value is not None)


@dataclass(frozen=True)
class UpstreamChoice:
    """What `up --mirror` and `set-upstream MIRROR` are asked to fetch from, with --fallback and --max-lag, checked."""

    upstream: Upstream | None  # None: 'fastest' (see chosen), or no --mirror: keep the cache's
    fallbacks: tuple[Upstream, ...] | None  # None: the remembered ones
    fastest: bool
    max_lag_hours: float | None

    def chosen(self, probe_project: str | None, *, quiet: bool) -> tuple[Upstream | None, tuple[Upstream, ...] | None]:
        """(the upstream, its fallbacks): for 'fastest', the fastest mirror now (its table on stderr unless ``quiet``)."""
        if not self.fastest:
            return self.upstream, self.fallbacks
        from devpictl import failover
        from devpictl.cli.choosing import fastest_upstream

        chosen = fastest_upstream(probe_project, quiet=quiet, max_lag_hours=self.max_lag_hours)
        return chosen, failover.without(self.fallbacks, chosen)  # the fastest may be one of them: then it is the primary only


def upstream_choice(mirror: str | None, fallback: str | None, max_lag: str | None) -> UpstreamChoice:
    """The one reading of --mirror (or MIRROR), --fallback and --max-lag, for `up` and `set-upstream`."""
    from devpictl import failover
    from devpictl.errors import BadInput
    from devpictl.mirrors import is_fastest, resolve
    from devpictl.settings import duration_days

    fastest = is_fastest(mirror)
    upstream = resolve(mirror) if mirror is not None and not fastest else None
    fallbacks = failover.parse_fallbacks(fallback) if fallback is not None else None
    if fallbacks:
        failover.check_members((upstream, *fallbacks) if upstream is not None else fallbacks)
    hours = duration_days(max_lag, "--max-lag", "6h") * 24 if max_lag is not None else None
    if hours is not None and not fastest:  # only 'fastest' chooses a mirror it could apply to
        raise BadInput("--max-lag chooses among mirrors: use it with --mirror fastest (or `set-upstream fastest`)")
    return UpstreamChoice(upstream, fallbacks, fastest, hours)


# The page policy (`up` and `set-policy`; devpictl/policy.py).
MIN_RELEASE_AGE = typer.Option(
    None,
    "--min-release-age",
    envvar="DEVPICTL_MIN_RELEASE_AGE",
    help="Leave files uploaded less than this ago (7d, 12h, 30m; 0: none) off the cache's pages; installers pick the release before [default: remembered, else 0].",
)
ALLOW_NEWER = typer.Option(
    None, "--allow-newer", help="PROJECT or PROJECT==VERSION exempt from --min-release-age; repeat for more [default: remembered]."
)
DENY = typer.Option(
    None, "--deny", help="Refuse this project (PEP 503 name): its files answer 403 with the reason; repeat for more [default: remembered]."
)
ALLOW_ONLY = typer.Option(
    None,
    "--allow-only",
    dir_okay=False,
    help="Serve only the projects this file names, one a line [default: remembered, else every project].",
)
