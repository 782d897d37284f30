"""A real supervisord runs the nodes that `skupper system install` configured: kill -9 a
node, supervisord restarts it, and it comes back as the same site with its link."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import Cli, declare_site, wait_until

from skupper_actors.cli.errors import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SUPERVISORD_CONF = """\
[unix_http_server]
file={home}/sv/supervisor.sock

[supervisord]
logfile={home}/sv/supervisord.log
pidfile={home}/sv/supervisord.pid
childlogdir={home}/sv
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{home}/sv/supervisor.sock

[include]
files = {home}/conf.d/*.conf
"""


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed; install the project with '.[test]'")
    return str(path)


@pytest.fixture
def supervisord(cli: Cli) -> Iterator[Path]:
    """supervisord in the foreground with its own config; yields the config path."""
    home = cli.home
    (home / "sv").mkdir()
    (home / "conf.d").mkdir()
    config = home / "sv" / "supervisord.conf"
    config.write_text(SUPERVISORD_CONF.format(home=home))
    process = subprocess.Popen(
        [tool("supervisord"), "-c", str(config)],
        env=cli.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answering() -> bool:
        result = subprocess.run(
            [tool("supervisorctl"), "-c", str(config), "pid"],
            capture_output=True, text=True, check=False,
        )
        return result.stdout.strip().isdigit()

    try:
        wait_until(answering, 20, "supervisord to answer")
        yield config
    finally:
        for ns in ("west", "east"):
            cli("-n", ns, "system", "uninstall")
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def status(cli: Cli, ns: str) -> dict:
    result = cli("-n", ns, "system", "status", "-o", "json")
    return json.loads(result.out) if result.out else {}


def test_supervisord_restarts_a_killed_node_with_the_same_identity(
    cli: Cli, supervisord: Path
) -> None:
    declare_site(cli, "west", link_access=True)
    declare_site(cli, "east")
    for ns in ("west", "east"):
        result = cli("-n", ns, "system", "install", "--supervisor-conf-dir",
                     str(cli.home / "conf.d"), "--supervisorctl-config", str(supervisord))
        result.check()
        result = cli("-n", ns, "system", "start").check()
        assert "(supervisord, pid" in result.out
    token = cli.home / "west.token"
    cli("-n", "west", "token", "issue", str(token), "--name", "to-west").check()
    cli("-n", "east", "token", "redeem", str(token)).check()

    def link_ready() -> bool:
        out = cli("-n", "east", "link", "status", "to-west", "-o", "json").out
        return bool(out) and json.loads(out)["status"]["status"] == "Ready"

    wait_until(link_ready, 30, "east's link to west")
    before = status(cli, "west")
    assert before["manager"] == "supervisord" and before["process"] == "RUNNING"
    assert before["node"]["router"] == "west"

    os.kill(before["pid"], signal.SIGKILL)

    def restarted() -> dict | None:
        now = status(cli, "west")
        node = now.get("node")
        fresh = now.get("pid") not in (None, before["pid"]) and node is not None
        return now if fresh and node["instance"] != before["node"]["instance"] else None

    after = wait_until(restarted, 60, "supervisord to restart the west node")
    assert after["process"] == "RUNNING"
    assert after["node"]["router"] == "west"  # same site name: same identity
    wait_until(link_ready, 60, "east's link to west to form again")

    def west_sees_east() -> bool:
        out = cli("-n", "west", "network", "status", "-o", "json").out
        sites = {s["router"]: s for s in json.loads(out)["sites"]} if out else {}
        return "east" in sites and sites["east"]["reachable"]

    wait_until(west_sees_east, 30, "west to see east in the network again")
    log = cli.namespace("west").runtime_dir / "logs" / "node.log"
    assert log.is_file() and log.stat().st_size > 0

    cli("-n", "west", "system", "stop").check()
    assert status(cli, "west")["process"] == "STOPPED"


DEBIAN_CONFIG = Path("/etc/supervisor/supervisord.conf")
DEBIAN_SUPERVISORD = Path("/usr/bin/supervisord")


@pytest.fixture
def debian_supervisord(cli: Cli) -> Iterator[Path]:
    """Debian's supervisord, started from a copy of Debian's configuration layout.

    The copy moves /etc/supervisor, /var/run and /var/log/supervisor under the test's
    folder, so the test neither needs nor disturbs a system daemon.
    """
    if not (DEBIAN_CONFIG.is_file() and DEBIAN_SUPERVISORD.is_file()):
        pytest.skip("Debian's supervisor package is not installed (.ci/run installs it)")
    root = cli.home / "d"
    text = DEBIAN_CONFIG.read_text()
    for system_path in ("/etc/supervisor", "/var/run", "/var/log/supervisor"):
        assert system_path in text, f"{DEBIAN_CONFIG} changed its layout: no {system_path}"
        text = text.replace(system_path, f"{root}{system_path}")
    for folder in ("etc/supervisor/conf.d", "var/run", "var/log/supervisor"):
        (root / folder).mkdir(parents=True)
    config = root / "etc" / "supervisor" / "supervisord.conf"
    config.write_text(text)
    process = subprocess.Popen(  # as Debian's unit runs it: -n in the foreground
        [str(DEBIAN_SUPERVISORD), "-n", "-c", str(config)],
        env=cli.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def answering() -> bool:
        result = subprocess.run(
            [tool("supervisorctl"), "-c", str(config), "pid"],
            capture_output=True, text=True, check=False,
        )
        return result.stdout.strip().isdigit()

    try:
        wait_until(answering, 20, "Debian's supervisord to answer")
        yield config
    finally:
        cli("-n", "west", "system", "stop")
        cli("-n", "west", "system", "uninstall")
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_debian_supervisord_runs_the_node_and_never_beside_a_background_one(
    cli: Cli, debian_supervisord: Path
) -> None:
    config = debian_supervisord
    conf_d = config.parent / "conf.d"
    declare_site(cli, "west", link_access=True)
    cli("-n", "west", "system", "start").check()  # a background node first

    installed = cli("-n", "west", "system", "install", "--supervisorctl-config", str(config))
    installed.check()
    program = conf_d / "skupper-west.conf"
    assert program.is_file()  # in the folder Debian's [include] reads
    assert f"{config} (--supervisorctl-config)" in installed.out
    again = cli("-n", "west", "system", "install", "--supervisorctl-config", str(config))
    again.check()
    assert "already installed for supervisord" in again.out

    refused = cli("-n", "west", "system", "start")
    refused.check(ExitCode.ALREADY_EXISTS)
    assert "already runs as a background process" in refused.err
    assert "system stop" in refused.err

    cli("-n", "west", "system", "stop").check()
    by_hand = subprocess.Popen(
        [tool("skupper-node"), "run", "-n", "west"], env=cli.environ,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: cli("-n", "west", "system", "status").code == 0, 30, "the node")
        beside = cli("-n", "west", "system", "start")
        beside.check(ExitCode.ALREADY_EXISTS)
        assert f"(pid {by_hand.pid}, not supervisord's)" in beside.err
    finally:
        by_hand.terminate()
        by_hand.wait(20)
    started = cli("-n", "west", "system", "start").check()
    assert "(supervisord, pid" in started.out
    now = status(cli, "west")
    assert now["manager"] == "supervisord" and now["process"] == "RUNNING"
    holder = (cli.namespace("west").runtime_dir / "node.lock").read_text().strip()
    assert int(holder) == now["pid"]

    table = cli("-n", "west", "system", "status").check().out
    assert table.splitlines()[0].startswith("namespace")

    cli("-n", "west", "system", "stop").check()
    assert status(cli, "west")["process"] == "STOPPED"
    removed = cli("-n", "west", "system", "uninstall").check()
    assert not program.exists() and "did not confirm" not in removed.err
