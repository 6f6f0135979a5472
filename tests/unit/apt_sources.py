"""Apt source files as Debian and Ubuntu write them, for the tests of the scripts that read or rewrite them."""

from __future__ import annotations

# Debian 12's stock /etc/apt/sources.list.d/debian.sources (deb822), hosts replaced.
DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://deb822.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb822.example/debian-security
Suites: bookworm-security
Components: main
"""

# A one-line sources.list: security first, a commented line, options in brackets, an Ubuntu line.
ONE_LINE = """\
deb http://classic.example/debian-security bookworm-security main
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian.gpg] http://classic.example/debian bookworm main
deb https://other.example/ubuntu noble main
"""
