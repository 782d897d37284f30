"""The project's habits, checked with every test run: layering, ruff, mypy --strict."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "skupper_actors"
IO_MODULES = {
    "gevent",
    "socket",
    "ssl",
    "zmq",
    "time",
    "select",
    "selectors",
    "threading",
    "logging",
}
# What each layer may not import (imports point down only).
FORBIDDEN = {
    "kernel": {"skupper_actors.protocol", "skupper_actors.actors", "skupper_actors.node"},
    "protocol": {"skupper_actors.actors", "skupper_actors.kernel", "skupper_actors.node"},
    # the controller's pure half: resources in, plans and statuses out (its file and
    # HTTP work is in security/, its actor in actors/)
    "controller": {
        "skupper_actors.actors",
        "skupper_actors.kernel",
        "skupper_actors.node",
        "skupper_actors.nsnode",
        "skupper_actors.sitetree",
        "http",
        "socket",
        "ssl",
        "urllib",
        "gevent",
    },
}


def imports_of(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(layer: str) -> list[pathlib.Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_downward_only(layer: str) -> None:
    bad = []
    for path in python_files(layer):
        for name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []


def test_protocol_is_sans_io() -> None:
    bad = []
    for path in python_files("protocol"):
        for name in imports_of(path):
            if name.split(".")[0] in IO_MODULES or name.startswith("structlog"):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []


def tool(name: str) -> str:
    found = shutil.which(name, path=str(pathlib.Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed; install the project with '.[dev]'")
    return found


@pytest.mark.timeout(120)
def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [tool("ruff"), "check", "skupper_actors", "tests", "tools"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_mypy_strict_on_kernel_and_protocol() -> None:
    result = subprocess.run(
        [tool("mypy"), "--strict", "skupper_actors/kernel", "skupper_actors/protocol"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
