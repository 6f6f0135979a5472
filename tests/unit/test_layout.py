"""The image's layout (devpictl/layout.py): named once, given to every template, and the build context is what the Dockerfile copies."""

from __future__ import annotations

import re
import tarfile

import pytest

from devpictl import image as img
from devpictl import layout

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def layout_names() -> dict[str, str]:
    """{the text a template must not spell out: the layout's name for it}: every port, path, switch and file name."""
    names: dict[str, str] = {}
    for name, value in vars(layout).items():
        if not name.isupper():
            continue
        if isinstance(value, layout.ImageFile):
            names[value.path.rstrip("/")] = f"{name}.path"
        elif isinstance(value, tuple):
            names.update({file.path: f"{name}[{i}].path" for i, file in enumerate(value)})
        elif isinstance(value, str | int):
            names[str(value)] = name
    return names


def spelled_out(text: str, value: str) -> bool:
    """Whether ``value`` stands in ``text`` as a whole word, path or number (followed by nothing of a longer name)."""
    return re.search(rf"(?<![\w.-]){re.escape(value)}(?![\w.-])", text) is not None


@pytest.mark.parametrize("template", sorted(p.name for p in img.template_dir().iterdir()))
def test_no_template_spells_out_a_layout_name(template):
    text = (img.template_dir() / template).read_text()
    found = {name: value for value, name in layout_names().items() if spelled_out(text, value)}
    assert found == {}, f"{template} spells out {found}: use the layout's variables ({{{{ name in lower case }}}})"


def test_the_check_sees_a_name_spelled_out():
    assert spelled_out("root /data/server/+files;", layout.FILES_DIR)
    assert spelled_out('[ "${DEVPICTL_FRONT:-1}" = 1 ]', layout.ENV_FRONT)
    assert spelled_out("listen 3141 reuseport;", str(layout.CONTAINER_PORT))
    assert spelled_out('cat "$RUNDIR/root-password"', layout.ROOT_PASSWORD)
    assert not spelled_out("listen 31410;", str(layout.CONTAINER_PORT))
    assert not spelled_out("DEVPICTL_FRONTS=1", layout.ENV_FRONT)


def test_every_name_reaches_the_templates_in_lower_case():
    values = layout.values()
    assert values["run_dir"] == layout.RUN_DIR
    assert values["env_front"] == layout.ENV_FRONT
    assert values["server_files"] == layout.SERVER_FILES
    assert all(name.islower() for name in values)


def test_a_template_value_may_not_hide_a_layout_name():
    with pytest.raises(ValueError, match="run_dir would hide"):
        img.render_template("flush-cache.sh", run_dir="/elsewhere")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"front": False},
        {"apt_mirror": "http://deb.example/debian"},
        {"ca_bundle": True, "wheelhouse": True},
    ],
)
def test_the_dockerfile_copies_each_file_of_the_build_context(options, tmp_path):
    if options.pop("ca_bundle", False):
        options["ca_bundle"] = tmp_path / "ca.pem"
        options["ca_bundle"].write_bytes(PEM)
    if options.pop("wheelhouse", False):
        options["wheelhouse"] = tmp_path / "wheels"
        options["wheelhouse"].mkdir()
        (options["wheelhouse"] / "devpi_server-6.20.3-py3-none-any.whl").write_bytes(b"wheel")
    build = img.BuildOptions(**options)
    with tarfile.open(fileobj=img.build_context(build)) as tar:
        context = {name.partition("/")[0] + ("/" if "/" in name else "") for name in tar.getnames()} - {"Dockerfile"}
    copies = re.findall(r"^COPY (\S+) (\S+)$", img.render_dockerfile(build), re.M)
    copied = {source for source, _ in copies if not source.startswith("--from")}
    assert copied == context
    assert all(path.startswith("/") for _, path in copies)
