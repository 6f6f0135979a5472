"""devpictl warm: fill a cache with what a project needs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("warm")(warm)


def split_values(values: list[str] | None) -> list[str]:
    """Repeated options, each also a comma-separated list."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def warm(
    files: list[Path] = typer.Argument(
        ...,
        metavar="FILE",
        help="Lock files (uv.lock, pylock.toml, poetry.lock, pdm.lock) or requirements files, which pip resolves through the cache.",
    ),
    name: str = options.NAME,
    python: list[str] = typer.Option(
        None, "--python", help="Python version to fill for (MAJOR.MINOR); repeat or comma-separate [default: this machine's]."
    ),
    platform: list[str] = typer.Option(
        None,
        "--platform",
        help="Wheel platform tag to fill for, e.g. manylinux_2_28_x86_64; repeat or comma-separate [default: this machine's].",
    ),
    jobs: int = typer.Option(8, "--jobs", "-j", min=1, max=64, help="How many files to fetch at once."),
    json_output: bool = options.JSON,
) -> None:
    """Fill the cache with the files a project needs, from its lock files.

    Each file is fetched through the cache, which stores it, and checked
    against the sha256 the page and the lock give. Files the cache already
    holds are skipped, so running it again resumes. What the upstream lacked
    is listed at the end (exit 5).

    Example: devpictl warm uv.lock --python 3.12
    """
    import time

    from devpictl import container as ctr
    from devpictl import devpi, tls
    from devpictl import warm as core
    from devpictl.cache import Cache
    from devpictl.cli import ui
    from devpictl.errors import WarmIncomplete
    from devpictl.settings import Instance, check_name

    instance = Instance(check_name(name))
    targets = core.make_targets(split_values(python), split_values(platform))
    core.check_files(files)
    with Cache.running(ctr.connect(), instance) as cache:  # its facts only: no client is opened
        index_url = devpi.index_url(cache.local_base_url)
        access = cache.http_access()
        login = cache.read_login()  # pip, resolving a requirements file, gets it in its environment, never its command line
    bundle = tls.trust_bundle_file(instance) if cache.tls and tls.trust_bundle_file(instance).is_file() else None
    # pip, resolving a requirements file through the cache, stores files: they count as this run's.
    started = time.time() if any(core.lock_reader(f) is None for f in files) else None
    with ui.reporter(json_output) as rep:
        with rep.waiting(f"Reading {', '.join(str(f) for f in files)}"):
            pins = core.read_pins(files, index_url, targets, bundle, login)
        if json_output or not ui.err.is_terminal:
            report = core.warm(index_url, pins, targets, core.QuietProgress(), jobs, since=started, access=access)
        else:
            with DrawnProgress() as progress:
                report = core.warm(index_url, pins, targets, progress, jobs, since=started, access=access)
    if json_output:
        ui.print_json(core.WarmSummary(instance.name, index_url, len(pins), report))
    else:
        ui.out.print(
            f"Cache {instance.name!r}: stored {report.count(core.STORED)} files ({ui.human_size(report.stored_bytes)}), "
            f"{report.count(core.PRESENT)} were there already; {len(pins)} packages for {core.describe(targets)}."
        )
        for result in report.files:
            if result.status == core.FAILED:
                ui.err.print(f"  failed: {result.filename}: {result.problem}", markup=False)
        for missing in report.missing:
            ui.err.print(f"  missing: {missing}", markup=False)
        if len(report.refused) > 1 or len(report.missing) + report.count(core.FAILED):
            for refused in report.refused:
                ui.err.print(f"  refused: {refused}", markup=False)
    if not report.complete:
        problems = len(report.missing) + report.count(core.FAILED)
        if not problems and len(report.refused) == 1:  # one line: the policy's own reason
            raise WarmIncomplete(report.refused[0])
        if not problems:  # the policy alone: warming again changes nothing
            raise WarmIncomplete(
                f"{len(report.refused)} of what {', '.join(f.name for f in files)} needs is refused by the cache's page policy (listed above): "
                "`devpictl status` shows the policy, `devpictl set-policy` changes it"
            )
        raise WarmIncomplete(
            f"{problems + len(report.refused)} of what {', '.join(f.name for f in files)} needs could not be stored (listed above): "
            "the upstream lacks it or failed, or the page policy refuses it; run warm again to retry"
        )


class DrawnProgress:
    """A progress bar on stderr: files done of all, bytes, rate and time left."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        from devpictl.cli import ui

        self.bar = Progress(
            TextColumn("Warming"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            TextColumn("{task.fields[transfer]}"),
            TimeRemainingColumn(),
            console=ui.err,
            transient=True,
        )
        self.task = self.bar.add_task("warm", total=None, transfer="")
        self.bytes = 0
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def __enter__(self) -> DrawnProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def planned(self, files: int) -> None:
        self.bar.update(self.task, total=files)

    def advance(self, nbytes: int) -> None:
        with self.lock:
            self.bytes += nbytes
            rate = self.bytes / max(time.monotonic() - self.started, 0.001)
            self.bar.update(self.task, transfer=f"{self.bytes / 1e6:.1f} MB at {rate / 1e6:.1f} MB/s")

    def finished(self, result) -> None:
        self.bar.advance(self.task)
