"""The mirror catalog and the parsing of a NAME|URL argument."""

from __future__ import annotations

import pytest

from devpictl import mirrors, settings
from devpictl.errors import BadInput, MalformedURL, UnknownMirror
from devpictl.mirrors import (
    CATALOG,
    OFFICIAL,
    RETIRED,
    add_user_mirror,
    every_upstream,
    find_by_url,
    is_fastest,
    parse_index_url,
    remove_user_mirror,
    resolve,
    user_mirrors,
)

# The simple-index URLs docs/devpi-facts.md lists.
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
# Entries chsrc ships too, from its list and the mirrors' help pages; not reachable from the test machine.
UNCHECKED_URLS = {
    "hust": "https://mirrors.hust.edu.cn/pypi/web/simple",
    "lzu": "https://mirror.lzu.edu.cn/pypi/web/simple",
    "mirrorz": "https://mirrors.cernet.edu.cn/pypi/web/simple",
}
# Stands in for the official index's URL, which devpictl reads from devpi at run time.
OFFICIAL_URL = "https://index.invalid/simple"


def test_catalog_names_are_exactly_pypi_and_the_facts_mirrors():
    assert set(CATALOG) == {"pypi", *FACTS_URLS, *UNCHECKED_URLS}


def test_unchecked_entries_say_what_they_do():
    assert "redirects" in CATALOG["mirrorz"].note
    assert "forwards" in CATALOG["lzu"].note


@pytest.mark.parametrize("name, url", sorted({**FACTS_URLS, **UNCHECKED_URLS}.items()))
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
    # docs/devpi-facts.md: Chinese mirrors don't send X-PyPI-Last-Serial.
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
        # devpi reports its default with a trailing slash.
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


CORP = "https://pypi.corp.example/simple"


class TestUserEntries:
    def test_none_without_a_config_file(self):
        assert user_mirrors() == {}
        assert every_upstream() == list(CATALOG.values())

    def test_added_entry_resolves_after_the_catalog(self):
        added = add_user_mirror("corp", CORP + "/", "office")
        assert added == resolve("corp") == user_mirrors()["corp"]
        assert (added.url, added.note, added.user) == (CORP, "office", True)
        assert every_upstream() == [*CATALOG.values(), added]
        assert not any(u.user for u in CATALOG.values())

    def test_find_by_url_names_the_entry(self):
        added = add_user_mirror("corp", CORP)
        assert find_by_url(CORP + "/", OFFICIAL_URL) == added
        assert find_by_url(CATALOG["tuna"].url, OFFICIAL_URL) is CATALOG["tuna"]

    def test_find_by_url_survives_a_broken_config(self):
        settings.config_file().parent.mkdir(parents=True)
        settings.config_file().write_text("[[[")
        assert find_by_url(CORP, OFFICIAL_URL).name == "custom"
        with pytest.raises(BadInput, match="is not valid TOML"):
            user_mirrors()

    def test_a_catalog_name_never_reads_the_config(self):
        settings.config_file().parent.mkdir(parents=True)
        settings.config_file().write_text("[[[")
        assert resolve("nju") is CATALOG["nju"]

    def test_remove_returns_the_url(self):
        add_user_mirror("corp", CORP)
        assert remove_user_mirror("corp") == CORP
        assert user_mirrors() == {}

    @pytest.mark.parametrize("name", ["tuna", "ustc", "douban", "fastest", "custom"])
    def test_names_that_cannot_be_added(self, name):
        with pytest.raises(BadInput):
            add_user_mirror(name, CORP)
        assert not settings.config_file().exists()


class TestFastest:
    @pytest.mark.parametrize("spec", ["fastest", "FASTEST", " Fastest "])
    def test_is_fastest(self, spec):
        assert is_fastest(spec)

    @pytest.mark.parametrize("spec", [None, "", "tuna", "fast"])
    def test_is_not_fastest(self, spec):
        assert not is_fastest(spec)

    def test_resolve_refuses_fastest_outside_up_and_set_upstream(self):
        with pytest.raises(UnknownMirror, match="'fastest' works only with `up --mirror` and `set-upstream`"):
            resolve("fastest")


@pytest.mark.parametrize(
    "url",
    ["http://$http_x_target:8080/simple", "http://host:8080/a';x/simple", 'https://m.example/"/simple', "https://m.example/a\\b/simple"],
)
def test_a_url_that_would_change_nginxs_configuration_is_refused(url):
    with pytest.raises(MalformedURL, match="which no index URL needs"):
        mirrors.parse_index_url(url)


def test_credentials_may_hold_what_the_url_may_not():
    # They never reach nginx: devpictl keeps them out of mirror_url and a chain refuses them.
    assert mirrors.parse_index_url("https://ci:pa$$;w{o}rd@m.example/simple") == "https://ci:pa$$;w{o}rd@m.example/simple"
