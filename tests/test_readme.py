"""The `sh` blocks of README.md and docs/cli.md, run as a newcomer pastes them.

The blocks are read from the documents themselves, so the docs cannot drift from what is
tested. A newcomer has run the quick start (the virtualenv exists) and then the README's
`. .venv/bin/activate`; here `.venv` is a link to the virtualenv running the tests, PATH
holds no `skupper` before activation, and HOME and SKUPPER_ACTORS_HOME are a fresh
folder. The blocks run in one bash with `set -e -o pipefail`, so any failing command
fails the test. The only change to the text: the fixed ports of the examples (55671,
8000, ...) become free ports, since other tests and developers share this host.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parent.parent
ACTIVATE = ". .venv/bin/activate"
FIXED_PORTS = (55671, 55672, 8000, 8080, 9090)


def sh_blocks(document: Path) -> list[str]:
    """The ```sh blocks of a Markdown file, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", document.read_text(), flags=re.M | re.S)


def newcomer_blocks(document: Path) -> list[str]:
    """What a newcomer runs after the quick start: every sh block but the set-up ones."""
    return [
        block for block in sh_blocks(document)
        if "python3 -m venv" not in block and block.strip() != ACTIVATE
    ]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def with_free_ports(script: str) -> str:
    mapping = dict(zip(FIXED_PORTS, free_ports(len(FIXED_PORTS)), strict=True))
    return re.sub(
        r"\b(" + "|".join(map(str, FIXED_PORTS)) + r")\b",
        lambda match: str(mapping[int(match.group(1))]),
        script,
    )


@pytest.fixture
def newcomer() -> Iterator[tuple[Path, dict[str, str]]]:
    """A folder with `.venv` (the running virtualenv) and an environment without skupper."""
    home = Path(tempfile.mkdtemp(prefix="skr-", dir="/tmp"))  # short: unix socket paths
    (home / ".venv").symlink_to(Path(sys.prefix))
    path = [
        folder for folder in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if folder and not (Path(folder) / "skupper").exists()
    ]
    env = {
        key: value for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "XDG_DATA_HOME", "SKUPPER_DEBUG", "PYTHONHOME")
    }
    env.update(HOME=str(home), SKUPPER_ACTORS_HOME=str(home / "skupper"),
               PATH=os.pathsep.join(path))
    try:
        yield home, env
    finally:
        stop_nodes(home / "skupper")
        shutil.rmtree(home, ignore_errors=True)


def stop_nodes(skupper_home: Path) -> None:
    """Whatever a failed run left: SIGTERM the pid in each site's lock file."""
    for lock in skupper_home.glob("namespaces/*/runtime/node.lock"):
        text = lock.read_text().strip()
        if text.isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(text), signal.SIGTERM)


def run(script: str, home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        ["bash", "-c", f"set -e -o pipefail\n{script}"],
        cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=200)
    finally:
        # the web server of the example, if the script stopped before its `kill %1`
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_the_readme_says_how_to_put_skupper_on_path() -> None:
    blocks = sh_blocks(ROOT / "README.md")
    setup = [b for b in blocks if "python3 -m venv" in b]
    assert len(setup) == 2  # the quick start's two commands, which .ci/run uses
    assert ACTIVATE in [b.strip() for b in blocks]
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup[1].strip() in ci


def test_a_bare_skupper_is_not_found_before_activation(
    newcomer: tuple[Path, dict[str, str]],
) -> None:
    home, env = newcomer
    result = run("skupper version", home, env)
    assert result.returncode == 127, result.stderr


@pytest.mark.parametrize("document", ["README.md", "docs/cli.md"])
def test_the_documented_commands_work_as_pasted(
    document: str, newcomer: tuple[Path, dict[str, str]]
) -> None:
    home, env = newcomer
    blocks = newcomer_blocks(ROOT / document)
    assert blocks, f"{document} has no sh example"
    script = "\n".join([ACTIVATE, *blocks])
    result = run(with_free_ports(script), home, env)
    assert result.returncode == 0, (
        f"{document}: exit {result.returncode}\n--- stdout\n{result.stdout}\n"
        f"--- stderr\n{result.stderr}"
    )
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text and "<class" not in text
    if "curl http://127.0.0.1:" in script:
        assert "Directory listing for /" in result.stdout  # the web server, through two routers
        assert (home / "west-dump.tar.gz").is_file()
        assert "Node of namespace 'east' stopped." in result.stdout
