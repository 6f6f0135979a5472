"""Installer configuration for a cache: one module per installer (registry.py lists them),
the TOML edits they share (toml.py), and the manifest that makes --undo exact (manifest.py).

Everything here takes the index URL as an argument; the CLI finds it.
"""
