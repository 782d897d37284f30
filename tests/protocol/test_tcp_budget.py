"""The node-wide buffer budget: accounting, pausing once per episode, resuming below
the mark; and the sinks that count into it (EgressSink here, SocketSink with a real
socket pair)."""

from __future__ import annotations

import socket

import pytest

from skupper_actors.actors.tcp.tcpedge import SocketSink
from skupper_actors.protocol.forwarding import EgressSink
from skupper_actors.protocol.tcp import BufferBudget, forward_header


def test_counts_pauses_once_per_episode_and_resumes_below_the_mark():
    hits: list[tuple[int, int]] = []
    budget = BufferBudget(1000)
    budget.on_hit = lambda buffered, limit: hits.append((buffered, limit))
    assert budget.resume_below == 750
    resumed: list[str] = []
    budget.add(600)
    budget.pause("early", lambda: resumed.append("early"))  # under the mark: at once
    assert resumed == ["early"] and budget.paused == 0 and budget.hits == 0
    budget.add(500)
    assert budget.over and budget.peak == 1100
    budget.pause("a", lambda: resumed.append("a"))
    budget.pause("b", lambda: resumed.append("b"))
    budget.pause("a", lambda: resumed.append("a again"))  # one entry per key
    assert budget.paused == 2 and budget.hits == 1 and hits == [(1100, 1000)]
    budget.sub(300)  # 800: below the limit, not yet below the mark
    assert resumed == ["early"] and budget.paused == 2
    budget.forget("b")  # ended while paused: never resumed
    budget.sub(100)  # 700
    assert resumed == ["early", "a again"] and budget.paused == 0
    budget.add(400)  # a second episode
    budget.pause("c", lambda: resumed.append("c"))
    assert budget.hits == 2 and len(hits) == 2
    budget.sub(1100)
    assert budget.buffered == 0 and resumed[-1] == "c" and budget.peak == 1100


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        BufferBudget(0)


def _header():
    return forward_header("r/1/1", "r", "s", "svc")


def test_egress_sink_counts_until_attached_or_discarded():
    budget = BufferBudget(1 << 20)
    refusals: list[str] = []
    sink = EgressSink(_header(), lambda c, d: refusals.append(c), budget=budget)
    sink.data(b"x" * 100)
    sink.data(b"y" * 50)
    assert budget.buffered == 150

    class Target:
        def __init__(self) -> None:
            self.got: list[bytes] = []

        def data(self, chunk: bytes) -> None:
            self.got.append(chunk)

        def end(self, aborted: bool, length: int | None = None) -> None:
            pass

    target = Target()
    sink.attach(target)
    assert budget.buffered == 0 and b"".join(target.got) == b"x" * 100 + b"y" * 50

    dropped = EgressSink(_header(), lambda c, d: None, budget=budget)
    dropped.data(b"z" * 70)
    assert budget.buffered == 70
    dropped.discard()
    dropped.data(b"late")  # a stream nobody reads any more: nothing is kept
    assert budget.buffered == 0 and dropped.buffer == []


def test_socket_sink_counts_only_what_waits():
    budget = BufferBudget(1 << 20)
    left, right = socket.socketpair()
    try:
        left.setblocking(False)
        sink = SocketSink(budget)
        sink.direct = left.send  # what the socket takes at once is never counted
        sink.data(b"a" * 1000)
        assert budget.buffered == 0
        assert right.recv(2000) == b"a" * 1000
        big = b"b" * (8 << 20)  # more than the socket pair's buffers: the rest waits
        sink.data(big)
        waiting = sum(map(len, sink.chunks))
        assert 0 < waiting < len(big) and budget.buffered == waiting
        sink.data(b"c" * 10)  # behind the waiting bytes: counted whole
        assert budget.buffered == waiting + 10
        sink.discard()  # the connection ended
        assert budget.buffered == 0 and not sink.chunks
    finally:
        left.close()
        right.close()


def test_site_settings_read_with_defaults_for_bad_values():
    from skupper_actors.nsnode import buffer_budget_setting, window_setting

    problems: list[tuple[str, str, str]] = []
    tell = lambda key, value, why: problems.append((key, value, why))  # noqa: E731
    assert buffer_budget_setting({}, tell) == 64 << 20
    assert buffer_budget_setting({"tcp-buffer-budget": "1048576"}, tell) == 1 << 20
    assert buffer_budget_setting({"tcp-buffer-budget": "lots"}, tell) == 64 << 20
    assert buffer_budget_setting({"tcp-buffer-budget": "-1"}, tell) == 64 << 20
    assert window_setting({"tcp-window": "4194304"}, tell) == 4 << 20
    assert window_setting({"tcp-window": "1024"}, tell) == 1 << 20
    assert [key for key, _, _ in problems] == ["tcp-buffer-budget"] * 2 + ["tcp-window"]
