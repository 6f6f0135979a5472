"""Render templates/Dockerfile.j2 and build the devpi image through docker-py."""

from __future__ import annotations

import io
import re
import shlex
import tarfile
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from devpictl import __version__, buildlog, coremetadata, layout
from devpictl.errors import BadInput, EngineError
from devpictl.mirrors import Upstream

DEVPI_SERVER_VERSION = "6.20.3"
DEVPI_WEB_VERSION = "5.1.1"
DEFAULT_BASE_IMAGE = "python:3.12-slim"
DEFAULT_IMAGE = f"devpictl/devpi-server:{DEVPI_SERVER_VERSION}"
VERSION_PATTERN = re.compile(r"\d+(\.\d+){1,3}")


def default_image(devpi_server_version: str) -> str:
    return f"devpictl/devpi-server:{devpi_server_version}"


def variant_image(options: BuildOptions) -> str:
    """The default tag for what ``options`` put inside: devpi-server's version, -web, -nofront."""
    return default_image(options.devpi_server_version) + ("-web" if options.web else "") + ("" if options.front else "-nofront")


# Labels on every image devpictl builds: what went in, so `up` can tell whether an
# existing image is the one it was asked for.
LABEL_DEVPI_SERVER = "devpictl.devpi-server"
LABEL_DEVPI_WEB = "devpictl.devpi-web"  # devpi-web's version, "" without it
LABEL_FRONT = "devpictl.front"  # "nginx", "" without a front server
LABEL_BASE_IMAGE = "devpictl.base-image"
LABEL_PIP_INDEX = "devpictl.pip-index"  # the build's index, "default" or "wheelhouse"
LABEL_APT_MIRROR = "devpictl.apt-mirror"  # "" for the base image's own apt sources


def recipe_labels(options: BuildOptions) -> dict[str, str]:
    if options.wheelhouse is not None:
        index = "wheelhouse"
    elif options.pip_index is not None and options.pip_index.public_url:
        index = options.pip_index.public_url  # never a user or password in a label
    else:
        index = "default"
    return {
        LABEL_DEVPI_SERVER: options.devpi_server_version,
        LABEL_DEVPI_WEB: DEVPI_WEB_VERSION if options.web else "",
        LABEL_FRONT: "nginx" if options.front else "",
        LABEL_BASE_IMAGE: options.base_image,
        LABEL_PIP_INDEX: index,
        LABEL_APT_MIRROR: options.apt_mirror or "",
    }


def recipe_differences(labels: dict[str, str], options: BuildOptions, asked: Collection[str]) -> list[str]:
    """How an image with ``labels`` differs from what ``options`` ask for, in words.

    What is inside counts whenever it is needed (devpi-web for ``web``, nginx for
    ``front``); how it was built (base image, index, devpi-server version) only
    for the options in ``asked``, the ones the user gave. An image without labels
    (built before devpictl labelled them) is taken to be a default build.
    """
    wanted = recipe_labels(options)
    found = {key: labels.get(key) for key in wanted}
    differences = []
    if options.web and not found[LABEL_DEVPI_WEB]:
        differences.append("no devpi-web (--web)")
    if options.front and found[LABEL_FRONT] == "":
        differences.append("no nginx front server (--front)")
    checks = (
        ("devpi_server_version", LABEL_DEVPI_SERVER, "devpi-server"),
        ("base_image", LABEL_BASE_IMAGE, "base image"),
        ("pip_mirror", LABEL_PIP_INDEX, "build index"),
        ("wheelhouse", LABEL_PIP_INDEX, "build index"),
        ("apt_mirror", LABEL_APT_MIRROR, "apt mirror"),
    )
    for option, label, what in checks:
        if option in asked and found[label] != wanted[label]:
            differences.append(f"{what} {found[label] or 'unknown'}, not {wanted[label]}")
    return differences


# mirror_ignore_serial_header, which switching to most mirrors needs, came with 6.17.0.
MIN_DEVPI_SERVER = (6, 17, 0)


