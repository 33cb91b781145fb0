"""The layout of DESIGN.md §4: one import package, dependencies pointing one way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = re.compile(r"^\s*(?:from|import)\s+(server|tools|sandbox)(?:[.\s]|$)", re.M)
SOURCES = sorted(
    p
    for folder in ("server", "tools", "sandbox", "tests", "benchmarks", "interlock")
    for p in (ROOT / folder).rglob("*.py")
    if not p.is_symlink() and "interlock/server" not in str(p) and "__pycache__" not in p.parts
)


def test_no_module_imports_a_top_level_server_tools_or_sandbox() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}: {m.group(0).strip()}"
        for p in SOURCES
        for m in TOP_LEVEL.finditer(p.read_text())
    ]
    assert not offenders, "import interlock.server / .tools / .sandbox instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("sandbox", ("interlock.server", "interlock.tools", "mcp")),
        ("tools", ("interlock.server", "mcp")),
    ],
)
def test_dependencies_point_one_way(layer: str, forbidden: tuple[str, ...]) -> None:
    rx = re.compile(r"^\s*(?:from|import)\s+(" + "|".join(re.escape(f) for f in forbidden) + r")\b", re.M)
    offenders = [
        str(p.relative_to(ROOT)) for p in sorted((ROOT / layer).rglob("*.py")) if rx.search(p.read_text())
    ]
    assert not offenders, f"{layer}/ must not import {', '.join(forbidden)}: {offenders}"


def test_the_engine_imports_no_boto3_botocore_moto_or_docker_py() -> None:
    text = (ROOT / "server" / "pipeline.py").read_text()
    assert not re.search(r"^\s*(?:from|import)\s+(docker|moto|boto3|botocore)\b", text, re.M)


def test_every_package_in_the_tree_is_in_the_distribution() -> None:
    """A package folder missing from pyproject's list would be left out of the wheel (and pass
    every test run from the source tree)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"interlock"}
    for top in ("server", "tools", "sandbox"):
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(ROOT).parts
            found.add(".".join(("interlock", *rel)))
    assert found == listed, (
        f"in the tree, not listed: {sorted(found - listed)}; listed, not in the tree: {sorted(listed - found)}"
    )
