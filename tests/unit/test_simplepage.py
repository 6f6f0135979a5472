"""The one parser of PEP 503 simple pages: which links are distribution files, and what their links say."""

from __future__ import annotations

import pytest
from packaging.version import Version

from devpictl.simplepage import Link, file_name, name_and_version, parse

PAGE_URL = "https://mirror.example/simple/six/"


def test_relative_links_resolve_against_the_page_and_keep_their_hash():
    html = '<a href="../../packages/six-1.16.0-py2.py3-none-any.whl#sha256=ABC123">six</a>'
    assert parse(html, PAGE_URL) == [
        Link(
            url="https://mirror.example/packages/six-1.16.0-py2.py3-none-any.whl",
            filename="six-1.16.0-py2.py3-none-any.whl",
            sha256="abc123",
            yanked=False,
        )
    ]


def test_yanked_and_core_metadata_are_read_from_the_attributes():
    html = (
        '<a href="/f/six-1.16.0.tar.gz#md5=00" data-yanked="">six</a>\n'
        '<a href="/f/six-1.16.0-py2.py3-none-any.whl" data-core-metadata="sha256=ff">six</a>\n'
    )
    sdist, wheel = parse(html, PAGE_URL)
    assert (sdist.yanked, sdist.sha256, sdist.core_metadata) == (True, None, False)
    assert (wheel.yanked, wheel.metadata, wheel.core_metadata) == (False, "sha256=ff", True)


def test_links_to_anything_but_distribution_files_are_left_out():
    # A captive portal or a login page: a 200 with links, none of them to a file.
    html = (
        '<a href="/login">Sign in</a><a href="https://portal.example/">terms</a><a>no href</a>'
        '<a href="ftp://files.example/six-1.16.0.tar.gz">ftp</a><a href="/f/notes.txt">notes</a>'
        '<a href="/f/six-1.16.0.zip">zip</a>'
    )
    assert [link.filename for link in parse(html, PAGE_URL)] == ["six-1.16.0.zip"]


def test_page_order_is_kept():
    names = ["b-2.0.tar.gz", "a-1.0-py3-none-any.whl", "c-0.1.tar.gz"]
    assert [link.filename for link in parse("".join(f'<a href="/f/{n}">x</a>' for n in names), PAGE_URL)] == names


def test_file_name_is_the_unquoted_last_path_segment():
    assert file_name("https://files.example/p/my%2Bpkg-1.0.tar.gz?x=1") == "my+pkg-1.0.tar.gz"


@pytest.mark.parametrize(
    "filename, expected",
    [
        ("Six-1.16.0-py2.py3-none-any.whl", ("six", Version("1.16.0"))),
        ("zope.interface-6.0.tar.gz", ("zope-interface", Version("6.0"))),
        ("pip-24.0rc1.tar.gz", ("pip", Version("24.0rc1"))),
        ("not-a-wheel.whl", None),
        ("six-notaversion.tar.gz", None),
        ("README.txt", None),
    ],
)
def test_name_and_version(filename, expected):
    assert name_and_version(filename) == expected
