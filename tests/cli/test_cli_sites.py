"""The CLI against real nodes (`skupper system start` runs `skupper-node run -n`)."""

from __future__ import annotations

import json
import socket
import socketserver
import tarfile
import threading
from collections.abc import Iterator

import pytest
import yaml
from clikit import Cli, declare_site, free_port, stop_all, wait_until

from skupper_actors.api import load_resource_text, read_status
from skupper_actors.cli.errors import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def two_sites(cli: Cli) -> Iterator[Cli]:
    """west (accepts links) and east, both running; east linked to west with a token."""
    declare_site(cli, "west", link_access=True)
    declare_site(cli, "east")
    try:
        for ns in ("west", "east"):
            cli("-n", ns, "system", "start").check()
        token = cli.home / "west.token"
        cli("-n", "west", "token", "issue", str(token), "--name", "to-west").check()
        redeemed = cli("-n", "east", "token", "redeem", str(token)).check()
        cli.redeem_err = redeemed.err  # type: ignore[attr-defined]
        yield cli
    finally:
        stop_all(cli, "west", "east")


def echo_through(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


def test_token_link_service_and_network_status(two_sites: Cli, echo_server: int) -> None:
    cli = two_sites
    token = cli.home / "west.token"
    assert oct(token.stat().st_mode & 0o777) == "0o600"
    (access_token,) = load_resource_text(token.read_text())
    assert access_token.kind == "AccessToken" and access_token.name == "to-west"

    link = json.loads(cli("-n", "east", "link", "status", "to-west", "-o", "json").check().out)
    assert link["status"]["status"] == "Ready"
    assert link["status"]["remoteSiteName"] == "west"

    web_port = free_port()
    cli("-n", "east", "connector", "create", "web", echo_server, "--wait", "configured").check()
    result = cli("-n", "west", "listener", "create", "web", web_port, "--wait", "ready")
    result.check()
    assert "Listener 'web' created and ready." in result.out
    assert echo_through(web_port, b"hello over the network") == b"hello over the network"

    data = json.loads(cli("-n", "west", "network", "status", "-o", "json").check().out)
    assert data["router"]["id"] == "west"
    sites = {site["router"]: site for site in data["sites"]}
    assert set(sites) == {"west", "east"}
    assert all(site["reachable"] for site in sites.values())
    assert {"peer": "west", "cost": 1} in sites["east"]["links"]
    assert data["services"] == [
        {"routingKey": "web", "listeners": ["west"], "connectors": ["east"]}
    ]
    assert yaml.safe_load(cli("-n", "west", "network", "status", "-o", "yaml").out) == data
    assert_camel_case(data)
    (west_link,) = data["links"]
    assert west_link["peer"] == "east" and "lastError" in west_link
    table = cli("-n", "west", "network", "status").check().out
    assert "west (this site)" in table and "east (cost 1)" in table
    assert "ROUTING KEY" in table and "web" in table


def assert_camel_case(data: object, where: str = "") -> None:
    """Skupper's key style at every depth: no `link_id`, no `inter_router_port`."""
    if isinstance(data, dict):
        for key, value in data.items():
            assert "_" not in key, f"{where}.{key} is not camelCase"
            assert_camel_case(value, f"{where}.{key}")
    elif isinstance(data, list):
        for item in data:
            assert_camel_case(item, where)


def test_the_redemption_says_what_it_waits_for_off_a_terminal(two_sites: Cli) -> None:
    # the grant's round trip takes seconds: one line per state, not silence, no spinner
    lines = [
        line for line in two_sites.redeem_err.splitlines()  # type: ignore[attr-defined]
        if line.startswith("Waiting for")
    ]
    assert lines, two_sites.redeem_err  # type: ignore[attr-defined]
    assert all(line.startswith("Waiting for AccessToken 'to-west' to be ready (") or
               line.startswith("Waiting for link 'to-west' (") for line in lines)
    assert len(lines) == len(set(lines))  # only changes
    assert "\r" not in two_sites.redeem_err  # type: ignore[attr-defined]


def test_wait_ready_times_out_with_the_conditions_message(two_sites: Cli) -> None:
    cli = two_sites
    result = cli("-n", "west", "listener", "create", "lonely", free_port(),
                 "--wait", "ready", "--timeout", "2")
    result.check(ExitCode.TIMEOUT)
    assert result.err.splitlines()[-1] == (
        "skupper: error: Listener 'lonely' not ready after 2s: No matching connectors: waiting "
        "for a connector with routing key 'lonely' at a site of the network"
    )
    result = cli("-n", "east", "connector", "create", "nobody", free_port(),
                 "--wait", "ready", "--timeout", "3")
    result.check(ExitCode.TIMEOUT)
    expected = (
        "No matching listeners: waiting for a listener with routing key 'nobody' at a site "
        "of the network"
    )
    assert result.err.splitlines()[-1] == (
        f"skupper: error: Connector 'nobody' not ready after 3s: {expected}"
    )
    assert f"Waiting for Connector 'nobody' to be ready ({expected})" in result.err
    # configured is enough when nothing serves the key yet
    result = cli("-n", "west", "listener", "create", "alone", free_port(), "--timeout", "10")
    result.check()
    assert "created and configured" in result.out


def test_update_waits_for_the_new_spec(two_sites: Cli) -> None:
    cli = two_sites
    first, second = free_port(), free_port()
    cli("-n", "west", "listener", "create", "db", first).check()
    cli("-n", "west", "listener", "update", "db", "--port", second).check()
    status = read_status(cli.namespace("west"), "Listener", "db")
    assert status is not None and status.spec.port == second  # type: ignore[union-attr]
    with socket.create_connection(("127.0.0.1", second), timeout=5):
        pass


def test_a_used_token_fails_with_the_servers_reason(two_sites: Cli) -> None:
    cli = two_sites
    result = cli("-n", "east", "token", "redeem", str(cli.home / "west.token"), "--name", "again")
    result.check(ExitCode.FAILED)
    assert result.err.startswith("skupper: error: AccessToken 'again': ")
    assert "404" in result.err
    assert not (cli.namespace("east").resources_dir / "AccessToken-again.yaml").exists()


def test_system_status_stop_start_keeps_the_identity(two_sites: Cli) -> None:
    cli = two_sites
    data = json.loads(cli("-n", "west", "system", "status", "-o", "json").check().out)
    assert data["manager"] == "none" and data["process"] == "RUNNING"
    assert data["node"]["router"] == "west"
    first_instance = data["node"]["instance"]
    cli("-n", "west", "system", "start").check()  # already running: says so
    cli("-n", "west", "system", "stop").check()
    cli("-n", "west", "system", "status").check(ExitCode.NODE_UNREACHABLE)
    cli("-n", "west", "system", "start").check()
    data = json.loads(cli("-n", "west", "system", "status", "-o", "json").check().out)
    assert data["node"]["router"] == "west" and data["node"]["instance"] != first_instance

    def link_up() -> bool:
        out = cli("-n", "east", "link", "status", "to-west", "-o", "json").out
        return bool(out) and json.loads(out)["status"]["status"] == "Ready"

    wait_until(link_up, 30, "east's link to west to come back")


def test_debug_dump_has_the_nodes_status(two_sites: Cli) -> None:
    cli = two_sites
    target = cli.home / "dump.tgz"
    cli("-n", "east", "debug", "dump", str(target)).check()
    with tarfile.open(target) as tar:
        names = tar.getnames()
        node = json.load(tar.extractfile("skupper-dump-east/node.json"))  # type: ignore[arg-type]
        for member in tar.getmembers():
            if member.isfile():
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                assert b"PRIVATE KEY" not in data, member.name
    assert node["status"]["router"]["id"] == "east"
    assert any(name.endswith("logs/node.log") for name in names)
    assert "skupper-dump-east/input/resources/AccessToken-to-west.yaml" in names
    assert not any(name.endswith(".key") for name in names)


def test_link_generate_applied_at_a_third_site(two_sites: Cli) -> None:
    cli = two_sites
    generated = cli("-n", "west", "link", "generate", "--name", "north-to-west", "--cost", 3)
    generated.check()
    documents = list(yaml.safe_load_all(generated.out))
    assert [d["kind"] for d in documents] == ["Link", "Secret"]
    assert documents[0]["spec"]["cost"] == 3
    as_json = json.loads(cli("-n", "west", "link", "generate", "-o", "json").check().out)
    assert [d["kind"] for d in as_json] == ["Link", "Secret"]
    declare_site(cli, "north")
    try:
        applied = cli("-n", "north", "system", "apply", "-f", "-", stdin=generated.out).check()
        assert applied.out.splitlines() == [
            "Secret 'north-to-west' applied.",
            "Link 'north-to-west' applied.",
        ]
        key = cli.namespace("north").certs_dir / "north-to-west" / "tls.key"
        assert oct(key.stat().st_mode & 0o777) == "0o600"
        cli("-n", "north", "system", "start").check()

        def link_ready() -> bool:
            out = cli("-n", "north", "link", "status", "north-to-west", "-o", "json").out
            # the Link is listed a moment before its first status is written
            status = json.loads(out).get("status") if out else None
            return bool(status) and status["status"] == "Ready"

        wait_until(link_ready, 30, "north's generated link to west")
        cli("-n", "north", "link", "update", "north-to-west", "--cost", 5).check()
        cli("-n", "north", "system", "delete", "-f", "-", stdin=generated.out).check()
        assert not key.exists()
    finally:
        stop_all(cli, "north")
