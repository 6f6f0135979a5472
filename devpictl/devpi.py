"""A small client for devpi-server's HTTP API (only what devpictl needs)."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from devpictl.errors import (
    CacheUnreachable,
    DevpiError,
    LoginRefused,
    UpstreamUnreachable,
)

JSON = {"Accept": "application/json"}
# devpi answers installers with plain simple pages; other user agents get devpi-web's richer, slower HTML.
INSTALLER_AGENT = "pip/24.0 devpictl"
MIRROR_INDEX = "root/pypi"
# Forgetting a large cache's pages is one write transaction: seconds for thousands of pages.
EXPIRE_TIMEOUT = 300.0  # the front server waits as long (nginx.conf.j2 proxy_read_timeout)


def index_url(base_url: str, index: str = MIRROR_INDEX) -> str:
    """The simple index installers use: the mirror root/pypi (or ``index``) of the cache at ``base_url``."""
    return f"{base_url}/{index}/+simple/"


@dataclass(frozen=True)
class ExpiredPages:
    """What a switch did to the mirror's cached pages (templates/devpictl_mirror_auth.py's expire-pages)."""

    pages: int  # the pages it had cached: each comes from the new upstream at its next request
    kept: int | None  # of those, kept (with their stored files) as the fallback; None: an image whose plugin drops them all


@dataclass(frozen=True)
class PageCounts:
    cached: int  # pages the mirror holds
    from_previous_upstream: int  # of those, pages a switch marked that the new upstream has not answered yet


class DevpiClient:
    """devpi's API at ``base_url``; ``transport`` is the seam tests use to fake the server."""

    def __init__(
        self, base_url: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None, verify: ssl.SSLContext | bool = True
    ):
        self.base_url = base_url.rstrip("/")
        # trust_env=False: the cache is local; a host proxy must not see these requests.
        # ``verify``: how an HTTPS cache is trusted (tls.local_context pins its certificate).
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport, trust_env=False, verify=verify)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DevpiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**JSON, **kwargs.pop("headers", {})}
        try:
            return self.http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException:
            raise CacheUnreachable(f"devpi at {self.base_url} did not answer {method} {path} in time: check `devpictl logs`") from None
        except httpx.TransportError as exc:
            raise CacheUnreachable(
                f"cannot reach devpi at {self.base_url} ({type(exc).__name__}): is the cache up? try `devpictl status`"
            ) from None

    @staticmethod
    def _error(response: httpx.Response, doing: str) -> DevpiError:
        try:
            message = response.json().get("message", "")
        except ValueError:
            message = response.text[:200]
        message = " ".join(str(message).split())  # one line, whatever devpi sent
        return DevpiError(f"devpi refused to {doing}: HTTP {response.status_code} {message}".rstrip())

    def api(self) -> dict:
        response = self._request("GET", "/+api")
        if response.status_code in (502, 503, 504):
            # The front server answers while devpi behind it is still starting.
            raise CacheUnreachable(f"devpi behind the front server at {self.base_url} is not answering yet (HTTP {response.status_code})")
        if response.status_code != 200:
            raise self._error(response, "answer /+api")
        return response.json().get("result", {})

    def server_status(self) -> dict:
        response = self._request("GET", "/+status")
        if response.status_code != 200:
            raise self._error(response, "answer /+status")
        return response.json().get("result", {})

    def login(self, user: str, password: str) -> None:
        response = self._request("POST", "/+login", json={"user": user, "password": password})
        if response.status_code == 401:
            raise LoginRefused(
                f"devpi refused the login as {user}: the stored password does not match this cache's; "
                "if the cache was made elsewhere, put its root password in the file `devpictl status` names"
            )
        if response.status_code != 200:
            raise self._error(response, f"log in as {user}")
        token = response.json()["result"]["password"]
        auth = base64.b64encode(f"{user}:{token}".encode()).decode()
        self.http.headers["X-Devpi-Auth"] = auth

    def users(self) -> dict[str, dict]:
        """Every user with its indexes (GET /)."""
        response = self._request("GET", "/")
        if response.status_code != 200:
            raise self._error(response, "list users")
        return response.json()["result"]

    def set_password(self, user: str, password: str) -> None:
        """Change ``user``'s password (PATCH /USER); the session stays logged in with the new one."""
        response = self._request("PATCH", f"/{user}", json={"password": password})
        if response.status_code in (401, 403):
            raise LoginRefused(f"devpi refused to change the password of {user} (HTTP {response.status_code}): log in as {user} first")
        if response.status_code != 200:
            raise self._error(response, f"change the password of {user}")
        # devpi answers with a token for the new password; the old token may die with it.
        token = (response.json().get("result") or {}).get("password")
        if token:
            self.http.headers["X-Devpi-Auth"] = base64.b64encode(f"{user}:{token}".encode()).decode()

    def get_index(self, index: str = MIRROR_INDEX) -> dict:
        response = self._request("GET", f"/{index}", params={"no_projects": ""})
        if response.status_code != 200:
            raise self._error(response, f"show {index}")
        return response.json()["result"]

    def list_projects(self, index: str = MIRROR_INDEX) -> list[str]:
        """Names the index lists; for a mirror with mirror_no_project_list, those it has cached."""
        response = self._request("GET", f"/{index}")
        if response.status_code != 200:
            raise self._error(response, f"list the projects of {index}")
        return list(response.json()["result"].get("projects", []))

    def patch_index(self, changes: list[str], index: str = MIRROR_INDEX) -> dict:
        response = self._request("PATCH", f"/{index}", json=changes)
        if response.status_code != 200:
            raise self._error(response, f"change {index} ({', '.join(c.split('=')[0] for c in changes)})")
        return response.json()["result"]

    def refresh_project(self, project: str, index: str = MIRROR_INDEX) -> bool:
        """Drop the cached simple page of ``project`` and fetch it again from the upstream.

        False when the upstream could not serve it: devpi 6.20 answers 500 when the
        upstream has no such project, and the page stays empty until it has.
        """
        response = self._request("POST", f"/{index}/+simple/{project}/refresh", follow_redirects=False)
        if response.status_code in (200, 302):
            return True
        if response.status_code == 404 or response.status_code >= 500:
            return False
        raise self._error(response, f"refresh {project}")

    def expire_pages(self, index: str = MIRROR_INDEX) -> ExpiredPages | None:
        """Mark every page the mirror ``index`` cached stale, in one transaction.

        Each is fetched again from the mirror's upstream of now on its next request, and
        is served with the files the cache holds while that upstream fails
        (templates/devpictl_mirror_auth.py). None: this devpi lacks devpictl's plugin
        request (an image built before it), so pages must be refreshed one by one.
        """
        response = self._request("POST", f"/{index}/+devpictl/expire-pages", timeout=EXPIRE_TIMEOUT)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(response, f"forget the pages {index} cached")
        result = response.json()["result"]
        kept = result.get("kept")
        return ExpiredPages(int(result["expired"]), None if kept is None else int(kept))

    def page_counts(self, index: str = MIRROR_INDEX) -> PageCounts | None:
        """How many pages the mirror ``index`` holds, and how many are still the previous upstream's; None: not known here."""
        response = self._request("GET", f"/{index}/+devpictl/pages")
        if response.status_code != 200:
            return None  # an image without the request, or a mirror that lists its upstream's projects
        result = response.json()["result"]
        return PageCounts(int(result["cached"]), int(result["marked"]))

    def simple_files(self, project: str, index: str = MIRROR_INDEX) -> list[str]:
        """The file names on the simple page of ``project``, as an installer sees it."""
        response = self._request("GET", f"/{index}/+simple/{project}/", headers={"Accept": "text/html", "User-Agent": INSTALLER_AGENT})
        if response.status_code == 404:
            return []
        if response.status_code >= 500:
            raise UpstreamUnreachable(
                f"devpi could not get {project!r} from its upstream (HTTP {response.status_code}): check the upstream with `devpictl status`"
            )
        if response.status_code != 200:
            raise self._error(response, f"serve the simple page of {project}")
        from devpictl.simplepage import parse

        # Only links to distribution files count: a page of other links lists none.
        return [link.filename for link in parse(response.text, str(response.url))]

    def create_user(self, user: str, password: str) -> None:
        """PUT /USER: a new user with ``password``; 409 (it exists) is an error."""
        response = self._request("PUT", f"/{user}", json={"password": password})
        if response.status_code != 201:
            raise self._error(response, f"create user {user}")

    def delete_user(self, user: str) -> None:
        response = self._request("DELETE", f"/{user}")
        if response.status_code != 200:
            raise self._error(response, f"remove user {user}")

    def create_index(self, index: str, config: dict) -> dict:
        """PUT /USER/NAME with ``config`` (type, bases, volatile, acl_upload, ...)."""
        response = self._request("PUT", f"/{index}", json=config)
        if response.status_code != 200:
            raise self._error(response, f"create index {index}")
        return response.json()["result"]

    def delete_index(self, index: str) -> None:
        response = self._request("DELETE", f"/{index}")
        if response.status_code not in (200, 201):
            raise self._error(response, f"remove index {index}")