def check_version(version: str) -> str:
    if not VERSION_PATTERN.fullmatch(version):
        raise BadInput(f"devpi-server version {version!r} is not a release number: give e.g. {DEVPI_SERVER_VERSION}")
    if tuple(int(part) for part in version.split(".")) < MIN_DEVPI_SERVER:
        raise BadInput(
            f"devpictl needs devpi-server {'.'.join(map(str, MIN_DEVPI_SERVER))} or newer, not {version}: give e.g. {DEVPI_SERVER_VERSION}"
        )
    return version


MIRROR_CACHE_EXPIRY = 1800  # devpi's default; the front server caches pages as long
# The front server's caches (docs/core-metadata.md says what they cost and why).
METADATA_CACHE_SIZE = "1g"  # a wheel's METADATA is a few kB: room for ~100,000 files
RANGE_CACHE_SIZE = "2g"  # ranges of wheels uv read (their end, zip directory and METADATA): ~30 kB a wheel
FILE_CACHE_SIZE = "10g"  # copies of files in their first fetch, dropped when unused
FILE_CACHE_INACTIVE = "10m"  # after devpi stores a file, nginx serves it from disk instead
# How long a client waits for another client's fetch of the same page, metadata or file
# before it is passed on by itself: under pip's 15 s read timeout, so no installer gives up.
LOCK_TIMEOUT = "10s"
LOCK_AGE = "1h"  # no second fetch of one file while the first is still running

# Environment variables handed to the build as build args. Docker treats these
# names as predefined args and keeps them out of `docker history`.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@dataclass(frozen=True)
class BuildOptions:
    """Everything that changes the rendered Dockerfile or its build context."""

    base_image: str = DEFAULT_BASE_IMAGE
    pip_index: Upstream | None = None  # None: pip's default index
    devpi_server_version: str = DEVPI_SERVER_VERSION
    web: bool = False
    wheelhouse: Path | None = None
    ca_bundle: Path | None = None
    front: bool = True  # install nginx, the front server
    apt_mirror: str | None = None  # the Debian archive for the build's apt steps; None: the base image's
    labels: dict[str, str] = field(default_factory=dict)  # put on the image by the engine


def template_dir() -> Path:
    """Where Dockerfile.j2 lives: inside the wheel, or at the top of a source checkout."""
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    # An editable install or a plain checkout: templates/ beside the package.
    return Path(__file__).parent.parent / "templates"


# The front's first_pages.py talks HTTP/2 to the upstream (httpx's http2 extra): many pages at
# once over one connection, where a burst of new HTTP/1.1 connections stalls (docs/core-metadata.md).
FRONT_HTTP2 = "h2>=4.1,<5"


def requirements(options: BuildOptions) -> list[str]:
    reqs = [f"devpi-server=={options.devpi_server_version}"]
    if options.front:
        reqs.append(FRONT_HTTP2)
    if options.web:
        reqs.append(f"devpi-web=={DEVPI_WEB_VERSION}")
    return reqs


def wheelhouse_command(options: BuildOptions, directory: str) -> str:
    """The `pip download` that fills a wheelhouse for this build."""
    return f"pip download --only-binary=:all: -d {shlex.quote(directory)} " + " ".join(shlex.quote(r) for r in requirements(options))


def pip_options(options: BuildOptions) -> list[str]:
    if options.wheelhouse is not None:
        return ["--no-index", "--find-links", layout.WHEELHOUSE.path.rstrip("/")]
    if options.pip_index is None or options.pip_index.url is None:
        return []
    url = options.pip_index.url
    opts = ["--index-url", url]
    parts = urlsplit(url)
    if parts.scheme == "http":
        opts += ["--trusted-host", parts.hostname or ""]
    return opts


