"""After a switch, refresh root/pypi's cached pages from the new upstream: several at once, resumable.

devpi keeps a cached page until mirror_cache_expiry passes; a refresh drops it and
fetches it again. Each refreshed project is appended to the switch's unfinished file
(its first line is the new upstream's URL), so a run that was stopped resumes where it
was, and the file goes once every page is refreshed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

JOBS = 8  # refreshes asked at once; devpi runs them one after the other (bench/switch.py), so more only queue
MISSING = "-"  # prefix of a project the new upstream does not have, in the unfinished file


def already_done(unfinished: Path) -> dict[str, bool]:
    """{project: refreshed (False: not upstream)} that an interrupted run recorded."""
    try:
        lines = unfinished.read_text().splitlines()[1:]
    except OSError:
        return {}
    return {line.removeprefix(MISSING): not line.startswith(MISSING) for line in lines if line.strip()}


def refresh(
    projects: list[str],
    refresh_one: Callable[[str], bool],
    unfinished: Path,
    advance: Callable[[int], None],
    jobs: int | None = None,
) -> tuple[list[str], list[str]]:
    """Refresh every project not yet done, ``jobs`` at a time; (refreshed, not upstream), sorted.

    ``advance(1)`` follows each refresh; the ones done before are not counted again.

    On an error or an interrupt, no refresh starts any more, those running finish, and
    each one done is in ``unfinished`` for the next run.
    """
    jobs = jobs or JOBS  # read now, so the benchmark can compare one at a time
    done = already_done(unfinished)
    todo = iter(p for p in projects if p not in done)
    with unfinished.open("a") as record, ThreadPoolExecutor(jobs, thread_name_prefix="refresh") as pool:
        running: dict[Future[bool], str] = {}

        def collect(finished) -> BaseException | None:
            """Record each finished refresh; the first error, if any, after all are recorded."""
            error = None
            for future in finished:
                project = running.pop(future)
                if future.exception() is not None:
                    error = error or future.exception()
                    continue
                done[project] = future.result()
                record.write(("" if done[project] else MISSING) + project + "\n")
                record.flush()
                advance(1)
            return error

        try:
            while True:
                for project in todo:
                    running[pool.submit(refresh_one, project)] = project
                    if len(running) >= jobs:
                        break
                if not running:
                    break
                error = collect(wait(running, return_when=FIRST_COMPLETED)[0])
                if error is not None:
                    raise error
        except BaseException:
            # The refreshes under way finish (each within devpi's timeout) and are kept.
            collect(wait(running)[0])
            raise
    wanted = set(projects)
    return sorted(p for p, ok in done.items() if ok and p in wanted), sorted(p for p, ok in done.items() if not ok and p in wanted)
