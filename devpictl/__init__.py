"""devpictl: stand up a devpi-server PyPI cache in Docker and point installers at it."""

__version__ = "0.1.0"
