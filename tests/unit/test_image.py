"""Rendering the Dockerfile and server config, the build context, and the build through a fake engine."""

from __future__ import annotations

import tarfile

import docker.errors
import pytest
import yaml

from devpictl import image as img
from devpictl import layout
from devpictl.errors import BadInput, EngineError
from devpictl.mirrors import CATALOG, Upstream, resolve

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def render(**kwargs) -> str:
    return img.render_dockerfile(img.BuildOptions(**kwargs))


def stages(dockerfile: str) -> tuple[str, str]:
    """The text of the install stage and of the final stage."""
    froms = [i for i, line in enumerate(dockerfile.splitlines()) if line.startswith("FROM ")]
    assert len(froms) == 2, dockerfile
    lines = dockerfile.splitlines()
    return "\n".join(lines[froms[0] : froms[1]]), "\n".join(lines[froms[1] :])


def pip_install_line(dockerfile: str) -> str:
    [line] = [line for line in dockerfile.splitlines() if "/bin/pip install" in line]
    return line


@pytest.fixture
def wheelhouse(tmp_path):
    path = tmp_path / "wheels"
    path.mkdir()
    (path / "devpi_server-6.20.3-py3-none-any.whl").write_bytes(b"wheel-1")
    (path / "pluggy-1.5.0-py3-none-any.whl").write_bytes(b"wheel-2")
    return path


@pytest.fixture
def ca_bundle(tmp_path):
    path = tmp_path / "ca.pem"
    path.write_bytes(PEM)
    return path


# What every build context holds, and what an image with its front server adds.
CONTEXT = {
    "Dockerfile",
    "devpi-server.yml",
    "entrypoint.sh",
    "prune.py",
    "metrics.py",
    "frontlog.py",
    "set-mirror.py",
    "healthcheck.py",
    "devpictl_mirror_auth.py",
    "devpictl_pages.py",
    "page_policy.py",
}
FRONT_CONTEXT = {
    "nginx.conf",
    "flush-cache.sh",
    "follow-primary.py",
    "first_pages.py",
    "balancer.conf",
    "index.html",
}


