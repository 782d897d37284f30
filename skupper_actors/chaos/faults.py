"""Doing and undoing faults against the running topology, with a record of what happened."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.pool
import gevent.socket

from skupper_actors.kernel import KernelError
from skupper_actors.management import ManagementError

from .namespace_setup import TokenReplayAccepted
from .nodes import NodeFailed
from .proxy import ProxyStatistics, SetMode
from .proxy_modes import (
    Bandwidth,
    Blackhole,
    CorruptAfterTls,
    Cut,
    Flap,
    FlipBits,
    Latency,
    Pass,
    ProxyMode,
)
from .scenario import FaultKind
from .schedule import FaultEvent
from .topology import Topology

GARBAGE_WAIT = 8.0  # longer than a node's 5 s handshake timeout
_PROXY_COUNTERS = ("bytes_relayed", "bytes_dropped", "bits_flipped", "frames_corrupted", "accepted")


class FaultNotAvailable(RuntimeError):
    """A fault this build cannot inject."""


@dataclass(slots=True, kw_only=True)
class FaultRecord:
    """What became of one planned fault (run times in seconds)."""

    event: FaultEvent
    started: float | None = None
    ended: float | None = None
    status: str = "pending"  #: pending | active | done | failed
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.event.to_json(),
            "started": None if self.started is None else round(self.started, 4),
            "ended": None if self.ended is None else round(self.ended, 4),
            "status": self.status,
            "detail": self.detail,
        }


def proxy_mode(event: FaultEvent, seed: int) -> ProxyMode:
    kind = event.kind
    if kind is FaultKind.CUT:
        return Cut()
    if kind is FaultKind.BLACKHOLE:
        return Blackhole()
    if kind is FaultKind.LATENCY and event.latency is not None:
        return Latency(delay=event.latency)
    if kind is FaultKind.BANDWIDTH and event.rate is not None:
        return Bandwidth(rate=event.rate)
    if kind is FaultKind.FLAP and event.period is not None:
        return Flap(period=event.period)
    if kind is FaultKind.FLIP_BITS:
        return FlipBits(every=event.every or 64 * 1024, seed=seed * 31 + event.index)
    if kind is FaultKind.CORRUPT_AFTER_TLS:
        return CorruptAfterTls()
    raise ValueError(f"{kind.value} is not a link fault with its parameters")


class FaultInjector:
    """Applies and undoes each event; tells the monitor which node exits are intended."""

    def __init__(self, topology: Topology, now: Callable[[], float], seed: int) -> None:
        self.topology = topology
        self.now = now
        self.seed = seed
        self.records: dict[int, FaultRecord] = {}
        #: sites whose process is down on purpose right now
        self.intended_down: set[str] = set()
        self._flappers = gevent.pool.Group()
        self._proxy_before: dict[int, ProxyStatistics] = {}

    def record(self, event: FaultEvent) -> FaultRecord:
        return self.records.setdefault(event.index, FaultRecord(event=event))

    def begin(self, event: FaultEvent) -> None:
        record = self.record(event)
        record.started = self.now()
        record.status = "active"
        try:
            self._begin(event, record)
        except (NodeFailed, FaultNotAvailable, OSError, ManagementError, KernelError) as error:
            record.status = "failed"
            record.detail["error"] = str(error)
            record.ended = self.now()
            return
        if event.kind in (FaultKind.RESTART, FaultKind.GARBAGE, FaultKind.REPLAY_TOKEN) or (
            event.kind is FaultKind.KILL and event.duration is None
        ):
            record.status = "done"
            record.ended = self.now()

    def end(self, event: FaultEvent) -> None:
        record = self.record(event)
        if record.status != "active":
            return
        try:
            self._end(event, record)
        except (NodeFailed, OSError, ManagementError, KernelError) as error:
            record.status = "failed"
            record.detail["error"] = f"undoing: {error}"
        else:
            record.status = "done"
        record.ended = self.now()

    def end_all(self) -> None:
        """Undo whatever is still active at the end of the run (a killed node stays down)."""
        for record in list(self.records.values()):
            if record.status == "active" and record.event.kind is not FaultKind.KILL:
                self.end(record.event)
        self._flappers.kill()

    # -- doing --------------------------------------------------------------------------------
    def _begin(self, event: FaultEvent, record: FaultRecord) -> None:
        kind = event.kind
        if kind is FaultKind.REPLAY_TOKEN:
            declared = self.topology.declared
            if declared is None:
                raise FaultNotAvailable("replay_token needs 'setup: namespace'")
            try:
                record.detail["refused_with"] = declared.replay(event.target)
            except TokenReplayAccepted as error:
                record.detail["accepted"] = True
                raise FaultNotAvailable(str(error)) from None
            record.detail["node_alive"] = self.topology.nodes[event.target].alive
            return
        if event.on_link:
            self._link(event, record, down=True)
            return
        node = self.topology.nodes[event.target]
        if kind is FaultKind.KILL:
            self.intended_down.add(event.target)
            record.detail["pid"] = node.pid
            record.detail["exit_code"] = node.kill()
        elif kind is FaultKind.RESTART:
            self.intended_down.add(event.target)
            record.detail["exit_code"] = node.terminate(10.0)
            self._restart(event.target, record)
        elif kind is FaultKind.STOP:
            node.signal(signal.SIGSTOP)
            record.detail["pid"] = node.pid
        elif kind is FaultKind.GARBAGE:
            record.detail["attempts"] = self._garbage(event)
            record.detail["node_alive"] = node.alive
            try:
                record.detail["management_answered"] = node.status(2.0).router.id == node.site
            except (ManagementError, OSError) as error:
                record.detail["management_answered"] = False
                record.detail["management_error"] = str(error)

    def _end(self, event: FaultEvent, record: FaultRecord) -> None:
        if event.on_link:
            self._link(event, record, down=False)
        elif event.kind is FaultKind.KILL:
            self._restart(event.target, record)
        elif event.kind is FaultKind.STOP:
            self.topology.nodes[event.target].signal(signal.SIGCONT)

    def _restart(self, site: str, record: FaultRecord) -> None:
        node = self.topology.nodes[site]
        started = time.monotonic()
        node.start()
        self.intended_down.discard(site)
        node.wait_ready(30.0)
        record.detail["restart_ready_s"] = round(time.monotonic() - started, 3)

    def _link(self, event: FaultEvent, record: FaultRecord, *, down: bool) -> None:
        if self.topology.netns:
            link = self.topology.scenario.link(event.target)
            if event.kind is FaultKind.FLAP:
                if down:
                    period = event.period or 1.0
                    self._flappers.spawn(self._flap_netns, event, record, period)
                else:
                    self._flappers.kill()
                    self.topology.set_link(link, up=True)
                    record.detail.setdefault("transitions", []).append((round(self.now(), 4), "up"))
                return
            self.topology.set_link(link, up=not down)
            record.detail.setdefault("transitions", []).append(
                (round(self.now(), 4), "down" if down else "up")
            )
            return
        proxy = self.topology.proxy(event.target)
        if proxy is None:
            raise FaultNotAvailable(f"no proxy for link {event.target}")
        # the answer is the counters at the switch itself: the fault's share is exact
        stats: ProxyStatistics = proxy.ask(
            SetMode(mode=proxy_mode(event, self.seed) if down else Pass()), timeout=5
        )
        if down:
            self._proxy_before[event.index] = stats
        else:
            before = self._proxy_before.pop(event.index, None)
            if before is not None:
                record.detail["proxy"] = {
                    name: getattr(stats, name) - getattr(before, name) for name in _PROXY_COUNTERS
                }
                # how long the mode was really on, by the proxy's clock
                record.detail["proxy"]["seconds"] = round(stats.at - before.at, 4)

    def _flap_netns(self, event: FaultEvent, record: FaultRecord, period: float) -> None:
        link = self.topology.scenario.link(event.target)
        up = False
        while True:
            self.topology.set_link(link, up=up)
            record.detail.setdefault("transitions", []).append(
                (round(self.now(), 4), "up" if up else "down")
            )
            up = not up
            gevent.sleep(period)

    # -- garbage ------------------------------------------------------------------------------
    def _garbage(self, event: FaultEvent) -> list[dict[str, Any]]:
        rng = random.Random(f"garbage {self.seed} {event.index}")
        payloads = {
            "random-bytes": rng.randbytes(4096),
            "tls-record-of-noise": b"\x16\x03\x01\x02\x00" + rng.randbytes(512),
            "amqp-header-then-noise": b"AMQP\x00\x01\x00\x00" + rng.randbytes(1024),
            "amqp-huge-frame": b"AMQP\x00\x01\x00\x00\xff\xff\xff\xff\x02\x00\x00\x00",
            "sasl-header": b"AMQP\x03\x01\x00\x00",
            "http-request": b"GET / HTTP/1.1\r\nHost: chaos\r\n\r\n",
            "nothing-at-all": b"",
        }
        address = self.topology.inter_router_address(event.target)
        jobs = {name: gevent.spawn(_send_garbage, address, data) for name, data in payloads.items()}
        gevent.joinall(list(jobs.values()), timeout=GARBAGE_WAIT + 5)
        return [{"payload": name, "result": job.value or "no result"} for name, job in jobs.items()]


def _send_garbage(address: tuple[str, int], data: bytes) -> str:
    """Send ``data`` and say how the node reacted (it should close the connection)."""
    started = time.monotonic()
    try:
        sock = gevent.socket.create_connection(address, timeout=3)
    except OSError as error:
        return f"connect failed: {error}"
    try:
        sock.settimeout(GARBAGE_WAIT)
        if data:
            sock.sendall(data)
        while sock.recv(65536):
            pass
        return f"closed by the node after {time.monotonic() - started:.2f} s"
    except TimeoutError:
        return f"still open after {GARBAGE_WAIT:g} s"
    except OSError as error:
        return f"reset by the node after {time.monotonic() - started:.2f} s ({error})"
    finally:
        sock.close()
