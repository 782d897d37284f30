"""One node per site: a second node exits at once with its own code, `system start` does
not start one beside a running node, and an access point that cannot bind makes the
RouterAccess and the Site not Ready with the bind's error."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clikit import Cli, declare_site, document, stop_all, wait_until, yaml_text

from skupper_actors.cli.errors import ExitCode
from skupper_actors.node_cli import EXIT_ALREADY_RUNNING

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def node_command(ns: str) -> list[str]:
    return [str(Path(sys.executable).parent / "skupper-node"), "run", "-n", ns]


def test_a_second_node_of_a_site_exits_at_once_with_its_own_code(cli: Cli) -> None:
    declare_site(cli, "west", link_access=True)
    try:
        started = cli("-n", "west", "system", "start").check()
        pid = int(started.out.split("pid ")[1].split(")")[0])
        began = time.monotonic()
        second = subprocess.run(
            node_command("west"), env=cli.environ, capture_output=True, text=True, timeout=30,
            check=False,
        )
        assert second.returncode == EXIT_ALREADY_RUNNING == 3
        assert time.monotonic() - began < 10
        lock = cli.namespace("west").runtime_dir / "node.lock"
        assert second.stderr.splitlines()[-1] == (
            f"skupper-node: namespace west: another node already runs this site (pid {pid}; "
            f"lock {lock})"
        )
        assert '"event": "node_already_running"' in second.stderr
        # the first node still runs and answers; the table starts with its first row
        assert json.loads(cli("-n", "west", "system", "status", "-o", "json").out)["node"]
        table = cli("-n", "west", "system", "status").check().out
        assert table.splitlines()[0].split() == ["namespace", "west"]
    finally:
        stop_all(cli, "west")


def test_system_start_does_not_start_a_node_beside_one_run_by_hand(cli: Cli) -> None:
    declare_site(cli, "west")
    log = open(cli.home / "by-hand.log", "wb")  # noqa: SIM115 - closed below
    by_hand = subprocess.Popen(node_command("west"), env=cli.environ, stdout=log, stderr=log)
    try:
        wait_until(lambda: cli("-n", "west", "system", "status").code == 0, 30, "the node")
        result = cli("-n", "west", "system", "start")
        result.check(ExitCode.ALREADY_EXISTS)
        assert result.err == (
            f"skupper: error: another node already runs namespace 'west' (pid {by_hand.pid}, "
            "not started by 'system start'); stop it first\n"
        )
        assert by_hand.poll() is None
    finally:
        by_hand.terminate()
        by_hand.wait(20)
        log.close()


def test_an_access_point_that_cannot_bind_makes_the_site_not_ready(cli: Cli) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    cli("-n", "west", "site", "create", "west", "--enable-link-access", "--wait", "none").check()
    access = document(
        "RouterAccess", "skupper-router",
        {"roles": [{"name": "inter-router", "port": port}], "bindHost": "127.0.0.1"},
    )
    cli("-n", "west", "system", "apply", "-f", "-", stdin=yaml_text(access)).check()
    try:
        cli("-n", "west", "system", "start").check()

        def site_status() -> dict | None:
            out = cli("-n", "west", "site", "status", "west", "-o", "json").out
            data = json.loads(out) if out else {}
            return data if data.get("status", {}).get("status") == "Error" else None

        site = wait_until(site_status, 20, "the site to report the access point's failure")
        expected = f"RouterAccess skupper-router: 127.0.0.1:{port}: [Errno 98] Address already"
        assert site["status"]["message"].startswith(expected)
        resolved = [c for c in site["status"]["conditions"] if c["type"] == "Resolved"]
        assert resolved[0]["status"] == "False" and resolved[0]["reason"] == "Error"
        out = cli("-n", "west", "site", "status").out
        assert "Error" in out and f"127.0.0.1:{port}" in out
        access_status = json.loads(
            cli("-n", "west", "system", "status", "-o", "json").out or "{}"
        )
        assert access_status["node"] is not None  # the node itself keeps running
        reported = cli.namespace("west").status_dir / "RouterAccess-skupper-router.yaml"
        text = reported.read_text()
        assert "status: Error" in text and f"127.0.0.1:{port}: [Errno 98]" in text
        # a Listener whose port is taken: its resource says so, with the address
        listener = cli("-n", "west", "listener", "create", "web", port)
        listener.check(ExitCode.FAILED)
        assert listener.err == (
            f"skupper: error: Listener 'web': 127.0.0.1:{port}: [Errno 98] Address already in "
            "use\n"
        )
    finally:
        taken.close()
        stop_all(cli, "west")