class TestRenderDockerfile:
    def test_base_image_is_in_both_from_lines(self):
        text = render(base_image="registry.local/py:3.11")
        froms = [line for line in text.splitlines() if line.startswith("FROM ")]
        assert froms == ["FROM registry.local/py:3.11 AS install", "FROM registry.local/py:3.11"]

    def test_default_base_image(self):
        assert f"FROM {img.DEFAULT_BASE_IMAGE} AS install" in render()

    def test_default_pip_index_gives_no_index_options(self):
        line = pip_install_line(render())
        assert "--index-url" not in line
        assert "--trusted-host" not in line
        assert "--no-index" not in line
        assert "'devpi-server==6.20.3'" in line

    def test_official_upstream_gives_no_index_url(self):
        assert "--index-url" not in pip_install_line(render(pip_index=CATALOG["pypi"]))

    def test_https_catalog_mirror_gives_index_url_without_trusted_host(self):
        line = pip_install_line(render(pip_index=CATALOG["tuna"]))
        assert "--index-url https://pypi.tuna.tsinghua.edu.cn/simple " in line
        assert "--trusted-host" not in line

    def test_http_mirror_adds_trusted_host(self):
        line = pip_install_line(render(pip_index=resolve("http://10.1.2.3:8080/simple/")))
        assert "--index-url http://10.1.2.3:8080/simple --trusted-host 10.1.2.3 " in line

    def test_wheelhouse_installs_offline_from_a_copied_directory(self, wheelhouse):
        text = render(wheelhouse=wheelhouse, pip_index=CATALOG["tuna"])
        install, final = stages(text)
        line = pip_install_line(text)
        assert "--no-index --find-links /tmp/devpictl/wheelhouse" in line
        # The wheelhouse wins over any pip mirror.
        assert "--index-url" not in line
        assert "COPY wheelhouse/ /tmp/devpictl/wheelhouse/" in install
        assert "wheelhouse" not in final

    def test_no_wheelhouse_no_copy(self):
        assert "COPY wheelhouse" not in render()

    def test_ca_bundle_is_used_only_in_the_install_stage(self, ca_bundle):
        install, final = stages(render(ca_bundle=ca_bundle))
        assert "COPY ca-bundle.pem /tmp/devpictl/ca-bundle.pem" in install
        assert "ENV PIP_CERT=/tmp/devpictl/ca-bundle.pem" in install
        assert "ca-bundle" not in final
        assert "PIP_CERT" not in final

    def test_no_ca_bundle_no_pip_cert(self):
        text = render()
        assert "ca-bundle" not in text
        assert "PIP_CERT" not in text

    def test_web_adds_devpi_web(self):
        line = pip_install_line(render(web=True))
        assert "'devpi-server==6.20.3' 'h2>=4.1,<5' 'devpi-web==5.1.1'" in line

    def test_the_front_brings_http2_for_its_upstream_and_no_front_does_not(self):
        assert "'h2>=4.1,<5'" in pip_install_line(render())
        assert "h2" not in pip_install_line(render(front=False))

    def test_a_wheelhouse_error_gives_the_download_of_the_build_asked(self, tmp_path):
        with pytest.raises(BadInput, match=r"pip download --only-binary=:all: -d DIR devpi-server==6\.20\.3 'h2>=4\.1,<5'`$"):
            img.check_inputs(img.BuildOptions(base_image="b", wheelhouse=tmp_path / "missing"))
        with pytest.raises(BadInput, match=r"-d \S+ devpi-server==6\.20\.3`$"):
            img.check_inputs(img.BuildOptions(base_image="b", wheelhouse=tmp_path, front=False))

    def test_default_has_no_devpi_web(self):
        assert "devpi-web" not in render()

    def test_devpi_server_version_is_pinned_and_labelled(self):
        text = render(devpi_server_version="6.19.0")
        assert "'devpi-server==6.19.0'" in pip_install_line(text)
        assert 'devpictl.devpi-server="6.19.0"' in text

    def test_labels_are_left_to_the_engine(self):
        # Label values are passed to the build API (see test_passes_context_tag_labels_and_proxy_args),
        # never pasted into the Dockerfile where a quote or "$" would break it.
        _, final = stages(render(labels={"team": 'c"i$x'}))
        assert "team" not in final

    def test_runtime_instructions(self):
        _, final = stages(render())
        lines = final.splitlines()
        assert "USER devpi" in lines
        assert "VOLUME /data" in lines
        assert "EXPOSE 3141" in lines
        assert 'ENTRYPOINT ["/usr/local/bin/devpictl-entrypoint"]' in lines
        assert "COPY devpi-server.yml /etc/devpi/devpi-server.yml" in lines
        assert "COPY --from=install /opt/devpi /opt/devpi" in lines
        [health] = [line for line in lines if line.startswith("HEALTHCHECK")]
        assert "--interval=" in health
        assert '"/usr/local/lib/devpictl/healthcheck.py"' in final
        assert 'devpictl.tls="1"' in final  # its entrypoint knows HTTPS and --read-auth (tls.check_image)

    def test_no_template_syntax_is_left(self, wheelhouse, ca_bundle):
        text = render(wheelhouse=wheelhouse, ca_bundle=ca_bundle, web=True, labels={"a": "b"})
        assert "{{" not in text and "{%" not in text


# Labels record what built an image, so `up` can tell whether an image is what it was asked for.
DEFAULT = img.DEFAULT_IMAGE
WEB = f"{DEFAULT}-web"


def labels(**options) -> dict[str, str]:
    return img.recipe_labels(img.BuildOptions(**options))


