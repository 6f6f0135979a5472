"""The mirror catalog and the parsing of a NAME|URL argument."""

from __future__ import annotations

import pytest

from devpictl.errors import BadInput, MalformedURL, UnknownMirror
from devpictl.mirrors import CATALOG, OFFICIAL, RETIRED, find_by_url, parse_index_url, resolve

# The simple-index URLs FACTS.md lists.
FACTS_URLS = {
    "nju": "https://mirror.nju.edu.cn/pypi/web/simple",
    "tuna": "https://pypi.tuna.tsinghua.edu.cn/simple",
    "bfsu": "https://mirrors.bfsu.edu.cn/pypi/web/simple",
    "aliyun": "https://mirrors.aliyun.com/pypi/simple",
    "tencent": "https://mirrors.cloud.tencent.com/pypi/simple",
    "huawei": "https://mirrors.huaweicloud.com/repository/pypi/simple",
    "sjtu": "https://mirror.sjtu.edu.cn/pypi/web/simple",
    "pku": "https://mirrors.pku.edu.cn/pypi/web/simple",
}
OFFICIAL_URL = "https://official.index.example/simple"


def test_catalog_names_are_exactly_pypi_and_the_facts_mirrors():
    assert set(CATALOG) == {"pypi", *FACTS_URLS}


@pytest.mark.parametrize("name, url", sorted(FACTS_URLS.items()))
def test_catalog_urls_match_facts(name, url):
    entry = CATALOG[name]
    assert entry.name == name
    assert entry.url == url
    assert not entry.is_official
    assert entry.display_url == url


def test_pypi_is_the_official_index_with_no_url():
    assert CATALOG["pypi"] is OFFICIAL
    assert OFFICIAL.url is None
    assert OFFICIAL.is_official
    assert OFFICIAL.sends_serial_header
    assert "official" in OFFICIAL.display_url


def test_no_chinese_mirror_claims_the_serial_header():
    # FACTS.md: Chinese mirrors don't send X-PyPI-Last-Serial.
    assert [u.name for u in CATALOG.values() if u.sends_serial_header] == ["pypi"]


@pytest.mark.parametrize("spec", ["tuna", "TUNA", "Tuna", "  tuna  "])
def test_resolve_name_is_case_insensitive(spec):
    assert resolve(spec) is CATALOG["tuna"]


def test_resolve_pypi_name():
    assert resolve("PyPI") is OFFICIAL


@pytest.mark.parametrize(
    "spec, url",
    [
        ("https://mirror.example/pypi/simple/", "https://mirror.example/pypi/simple"),
        ("https://mirror.example/pypi/simple", "https://mirror.example/pypi/simple"),
        ("http://10.0.0.5:8080/simple///", "http://10.0.0.5:8080/simple"),
        ("  https://mirror.example/simple/  ", "https://mirror.example/simple"),
    ],
)
def test_resolve_url_gives_custom_upstream_without_trailing_slash(spec, url):
    upstream = resolve(spec)
    assert upstream.name == "custom"
    assert upstream.url == url
    assert not upstream.is_official


@pytest.mark.parametrize("name, replacement", [("ustc", "bfsu"), ("douban", "tuna"), ("USTC", "bfsu")])
def test_retired_names_raise_naming_the_replacement(name, replacement):
    with pytest.raises(UnknownMirror) as info:
        resolve(name)
    message = str(info.value)
    assert name.lower() in message
    assert f"'{replacement}'" in message
    assert replacement in CATALOG


def test_retired_names_are_not_in_the_catalog():
    assert not set(RETIRED) & set(CATALOG)


def test_unknown_name_lists_the_catalog_names():
    with pytest.raises(UnknownMirror) as info:
        resolve("nosuch")
    message = str(info.value)
    assert "'nosuch'" in message
    for name in CATALOG:
        assert name in message


def test_unknown_mirror_is_a_usage_error():
    assert issubclass(UnknownMirror, BadInput)
    assert issubclass(MalformedURL, BadInput)
    assert UnknownMirror.exit_code == 2


@pytest.mark.parametrize(
    "spec",
    [
        "ftp://x",
        "http://",
        "https://host/simple?x=1",
        "https://host/simple#frag",
        "http://ho st/",
        "http://host:99999/simple",
        "file:///srv/simple",
        "mirror.example/simple",  # no scheme
    ],
)
def test_malformed_urls_raise(spec):
    with pytest.raises(MalformedURL) as info:
        resolve(spec)
    assert repr(spec) in str(info.value)


def test_out_of_range_port_message_names_the_range():
    with pytest.raises(MalformedURL, match="1 to 65535"):
        parse_index_url("http://host:99999/simple")


def test_parse_index_url_keeps_port_and_path():
    assert parse_index_url("http://host:3141/root/pypi/+simple/") == "http://host:3141/root/pypi/+simple"


class TestFindByUrl:
    def test_official_url_is_official(self):
        assert find_by_url(OFFICIAL_URL, OFFICIAL_URL) is OFFICIAL

    def test_official_url_with_trailing_slash_is_official(self):
        # devpi reports its default as https://official.index.example/simple/ (with the slash).
        assert find_by_url(OFFICIAL_URL + "/", OFFICIAL_URL) is OFFICIAL
        assert find_by_url(OFFICIAL_URL, OFFICIAL_URL + "/") is OFFICIAL

    def test_no_url_is_official(self):
        assert find_by_url(None, OFFICIAL_URL) is OFFICIAL

    @pytest.mark.parametrize("name", sorted(FACTS_URLS))
    def test_catalog_urls_map_to_their_entries(self, name):
        assert find_by_url(FACTS_URLS[name], OFFICIAL_URL) is CATALOG[name]
        assert find_by_url(FACTS_URLS[name] + "/", OFFICIAL_URL) is CATALOG[name]

    def test_other_url_is_custom(self):
        upstream = find_by_url("https://mirror.example/simple/", OFFICIAL_URL)
        assert upstream.name == "custom"
        assert upstream.url == "https://mirror.example/simple"
