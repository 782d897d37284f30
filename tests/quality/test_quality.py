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
# The running router: its actors and the modules that build a site's tree out of them.
RUNTIME = {
    "skupper_actors.actors",
    "skupper_actors.node",
    "skupper_actors.nsnode",
    "skupper_actors.node_cli",
}
# What each layer may not import (imports point down only). The resource boundary
# (api/), the controller's plans and the security code are used by the node, never the
# other way round.
FORBIDDEN = {
    "kernel": {"skupper_actors.protocol", "skupper_actors.actors", "skupper_actors.node"},
    "protocol": {"skupper_actors.actors", "skupper_actors.kernel", "skupper_actors.node"},
    "api": RUNTIME,
    "security": RUNTIME,
    # the controller's pure half: resources in, plans and statuses out (its file and
    # HTTP work is in security/, its actor in actors/)
    "controller": RUNTIME
    | {
        "skupper_actors.kernel",
        "skupper_actors.sitetree",
        "http",
        "socket",
        "ssl",
        "urllib",
        "gevent",
    },
    # the observer reads vanflow and a node's management socket; never the node itself
    "observer": RUNTIME | {"skupper_actors.kernel", "skupper_actors.sitetree"},
}


def imports_of(path: pathlib.Path, root: pathlib.Path = ROOT) -> set[str]:
    """Every module `path` imports, relative imports resolved, `from a import b` as a.b too."""
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_imports_of_resolves_relative_and_from_imports(tmp_path: pathlib.Path) -> None:
    """The layering check sees `from .. import actors` and `from skupper_actors import node`."""
    probe = tmp_path / "skupper_actors" / "api" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from .. import actors\nfrom skupper_actors import node\n")
    names = imports_of(probe, root=tmp_path)
    assert {"skupper_actors.actors", "skupper_actors.node"} <= names


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


@pytest.mark.timeout(300)
def test_mypy_refuses_a_message_an_actor_ref_does_not_take(tmp_path: pathlib.Path) -> None:
    """A look-up by a typed `ActorName` gives an `ActorRef[M]`: `tell` of another type fails."""
    snippet = tmp_path / "typed_refs.py"
    snippet.write_text(
        "from skupper_actors.kernel import ActorName, Registry\n"
        "class Ping: ...\n"
        "class Other: ...\n"
        'PINGER: ActorName[Ping] = ActorName("pinger")\n'
        "def use(registry: Registry) -> None:\n"
        "    ref = registry.lookup(PINGER)\n"
        "    if ref is not None:\n"
        "        ref.tell(Ping())\n"
        "        ref.tell(Other())\n"
    )
    result = subprocess.run(
        [tool("mypy"), "--strict", "--no-incremental", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert "typed_refs.py:9:" in errors[0] and "[arg-type]" in errors[0], errors