class TestRecipe:
    @pytest.mark.parametrize(
        ("options", "tag"),
        [
            ({}, DEFAULT),
            ({"web": True}, WEB),
            ({"front": False}, f"{DEFAULT}-nofront"),
            ({"web": True, "front": False, "devpi_server_version": "6.17.0"}, "devpictl/devpi-server:6.17.0-web-nofront"),
        ],
    )
    def test_variant_tags_say_what_is_inside(self, options, tag):
        assert img.variant_image(img.BuildOptions(**options)) == tag

    def test_labels_name_the_build_index_without_credentials(self):
        index = Upstream("corp", "https://user:secret@pypi.corp.example:8443/simple")
        assert labels(pip_index=index)[img.LABEL_PIP_INDEX] == "https://pypi.corp.example:8443/simple"
        assert labels()[img.LABEL_PIP_INDEX] == "default"

    def test_no_differences_for_the_same_recipe(self):
        options = img.BuildOptions(web=True, base_image="debian-python:12")
        assert img.recipe_differences(img.recipe_labels(options), options, {"web", "base_image"}) == []

    def test_what_is_inside_always_counts(self):
        assert img.recipe_differences(labels(), img.BuildOptions(web=True), set()) == ["no devpi-web (--web)"]
        assert img.recipe_differences(labels(front=False), img.BuildOptions(), set()) == ["no nginx front server (--front)"]
        # An image with more than asked for will do: devpi-web unused, nginx off.
        assert img.recipe_differences(labels(web=True), img.BuildOptions(front=False), set()) == []

    def test_how_it_was_built_counts_only_when_asked(self):
        built = labels(base_image="debian-python:12")
        assert img.recipe_differences(built, img.BuildOptions(), set()) == []
        assert img.recipe_differences(built, img.BuildOptions(), {"base_image"}) == [
            f"base image debian-python:12, not {img.DEFAULT_BASE_IMAGE}"
        ]

    def test_an_unlabelled_image_is_a_default_build(self):
        assert img.recipe_differences({}, img.BuildOptions(), set()) == []
        assert img.recipe_differences({}, img.BuildOptions(web=True), {"web"}) == ["no devpi-web (--web)"]
        assert img.recipe_differences({}, img.BuildOptions(), {"base_image"}) == [f"base image unknown, not {img.DEFAULT_BASE_IMAGE}"]


class TestRenderServerConfig:
    def parse(self, text: str) -> dict[str, str]:
        """The options under the top-level devpi-server: key (a tiny YAML subset)."""
        lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert lines[0] == "devpi-server:"
        options = {}
        for line in lines[1:]:
            assert line.startswith("  "), line
            key, sep, value = line.strip().partition(": ")
            assert sep, line
            options[key] = value
        return options

    def test_default_options(self):
        options = self.parse(img.render_server_config(img.BuildOptions()))
        # host and port are the entrypoint's: they depend on the front server.
        assert options == {
            "serverdir": "/data/server",
            "secretfile": "/data/secret",
            "restrict-modify": "root",
            "mirror-cache-expiry": "1800",
            "threads": "16",
            "connection-limit": "64",
            "request-timeout": "30",
            "keyfs-cache-size": "2000",
            "enable-core-metadata": "true",
        }

    def test_web_turns_the_indexer_off(self):
        text = img.render_server_config(img.BuildOptions(web=True))
        assert "  indexer-backend: null\n" in text
        assert self.parse(text)["indexer-backend"] == "null"

    @pytest.mark.parametrize(
        "version, announced", [("6.17.0", False), ("6.19.1", False), ("6.20.0", True), ("6.20.3", True), ("7.0", True)]
    )
    def test_core_metadata_only_where_devpi_knows_it(self, version, announced):
        # An older devpi-server would refuse or ignore an option it does not know.
        options = self.parse(img.render_server_config(img.BuildOptions(devpi_server_version=version)))
        assert ("enable-core-metadata" in options) is announced
        if announced:
            assert options["enable-core-metadata"] == "true"

    def test_no_indexer_option_without_web(self):
        assert "indexer-backend" not in img.render_server_config(img.BuildOptions())

    def test_is_yaml_under_devpi_server_key(self):
        data = yaml.safe_load(img.render_server_config(img.BuildOptions(web=True)))
        assert list(data) == ["devpi-server"]
        assert data["devpi-server"]["restrict-modify"] == "root"
        assert data["devpi-server"]["serverdir"] == "/data/server"
        # devpi-server reads the file with strictyaml, where `null` stays the string "null".
        assert "indexer-backend" in data["devpi-server"]


