"""Helpers for the CLI tests: run `skupper` in-process against a temporary home, and
sites whose nodes the CLI itself starts (`skupper system start`)."""

from __future__ import annotations

import io
import itertools
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from skupper_actors.api import API_VERSION, Namespace
from skupper_actors.cli.context import CliEnv
from skupper_actors.cli.errors import ExitCode
from skupper_actors.cli.main import main

# Below Linux's ephemeral range, away from tests/integration/harness.py's 20000-30000.
_ports = itertools.count(10000 + (os.getpid() % 450) * 20)


def free_port() -> int:
    for port in _ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    out: str
    err: str

    def check(self, code: int = ExitCode.OK) -> Result:
        assert self.code == code, (
            f"exit {self.code}, wanted {code}\nout: {self.out}\nerr: {self.err}"
        )
        return self


def short_home() -> Iterator[Path]:
    """A short temporary folder: unix socket paths (management, supervisord) stay < 108."""
    folder = Path(tempfile.mkdtemp(prefix="skc-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Cli:
    """`skupper` run in-process with its own streams and an environment pointing at `home`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.environ = {
            **os.environ,
            "SKUPPER_ACTORS_HOME": str(home),
            "HOME": str(home),
        }
        self.environ.pop("SKUPPER_DEBUG", None)

    def __call__(self, *args: str | int, stdin: str = "") -> Result:
        out, err = io.StringIO(), io.StringIO()
        env = CliEnv(stdout=out, stderr=err, stdin=io.StringIO(stdin), environ=self.environ)
        code = main([str(a) for a in args], env=env)
        return Result(code, out.getvalue(), err.getvalue())

    def namespace(self, name: str) -> Namespace:
        return Namespace.locate(name, environ=self.environ)


def document(kind: str, name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}}
    if spec is not None:
        doc["spec"] = spec
    return doc


def yaml_text(*documents: dict[str, Any]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


def declare_site(cli: Cli, ns: str, *, link_access: bool = False) -> int | None:
    """Create the site with the CLI; with link access, a RouterAccess on a free port."""
    args = ["-n", ns, "site", "create", ns, "--wait", "none"]
    if link_access:
        args.append("--enable-link-access")
    cli(*args).check()
    if not link_access:
        return None
    port = free_port()
    access = document(
        "RouterAccess",
        "skupper-router",
        {"roles": [{"name": "inter-router", "port": port}], "bindHost": "127.0.0.1"},
    )
    cli("-n", ns, "system", "apply", "-f", "-", stdin=yaml_text(access)).check()
    return port


def stop_all(cli: Cli, *namespaces: str) -> None:
    """Stop background nodes the tests started (never fails the test by itself)."""
    for ns in namespaces:
        cli("-n", ns, "system", "stop", "--timeout", "10")
