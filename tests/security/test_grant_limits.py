"""The grant server's limits as data: settings, the connection gate, the request budget."""

from __future__ import annotations

import io

import pytest

from skupper_actors.actors.control.grantconn import CappedReader, ConnectionGate, GrantLimits

pytestmark = pytest.mark.timeout(30)


def test_limits_come_from_site_settings_and_bad_values_keep_the_default() -> None:
    told: list[tuple[str, str, str]] = []
    limits = GrantLimits.from_settings(
        {
            "grant-server-max-connections": "500",
            "grant-server-idle-timeout": "2.5",
            "grant-server-handshake-timeout": "soon",
            "grant-server-max-request-bytes": "0",
            "grant-server-max-connections-per-peer": "1.5",
            "grant-server-port": "9999",  # not a limit: left alone
        },
        lambda *problem: told.append(problem),
    )
    assert limits == GrantLimits(max_connections=500, idle_timeout=2.5)
    assert told == [
        ("grant-server-max-connections-per-peer", "1.5", "is not a whole number"),
        ("grant-server-handshake-timeout", "soon", "is not a number"),
        ("grant-server-max-request-bytes", "0", "is not greater than 0"),
    ]
    assert "grant-server-request-timeout" in limits.setting_names()


def test_the_gate_caps_connections_in_all_and_per_peer() -> None:
    gate = ConnectionGate(GrantLimits(max_connections=3, max_connections_per_peer=2))
    assert [gate.admit("10.0.0.1") for _ in range(3)] == [None, None, "max_connections_per_peer"]
    assert gate.admit("10.0.0.2") is None
    assert gate.admit("10.0.0.3") == "max_connections"
    gate.release("10.0.0.1")
    assert gate.admit("10.0.0.3") is None
    for peer in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        gate.release(peer)
    assert (gate.total, gate.per_peer) == (0, {})


def test_the_reader_stops_at_its_budget() -> None:
    reader = CappedReader(io.BytesIO(b"POST /x HTTP/1.1\r\n" + b"h" * 100), budget=30)
    assert reader.readline(8192) == b"POST /x HTTP/1.1\r\n"
    assert not reader.exceeded
    assert reader.read(100) == b"h" * 12
    assert reader.exceeded
    assert reader.read(1) == b"" and reader.readline() == b""


def test_an_accept_pause_grows_and_is_logged_once_per_episode() -> None:
    import errno

    import structlog
    from structlog.testing import capture_logs

    from skupper_actors.actors.acceptpause import AcceptPause, is_resource_shortage

    emfile = OSError(errno.EMFILE, "Too many open files")
    assert is_resource_shortage(emfile)
    assert not is_resource_shortage(OSError(errno.EBADF, "Bad file descriptor"))
    with capture_logs() as logs:
        pause = AcceptPause(structlog.get_logger(), "grant-server", initial=0.05, maximum=0.3)
        waits = [pause.failed(emfile) for _ in range(5)]
        pause.succeeded()
        pause.succeeded()
        pause.failed(emfile)
    assert waits == [0.05, 0.1, 0.2, 0.3, 0.3]
    assert [(e["event"], e.get("failed_attempts")) for e in logs] == [
        ("accept_paused", None),
        ("accept_resumed", 5),
        ("accept_paused", None),
    ]
    assert logs[0]["listener"] == "grant-server" and logs[0]["errno"] == errno.EMFILE
    assert pause.episodes == 2