class TestFrontPage:
    def test_names_the_catalog_and_devpi(self):
        page = img.render_front_page(img.BuildOptions())
        assert f"devpi-server {img.DEVPI_SERVER_VERSION}" in page
        assert CATALOG["nju"].url in page
        assert "devpi-web" not in page

    def test_links_devpi_web_when_it_is_there(self):
        assert '<a href="/root/pypi">' in img.render_front_page(img.BuildOptions(web=True))


class TestBuildContext:
    def members(self, options: img.BuildOptions) -> dict[str, tarfile.TarInfo]:
        with tarfile.open(fileobj=img.build_context(options)) as tar:
            return {m.name: m for m in tar.getmembers()}

    def read(self, options: img.BuildOptions, name: str) -> bytes:
        with tarfile.open(fileobj=img.build_context(options)) as tar:
            return tar.extractfile(name).read()

    def test_default_context(self):
        members = self.members(img.BuildOptions())
        assert set(members) == CONTEXT | FRONT_CONTEXT
        assert members["entrypoint.sh"].mode == 0o755
        assert members["flush-cache.sh"].mode == 0o755

    def test_without_front_server_no_nginx_files(self):
        members = self.members(img.BuildOptions(front=False))
        assert set(members) == CONTEXT
        assert "nginx" not in img.render_dockerfile(img.BuildOptions(front=False))
        assert members["Dockerfile"].mode == 0o644

    def test_files_hold_the_rendered_text(self):
        options = img.BuildOptions(base_image="base:1", web=True)
        assert self.read(options, "Dockerfile").decode() == img.render_dockerfile(options)
        assert self.read(options, "devpi-server.yml").decode() == img.render_server_config(options)
        assert self.read(options, "entrypoint.sh").decode() == img.render_template("entrypoint.sh")
        assert self.read(options, "entrypoint.sh").startswith(b"#!/bin/bash\n")
        assert self.read(options, "nginx.conf").decode() == img.render_nginx_conf()

    def test_ca_bundle_and_wheels_are_added(self, ca_bundle, wheelhouse):
        (wheelhouse / "subdir").mkdir()
        options = img.BuildOptions(ca_bundle=ca_bundle, wheelhouse=wheelhouse)
        members = self.members(options)
        assert set(members) == CONTEXT | FRONT_CONTEXT | {
            "ca-bundle.pem",
            "wheelhouse/devpi_server-6.20.3-py3-none-any.whl",
            "wheelhouse/pluggy-1.5.0-py3-none-any.whl",
        }
        assert self.read(options, "ca-bundle.pem") == PEM
        assert self.read(options, "wheelhouse/pluggy-1.5.0-py3-none-any.whl") == b"wheel-2"