def render_server_config(options: BuildOptions) -> str:
    """The YAML file devpi-server reads (it never reads an .ini file)."""
    # host and port come from the entrypoint: they depend on whether nginx is in front.
    settings: dict[str, object] = {
        "serverdir": layout.SERVER_DIR,
        "secretfile": layout.SERVER_SECRET,
        # Only root may create users and indexes; anonymous sign-ups are refused.
        "restrict-modify": "root",
        "mirror-cache-expiry": MIRROR_CACHE_EXPIRY,
        # Measured with bench/tune_devpi.py (docs/performance.md): behind nginx devpi only
        # sees page and file misses; 16 threads serve 8 concurrent installers as fast as
        # 50 and idle ~35 MB lighter.
        "threads": 16,
        # nginx keeps up to 32 connections to devpi open; headroom for direct clients.
        "connection-limit": 64,
        # Seconds for an upstream fetch; devpi's 5 s fails large pages on slow mirrors.
        "request-timeout": 30,
        # keyfs entries kept in RAM (~1 kB each); devpi's 10000 only pays off for heavy uploads.
        "keyfs-cache-size": 2000,
    }
    if coremetadata.supported_by(options.devpi_server_version):
        # Pages announce <wheel>.metadata (PEP 658/714) where an index's links carry it;
        # for the mirror, devpictl sets mirror_provides_core_metadata from a measurement.
        settings[coremetadata.SERVER_OPTION] = "true"
    if options.web:
        # devpi-web's indexer pins a CPU for many minutes on a mirror (docs/devpi-facts.md).
        settings["indexer-backend"] = "null"
    lines = ["# Rendered by devpictl; read by devpi-server -c.", "devpi-server:"]
    lines += [f"  {key}: {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def render_template(name: str, **values: object) -> str:
    """A template of templates/, given the image's layout (devpictl/layout.py) and ``values``."""
    import jinja2

    names = layout.values()
    if names.keys() & values.keys():
        raise ValueError(f"{name}: {', '.join(sorted(names.keys() & values.keys()))} would hide the layout's names")

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(name).render(**names, **values)


def render_nginx_conf() -> str:
    return render_template(
        "nginx.conf.j2",
        devpictl_version=__version__,
        cache_expiry=MIRROR_CACHE_EXPIRY,
        metadata_cache_size=METADATA_CACHE_SIZE,
        file_cache_size=FILE_CACHE_SIZE,
        range_cache_size=RANGE_CACHE_SIZE,
        file_cache_inactive=FILE_CACHE_INACTIVE,
        lock_timeout=LOCK_TIMEOUT,
        lock_age=LOCK_AGE,
    )


def render_front_page(options: BuildOptions) -> str:
    """The page the front server shows a browser at /; it reads the live values from devpi."""
    import json

    from devpictl.mirrors import CATALOG

    catalog = {name: upstream.url for name, upstream in CATALOG.items() if upstream.url}
    return render_template(
        "index.html.j2",
        devpictl_version=__version__,
        devpi_server_version=options.devpi_server_version,
        web=options.web,
        # In a <script>: "</" would end it.
        catalog_json=json.dumps(catalog, sort_keys=True).replace("</", "<\\/"),
    )


def render_dockerfile(options: BuildOptions) -> str:
    return render_template(
        "Dockerfile.j2",
        devpictl_version=__version__,
        base_image=options.base_image,
        with_ca_bundle=options.ca_bundle is not None,
        front=options.front,
        apt_mirror=options.apt_mirror,
        with_wheelhouse=options.wheelhouse is not None,
        pip_options=" ".join(pip_options(options)),
        requirements=" ".join(f"'{r}'" for r in requirements(options)),
        devpi_server_version=options.devpi_server_version,
    )


def check_inputs(options: BuildOptions) -> None:
    """Refuse unusable paths before anything is built."""
    if options.wheelhouse is not None:
        if not options.wheelhouse.is_dir():
            raise BadInput(f"wheelhouse {options.wheelhouse} is not a directory: make one with `{wheelhouse_command(options, 'DIR')}`")
        if not any(options.wheelhouse.glob("devpi_server-*.whl")):
            raise BadInput(
                f"wheelhouse {options.wheelhouse} holds no devpi_server wheel: fill it with `{wheelhouse_command(options, str(options.wheelhouse))}`"
            )
    if options.ca_bundle is not None:
        read_ca_bundle(options.ca_bundle)


def read_ca_bundle(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read CA bundle {path}: {exc.strerror}; give a readable PEM file") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise BadInput(f"{path} holds no PEM certificate: give the PEM bundle your host trusts (often $SSL_CERT_FILE)")
    return data


def image_files(options: BuildOptions) -> list[layout.ImageFile]:
    """The files of the build context that go into the image (Dockerfile.j2 copies each)."""
    files = [layout.PLUGIN, layout.PLUGIN_PAGES, layout.PAGE_POLICY, *layout.SERVER_FILES]
    if options.front:
        files += layout.FRONT_FILES
        if options.apt_mirror:
            files.append(layout.APT_MIRROR_FILE)
    return files


def image_file_text(name: str, options: BuildOptions) -> str:
    """What the build context holds as ``name``: what devpictl makes, else the template of that name."""
    if name == "devpi-server.yml":
        return render_server_config(options)
    if name == "nginx.conf":
        return render_nginx_conf()
    if name == "index.html":
        return render_front_page(options)
    if name in ("frontlog.py", "page_policy.py"):  # devpictl's own modules, which the image imports too
        return (Path(__file__).parent / name).read_text()
    return render_template(name)


def build_context(options: BuildOptions) -> io.BytesIO:
    """The tar archive sent to the engine: Dockerfile, the image's files, optional inputs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        add_bytes(tar, "Dockerfile", render_dockerfile(options).encode())
        for image_file in image_files(options):
            add_bytes(
                tar, image_file.name, image_file_text(image_file.name, options).encode(), mode=0o755 if image_file.executable else 0o644
            )
        if options.ca_bundle is not None:
            add_bytes(tar, layout.BUILD_CA_BUNDLE.name, read_ca_bundle(options.ca_bundle))
        if options.wheelhouse is not None:
            for wheel in sorted(options.wheelhouse.iterdir()):
                if wheel.is_file():
                    tar.add(wheel, arcname=f"{layout.WHEELHOUSE.name}{wheel.name}")
    buf.seek(0)
    return buf


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def proxy_build_args(environ: dict[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in PROXY_VARIABLES if environ.get(name)}


@dataclass(frozen=True)
class Built:
    """`build --json`: the image tag and the ID the engine gave it."""

    image: str
    id: str

    def as_dict(self) -> dict[str, object]:
        return {"image": self.image, "id": self.id}


def build_image(
    api,
    options: BuildOptions,
    tag: str,
    environ: dict[str, str],
    on_log: Callable[[str], None],
) -> str:
    """Build ``tag`` through the engine's low-level API, streaming its output to ``on_log``."""
    import docker.errors

    check_inputs(options)
    context = build_context(options)
    lines: list[str] = []
    try:
        stream: Iterable[dict] = api.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            buildargs=proxy_build_args(environ),
            labels={**recipe_labels(options), **options.labels},
            # An offline build proves the wheelhouse is complete: pip gets no network at all.
            network_mode="none" if options.wheelhouse is not None else None,
        )
        image_id = None
        for chunk in stream:
            if "stream" in chunk:
                line = chunk["stream"].rstrip("\n")
                if line:
                    lines.append(line)
                    on_log(line)
            elif "error" in chunk:
                detail = chunk["error"].strip()
                log = buildlog.save(lines + [detail])
                raise EngineError(f"{buildlog.failure_message(detail, lines[-15:], options.base_image)} (full build log: {log})")
            elif "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except docker.errors.APIError as exc:
        raise EngineError(f"image build failed: {exc.explanation or exc}") from None
    # The install stage stays behind as an untagged image labelled
    # devpictl.stage=install: the next build of the same recipe reuses its layers
    # instead of installing devpi again.
    return image_id or tag
