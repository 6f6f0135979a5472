"""The address a cache is published on: checked to a literal IP, and the warning when it reaches beyond loopback."""

from __future__ import annotations

import errno
import re
import socket

from devpictl.errors import BadInput, PortInUse

DEFAULT_HOST = "127.0.0.1"


# A DNS name: labels of letters, digits and inner hyphens, dot-separated.
HOST_NAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def check_host(value: str, source: str = "--host") -> str:
    """The literal IP address to publish on, from an address or a host name; resolved before anything is published.

    The engine takes a host name as "every interface", so only literals reach it:
    ``localhost`` becomes 127.0.0.1, ``[::1]`` becomes ::1.
    """
    import ipaddress
    import socket

    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit() and (HOST_NAME.fullmatch(head.strip("[]")) or is_ip(head.strip("[]"))):
        raise BadInput(f"{source} {value!r} carries a port: give the address alone and the port with --port {tail}")
    if not HOST_NAME.fullmatch(text):
        raise BadInput(f"{source} {value!r} is not an IP address or host name: give an address such as 127.0.0.1")
    if text.rstrip(".").lower() == "localhost":
        return DEFAULT_HOST  # whatever the resolver says, localhost is loopback (pick IPv4, as devpictl reaches it)
    try:
        infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise BadInput(f"{source} {value!r} does not resolve to an address: give an IP address such as 127.0.0.1") from None
    addresses = [str(info[4][0]) for info in infos]
    ipv4 = [a for a in addresses if ":" not in a]
    return (ipv4 or addresses)[0]


def is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """True for a literal loopback address (127.0.0.0/8, ::1); a checked host is always a literal."""
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Addresses that publish the cache on every interface of the machine.
ALL_INTERFACES = ("0.0.0.0", "::", "")


def publishes_to_network(host: str) -> bool:
    """True for any address beyond loopback: every interface, or one that others can reach."""
    return not is_loopback(host)


def network_warning(host: str, port: int | None = None) -> str:
    """The risk of publishing beyond loopback; shown whatever chose the host (flag, environment, remembered)."""
    where = f"{host or '0.0.0.0'}:{port}" if port else (host or "0.0.0.0")
    reach = "every network interface" if host in ALL_INTERFACES else "an address other machines may reach"
    return (
        f"cache published on {where}, {reach}: anyone who can reach it can read the cache "
        "and, with the root password, write to it (upload packages, create users, change the upstream); "
        "to keep it local, run `devpictl down` and `devpictl up --host 127.0.0.1`"
    )


def check_port_free(host: str, port: int) -> None:
    """Fail early, with the fix, when something on this machine already listens on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: only a listener counts as "in use", not connections in TIME_WAIT
        # left by a cache that was just removed.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} on {host} is already in use: pick another with --port") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise PortInUse(f"this machine has no address {host}: pass --host with one of its addresses, e.g. 127.0.0.1") from None
            raise