class TestCheckInputs:
    def test_good_inputs_pass(self, wheelhouse, ca_bundle):
        assert img.check_inputs(img.BuildOptions(wheelhouse=wheelhouse, ca_bundle=ca_bundle)) is None

    def test_missing_wheelhouse(self, tmp_path):
        with pytest.raises(BadInput, match="is not a directory") as info:
            img.check_inputs(img.BuildOptions(wheelhouse=tmp_path / "nope"))
        assert "pip download" in str(info.value)

    def test_wheelhouse_that_is_a_file(self, tmp_path):
        path = tmp_path / "file"
        path.write_text("x")
        with pytest.raises(BadInput, match="is not a directory"):
            img.check_inputs(img.BuildOptions(wheelhouse=path))

    def test_wheelhouse_without_devpi_server_wheel(self, tmp_path):
        (tmp_path / "pluggy-1.5.0-py3-none-any.whl").write_bytes(b"x")
        (tmp_path / "devpi_server-6.20.3.tar.gz").write_bytes(b"x")
        with pytest.raises(BadInput, match="holds no devpi_server wheel"):
            img.check_inputs(img.BuildOptions(wheelhouse=tmp_path))

    def test_missing_ca_bundle(self, tmp_path):
        with pytest.raises(BadInput, match="cannot read CA bundle"):
            img.check_inputs(img.BuildOptions(ca_bundle=tmp_path / "missing.pem"))

    def test_ca_bundle_that_is_a_directory(self, tmp_path):
        with pytest.raises(BadInput, match="cannot read CA bundle"):
            img.check_inputs(img.BuildOptions(ca_bundle=tmp_path))

    def test_non_pem_ca_bundle(self, tmp_path):
        path = tmp_path / "ca.der"
        path.write_bytes(b"\x30\x82\x01\x0a not pem")
        with pytest.raises(BadInput, match="holds no PEM certificate"):
            img.check_inputs(img.BuildOptions(ca_bundle=path))

    def test_read_ca_bundle_returns_the_bytes(self, ca_bundle):
        assert img.read_ca_bundle(ca_bundle) == PEM


class FakeAPI:
    """docker-py's low-level APIClient, as far as build_image uses it."""

    def __init__(self, chunks=(), error: Exception | None = None):
        self.chunks = list(chunks)
        self.error = error
        self.calls: list[dict] = []

    def build(self, **kwargs):
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        yield from self.chunks


