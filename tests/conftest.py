"""Isolation for every test: its own data dir, home and pip config, no colour.

Under DEVPICTL_NO_SKIPS=1 (as .ci/run sets) a skipped test counts as failed, so a
green CI cannot hide a test that did not run.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("DEVPICTL_NO_SKIPS") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, and DEVPICTL_NO_SKIPS=1 makes a skip a failure: {reason}"


@pytest.fixture(autouse=True)
def isolation(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("DEVPICTL_DATA_DIR", str(tmp_path / "devpictl-data"))
    monkeypatch.setenv("DEVPICTL_CONFIG_DIR", str(tmp_path / "devpictl-config"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERM", "dumb")
    # The host's pip settings (find-links, config files) must not leak into tests.
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONFIG_FILE", "PIP_TRUSTED_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name in ("DEVPICTL_NAME", "DEVPICTL_PORT", "DEVPICTL_MIRROR", "DEVPICTL_IMAGE", "DEVPICTL_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return home
