"""bench/: one helper for what every script needs (devpictl's environment, a static index tree)."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from pathlib import Path

from devpictl.simplepage import parse

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench():
    """bench/bench.py as the scripts import it (bench/ on sys.path, module ``bench``)."""
    spec = importlib.util.spec_from_file_location("bench_helpers", BENCH / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_helpers"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_only_bench_py_spells_out_devpictls_environment():
    spelled = [p.name for p in BENCH.glob("*.py") if p.name != "bench.py" and "DEVPICTL_" in p.read_text()]
    assert spelled == [], (
        f"{spelled} build devpictl's environment themselves: use bench.bench_env, bench.add_image_options or devpictl.layout"
    )


def test_one_make_tree():
    defined = [
        p.name
        for p in BENCH.glob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name in ("make_tree", "bench_env")
    ]
    assert sorted(defined) == ["bench.py", "bench.py"]


def test_make_tree_pages_link_their_files(tmp_path):
    bench = load_bench()
    names = bench.make_tree(tmp_path / "tree", ["bench-a", "bench-b"], ("1.0", "1.1"))
    assert names == ["bench-a", "bench-b"]
    page = tmp_path / "tree" / "simple" / "bench-a" / "index.html"
    links = parse(page.read_text(), "http://up:8080/simple/bench-a/")
    assert [link.filename for link in links] == ["bench_a-1.0-py3-none-any.whl", "bench_a-1.1-py3-none-any.whl"]
    for link in links:
        assert link.url == f"http://up:8080/files/{link.filename}"
        assert link.sha256 == hashlib.sha256((tmp_path / "tree" / "files" / link.filename).read_bytes()).hexdigest()
    assert oct((tmp_path / "tree" / "files").stat().st_mode & 0o777) == "0o755"


def test_image_options_come_from_flags_or_devpictls_environment(monkeypatch):
    import argparse

    bench = load_bench()
    monkeypatch.delenv("DEVPICTL_BASE_IMAGE", raising=False)
    monkeypatch.setenv("DEVPICTL_CA_BUNDLE", "/ca.pem")
    parser = argparse.ArgumentParser()
    bench.add_image_options(parser)
    args = parser.parse_args(["--base-image", "base:1"])
    assert (args.base_image, args.ca_bundle) == ("base:1", "/ca.pem")
    monkeypatch.setenv("DEVPICTL_BASE_IMAGE", "base:env")
    parser = argparse.ArgumentParser()
    bench.add_image_options(parser, base_image=True)
    assert parser.parse_args([]).base_image == "base:env"
    parser = argparse.ArgumentParser()
    bench.add_image_options(parser, base_image=False)
    assert not hasattr(parser.parse_args([]), "base_image")