class TestBuildImage:
    def build(self, api, options=None, environ=None):
        lines: list[str] = []
        result = img.build_image(api, options or img.BuildOptions(), "devpictl/test:1", environ or {}, lines.append)
        return result, lines

    def test_streams_lines_and_returns_the_image_id(self):
        api = FakeAPI(
            [
                {"stream": "Step 1/12 : FROM python:3.12-slim\n"},
                {"stream": "\n"},
                {"stream": " ---> abc123\n"},
                {"aux": {"ID": "sha256:feedface"}},
                {"stream": "Successfully tagged devpictl/test:1\n"},
            ]
        )
        image_id, lines = self.build(api)
        assert image_id == "sha256:feedface"
        assert lines == ["Step 1/12 : FROM python:3.12-slim", " ---> abc123", "Successfully tagged devpictl/test:1"]

    def test_returns_the_tag_without_an_aux_id(self):
        image_id, _ = self.build(FakeAPI([{"stream": "done\n"}]))
        assert image_id == "devpictl/test:1"

    def test_passes_context_tag_labels_and_proxy_args(self):
        api = FakeAPI([{"aux": {"ID": "sha256:1"}}])
        options = img.BuildOptions(labels={"team": "ci"})
        self.build(api, options, {"HTTPS_PROXY": "http://proxy:3128", "PATH": "/bin"})
        [call] = api.calls
        assert call["tag"] == "devpictl/test:1"
        assert call["custom_context"] is True
        assert call["decode"] is True
        assert call["labels"] == {
            "devpictl.devpi-server": img.DEVPI_SERVER_VERSION,
            "devpictl.devpi-web": "",
            "devpictl.front": "nginx",
            "devpictl.base-image": img.DEFAULT_BASE_IMAGE,
            "devpictl.pip-index": "default",
            "devpictl.apt-mirror": "",
            "team": "ci",
        }
        assert call["buildargs"] == {"HTTPS_PROXY": "http://proxy:3128"}
        with tarfile.open(fileobj=call["fileobj"]) as tar:
            assert "Dockerfile" in tar.getnames()

    def test_certificate_failure_gives_the_ca_hint(self):
        api = FakeAPI(
            [
                {"stream": "Step 5/12 : RUN python3 -m venv /opt/devpi && pip install ...\n"},
                {
                    "stream": "WARNING: Retrying ... SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed'))\n"
                },
                {"stream": "ERROR: No matching distribution found for devpi-server==6.20.3\n"},
                {"error": "The command '/bin/sh -c python3 -m venv' returned a non-zero code: 1", "errorDetail": {"code": 1}},
            ]
        )
        with pytest.raises(EngineError) as info:
            self.build(api)
        message = str(info.value)
        assert "--ca-bundle" in message
        assert "returned a non-zero code: 1" in message
        assert "\n" not in message

    def test_missing_distribution_hint(self):
        api = FakeAPI(
            [
                {"stream": "ERROR: No matching distribution found for devpi-server==6.20.3\n"},
                {"error": "The command returned a non-zero code: 1"},
            ]
        )
        with pytest.raises(EngineError, match="--wheelhouse"):
            self.build(api)

    @pytest.mark.parametrize(
        "engine_says",
        [
            "pull access denied for nosuch, repository does not exist",
            'Get "https://registry.invalid/v2/": dial tcp: lookup registry.invalid on 10.0.0.53:53: no such host',
        ],
    )
    def test_missing_base_image_hint(self, engine_says):
        api = FakeAPI([{"error": engine_says}])
        with pytest.raises(EngineError) as failed:
            self.build(api, img.BuildOptions(base_image="nosuch:1"))
        message = str(failed.value)
        assert "base image 'nosuch:1' is neither on the engine nor reachable in a registry" in message
        assert "pass --base-image" in message and "registry mirror" in message

    def test_apt_failure_hints_at_apt_mirror(self):
        api = FakeAPI(
            [
                {"stream": "Step 6/26 : RUN command -v nginx >/dev/null || (apt-get update ...\n"},
                {"stream": "W: Failed to fetch http://deb.invalid/debian/dists/bookworm/InRelease  Could not resolve 'deb.invalid'\n"},
                {"error": "The command '/bin/sh -c command -v nginx' returned a non-zero code: 100"},
            ]
        )
        with pytest.raises(EngineError, match="pass --apt-mirror with a Debian mirror you can reach, or --no-front"):
            self.build(api)

    def test_api_error_becomes_engine_error(self):
        api = FakeAPI(error=docker.errors.APIError("500 Server Error", explanation="no space left on device"))
        with pytest.raises(EngineError, match="image build failed: no space left on device"):
            self.build(api)

    def test_bad_inputs_are_refused_before_the_engine_is_asked(self, tmp_path):
        api = FakeAPI()
        with pytest.raises(BadInput):
            self.build(api, img.BuildOptions(wheelhouse=tmp_path / "nope"))
        assert api.calls == []


def test_proxy_build_args_pass_only_set_proxy_variables():
    environ = {
        "HTTP_PROXY": "http://proxy:3128",
        "https_proxy": "http://proxy:3129",
        "NO_PROXY": "localhost,127.0.0.1",
        "no_proxy": "",
        "PATH": "/usr/bin",
        "PIP_INDEX_URL": "https://example/simple",
        "DEVPICTL_ROOT_PASSWORD": "secret",
    }
    assert img.proxy_build_args(environ) == {
        "HTTP_PROXY": "http://proxy:3128",
        "https_proxy": "http://proxy:3129",
        "NO_PROXY": "localhost,127.0.0.1",
    }


def test_proxy_build_args_empty_environment():
    assert img.proxy_build_args({}) == {}


def test_a_failed_build_keeps_its_whole_log(isolation, tmp_path):
    chunks = [{"stream": f"line {n}\n"} for n in range(40)] + [{"error": "The command returned a non-zero code: 1"}]
    with pytest.raises(EngineError) as failed:
        img.build_image(FakeAPI(chunks), img.BuildOptions(), "devpictl/test:1", {}, lambda line: None)
    log = tmp_path / "devpictl-data" / "last-failed-build.log"
    assert str(failed.value).endswith(f"(full build log: {log})")
    assert log.read_text().splitlines() == [f"line {n}" for n in range(40)] + ["The command returned a non-zero code: 1"]


