"""A failed image build: its whole log kept, and one line that says what to do."""

from __future__ import annotations

from pathlib import Path


def save(lines: list[str]) -> Path:
    """Keep a failed build's whole output where the error message can point."""
    from devpictl.settings import data_dir

    path = data_dir() / "last-failed-build.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# What the engine says when FROM needs a registry it cannot reach or that lacks the image.
REGISTRY_FAILURES = (
    "pull access denied",
    "manifest unknown",
    "no such host",
    "dial tcp",
    "i/o timeout",
    "TLS handshake timeout",
    "toomanyrequests",
)


# What the build's output says when apt could not fetch nginx.
APT_FAILURES = ("apt-mirror:", "Unable to locate package nginx", "Could not resolve", "Failed to fetch")


def failure_message(detail: str, tail: list[str], base_image: str) -> str:
    text = "\n".join(tail + [detail])
    if "CERTIFICATE_VERIFY_FAILED" in text:
        hint = "the build's pip does not trust this network's TLS: pass --ca-bundle with your host's CA bundle (e.g. $SSL_CERT_FILE)"
    elif any(sign in detail for sign in REGISTRY_FAILURES) or ("not found" in detail and "image" in detail):
        hint = (
            f"base image {base_image!r} is neither on the engine nor reachable in a registry: load an image with "
            "python3 and its venv module and pass --base-image, or give the engine a registry mirror (registry-mirrors in /etc/docker/daemon.json)"
        )
    elif any(sign in text for sign in APT_FAILURES):
        hint = "apt could not fetch nginx: pass --apt-mirror with a Debian mirror you can reach, or --no-front"
    elif "No matching distribution" in text or "Could not find a version" in text:
        hint = "pip could not get devpi-server: check --pip-mirror, --ca-bundle or use --wheelhouse for an offline build"
    else:
        hint = "see the build output above"
    return f"image build failed ({detail.splitlines()[-1] if detail else 'unknown error'}): {hint}"