def test_the_install_stage_is_labelled_and_kept_for_the_next_build():
    # FakeAPI has no prune_images: pruning the stage would fail this build.
    api = FakeAPI([{"stream": "ok\n"}, {"aux": {"ID": "sha256:abc"}}])
    assert img.build_image(api, img.BuildOptions(), "devpictl/test:1", {}, lambda line: None) == "sha256:abc"
    install_stage = img.render_dockerfile(img.BuildOptions()).split("\nFROM ")[1]
    assert "LABEL devpictl.stage=install" in install_stage


class TestNginxConf:
    def test_files_from_disk_pages_cached_rest_to_devpi(self):
        conf = img.render_nginx_conf()
        assert f"include {layout.FRONT_ACCESS_CONF};" in conf  # the listen lines (tests/unit/test_entrypoint.py)
        assert f"server 127.0.0.1:{layout.DEVPI_PORT};" in conf
        assert "root /data/server/+files;" in conf and "try_files $uri @devpi;" in conf
        pages = location(conf, "location ~ ^/root/pypi/\\+simple/ {")
        # devpi marks pages no-store / Vary: User-Agent; without this nginx never caches them.
        assert "proxy_ignore_headers Cache-Control Expires Vary Set-Cookie;" in pages
        assert f"proxy_cache_valid 200 {img.MIRROR_CACHE_EXPIRY}s;" in pages
        assert "$devpictl_generation" in pages.split("proxy_cache_key", 1)[1].splitlines()[0]
        # only the mirror's pages are cached (the location above): private indexes change on upload.

    def test_core_metadata_is_kept_on_the_volume_for_good(self):
        conf = img.render_nginx_conf()
        metadata = location(conf, "location ~ ^/root/pypi/\\+f/.+\\.metadata$ {")
        assert "proxy_cache metadata;" in metadata
        # Immutable per file: no generation in the key, so an upstream switch keeps it; 200s only.
        assert "proxy_cache_key $uri;" in metadata
        assert "proxy_cache_valid 200 365d;" in metadata and "proxy_cache_valid any" not in metadata
        assert f"proxy_cache_path {layout.METADATA_CACHE} " in conf
        assert layout.METADATA_CACHE.startswith("/data/")
        # It comes before the file locations: nginx takes the first regex location that matches.
        assert conf.index("\\.metadata$ {") < conf.index("location ~ ^/root/pypi/\\+f/ {") < conf.index("location ~ ^/[^/]+/[^/]+/\\+f/ {")

    def test_one_fetch_for_concurrent_misses_of_a_mirror_file(self):
        conf = img.render_nginx_conf()
        assert "try_files $uri @fetch;" in location(conf, "location ~ ^/root/pypi/\\+f/ {")
        fetch = location(conf, "location @fetch {")
        assert "proxy_cache files;" in fetch and "proxy_cache_lock on;" in fetch
        # devpi streams a file it is fetching with X-Accel-Buffering: no, which would forbid caching.
        assert "X-Accel-Buffering" in fetch.split("proxy_ignore_headers", 1)[1].splitlines()[0]
        assert f"proxy_cache_lock_timeout {img.LOCK_TIMEOUT};" in fetch
        assert f"proxy_cache_lock_age {img.LOCK_AGE};" in fetch
        # A waiting client is passed on before an installer's read timeout (pip: 15 s) ends it.
        assert int(img.LOCK_TIMEOUT.removesuffix("s")) < 15
        # Private indexes keep going straight to devpi.
        assert "try_files $uri @devpi;" in location(conf, "location ~ ^/[^/]+/[^/]+/\\+f/ {")


def location(conf: str, opening: str) -> str:
    """The body of the nginx location block that starts with ``opening``."""
    assert opening in conf, opening
    return conf.split(opening, 1)[1].split("\n        }", 1)[0]
