"""The fault proxy: an actor that relays one link between two nodes and injects link faults.

The dialling node connects to the proxy's port; the proxy connects on to the target
node. Each connection pair has a reader and a writer greenlet per direction with a
bounded queue between them, so latency delays chunks without cutting throughput and a
bandwidth cap or a slow peer pushes back through TCP. The actor owns the listening socket
and the pairs; mode changes arrive as messages, so all state has one writer. A greenlet
that fails with anything but a socket error crashes the actor (its supervisor restarts
it on the same port).
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.queue
import gevent.socket
from gevent import Greenlet

from skupper_actors.kernel import Actor, ExitReason

from .proxy_modes import (
    AmqpPayloadCorrupter,
    Bandwidth,
    BitFlipper,
    Blackhole,
    CorruptAfterTls,
    Cut,
    Flap,
    FlipBits,
    Latency,
    Pass,
    ProxyMode,
    describe,
)

READ_SIZE = 64 * 1024
QUEUE_CHUNKS = 64  # at most ~4 MiB held per direction


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMode:
    """Switch the proxy to ``mode`` (Pass() restores the link).

    Asked, it answers the ``ProxyStatistics`` as they stood at the switch, so a fault's
    counters cover exactly the time its mode was set (no bytes relayed between a separate
    statistics ask and the switch)."""

    mode: ProxyMode


@dataclass(frozen=True, slots=True, kw_only=True)
class GetProxyStatistics:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class _FlapToggled:
    generation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _PumpCrashed:
    error: BaseException


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyStatistics:
    """A snapshot of one proxy's counters; times are the proxy clock's (monotonic)."""

    name: str
    port: int
    mode: str
    accepted: int
    open_pairs: int
    bytes_relayed: int
    bytes_dropped: int
    bits_flipped: int
    frames_corrupted: int
    #: when the snapshot was taken
    at: float = 0.0
    #: (time, "down" | "up") each time the link stopped or started carrying connections
    transitions: tuple[tuple[float, str], ...] = field(default_factory=tuple)


class _Direction:
    """One direction of one pair: source socket -> queue -> sink socket."""

    __slots__ = ("corrupter", "ended", "flipper", "queue", "reader", "writer")

    def __init__(self) -> None:
        self.queue: gevent.queue.Queue[tuple[float, bytes] | None] = gevent.queue.Queue(
            QUEUE_CHUNKS
        )
        self.flipper: BitFlipper | None = None
        self.corrupter: AmqpPayloadCorrupter | None = None
        self.reader: Greenlet[Any, Any] | None = None
        self.writer: Greenlet[Any, Any] | None = None
        self.ended = False


class _Bucket:
    """A token bucket shared by every connection of one link direction (the cap is per link)."""

    __slots__ = ("_last", "_tokens")

    def __init__(self) -> None:
        self._tokens = 0.0
        self._last: float | None = None

    def take(self, count: int, rate: int, now: float) -> float:
        """Take ``count`` tokens and return 0, or return how long to wait for them."""
        elapsed = 0.0 if self._last is None else now - self._last
        self._last = now
        self._tokens = min(rate / 10, self._tokens + elapsed * rate)
        if self._tokens < count:
            return (count - self._tokens) / rate
        self._tokens -= count
        return 0.0


class _Pair:
    __slots__ = ("client", "directions", "mode_at_start", "upstream")

    def __init__(self, client: Any, upstream: Any, mode: ProxyMode) -> None:
        self.client = client
        self.upstream = upstream
        self.mode_at_start = mode
        self.directions = (_Direction(), _Direction())


def _abort(sock: Any) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy(Actor):
    """Relays ``listen_port`` to ``target``; faults are ``SetMode`` messages."""

    def __init__(
        self,
        *,
        link: str,
        listen_host: str,
        listen_port: int,
        target_host: str,
        target_port: int,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.link = link
        self.listen = (listen_host, listen_port)
        self.target = (target_host, target_port)
        self.seed = seed
        self.mode: ProxyMode = Pass()
        self._server: Any = None
        self._acceptor: Greenlet[Any, Any] | None = None
        self._pairs: set[_Pair] = set()
        self._flap_down = False
        self._flap_generation = 0
        self._transitions: list[tuple[float, str]] = []
        self._counters = {"accepted": 0, "relayed": 0, "dropped": 0, "flipped": 0, "frames": 0}
        self._rng = random.Random(seed)
        self._buckets = (_Bucket(), _Bucket())

    # -- actor ---------------------------------------------------------------------------
    def on_start(self) -> None:
        self._open()

    def on_receive(self, message: object) -> Any:
        if isinstance(message, SetMode):
            at_switch = self._statistics()
            self._set_mode(message.mode)
            return at_switch
        if isinstance(message, GetProxyStatistics):
            return self._statistics()
        if isinstance(message, _FlapToggled):
            if message.generation == self._flap_generation and isinstance(self.mode, Flap):
                self._flap(not self._flap_down)
            return None
        if isinstance(message, _PumpCrashed):
            raise message.error
        return super().on_receive(message)

    def on_stop(self, reason: ExitReason) -> None:
        self._close_listener()
        for pair in list(self._pairs):
            self._drop(pair)

    # -- modes ---------------------------------------------------------------------------
    def _set_mode(self, mode: ProxyMode) -> None:
        previous, self.mode = self.mode, mode
        self._flap_generation += 1
        self.log.info("proxy_mode_set", link=self.link, mode=describe(mode))
        refusing = isinstance(mode, Cut)
        if refusing or isinstance(previous, Blackhole):
            # bytes were lost mid-connection: no pair can carry on after a blackhole
            for pair in list(self._pairs):
                self._drop(pair)
        if refusing:
            self._close_listener()
            self._mark("down")
        elif isinstance(mode, Flap):
            self._flap(True)
        else:
            if self._server is None:
                self._open()
            if isinstance(mode, Blackhole):
                self._mark("down")
            elif isinstance(previous, Cut | Flap | Blackhole):
                self._mark("up")
        for pair in self._pairs:
            for direction in pair.directions:
                direction.flipper = None
                direction.corrupter = None

    def _flap(self, down: bool) -> None:
        self._flap_down = down
        if down:
            for pair in list(self._pairs):
                self._drop(pair)
            self._close_listener()
            self._mark("down")
        else:
            self._open()
            self._mark("up")
        assert isinstance(self.mode, Flap)
        self.send_after(self.mode.period, _FlapToggled(generation=self._flap_generation))

    def _mark(self, state: str) -> None:
        if not self._transitions or self._transitions[-1][1] != state:
            self._transitions.append((self.clock.now(), state))

    def _statistics(self) -> ProxyStatistics:
        counters = self._counters
        return ProxyStatistics(
            name=self.link,
            port=self.listen[1],
            mode=describe(self.mode),
            accepted=counters["accepted"],
            open_pairs=len(self._pairs),
            bytes_relayed=counters["relayed"],
            bytes_dropped=counters["dropped"],
            bits_flipped=counters["flipped"],
            frames_corrupted=counters["frames"],
            at=self.clock.now(),
            transitions=tuple(self._transitions),
        )

    # -- sockets -------------------------------------------------------------------------
    def _open(self) -> None:
        if self._server is not None:
            return
        server = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(self.listen)
        server.listen(128)
        self._server = server
        self._acceptor = self._spawn(self._accept, server)

    def _close_listener(self) -> None:
        """Close the listening socket now: a mode that reopens it may follow at once.

        With a greenlet waiting in its ``accept``, gevent closes a socket's descriptor
        only after the loop's next pass, and a ``bind`` before that fails with "address
        already in use" (a flap's down and a restore handled in one go did). The acceptor
        is ended first, so nothing waits on the socket and its close is immediate."""
        server, self._server = self._server, None
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None and acceptor is not gevent.getcurrent():
            acceptor.kill(block=True, timeout=1)
        if server is not None:
            server.close()

    def _spawn(self, function: Any, *args: Any) -> Greenlet[Any, Any]:
        greenlet = gevent.spawn(function, *args)
        greenlet.link_exception(self._crashed)
        return greenlet

    def _crashed(self, greenlet: Greenlet[Any, Any]) -> None:
        with contextlib.suppress(Exception):
            self.ref.tell(_PumpCrashed(error=greenlet.exception or RuntimeError("pump failed")))

    def _accept(self, server: Any) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            self._counters["accepted"] += 1
            self._spawn(self._connect, client)

    def _connect(self, client: Any) -> None:
        upstream = None
        if not isinstance(self.mode, Blackhole):
            try:
                upstream = gevent.socket.create_connection(self.target, timeout=5)
            except OSError:
                _abort(client)
                return
        if self._server is None and not isinstance(self.mode, Blackhole):
            _abort(client)  # cut while we were connecting
            _abort(upstream)
            return
        pair = _Pair(client, upstream, self.mode)
        self._pairs.add(pair)
        for index, (source, sink) in enumerate(((client, upstream), (upstream, client))):
            direction = pair.directions[index]
            if source is None:
                direction.ended = True
                continue
            direction.reader = self._spawn(self._read, pair, direction, source)
            direction.writer = self._spawn(self._write, pair, direction, sink)

    def _drop(self, pair: _Pair, graceful: bool = False) -> None:
        """Forget ``pair`` and close its sockets: with a reset, unless both ends said EOF."""
        if pair not in self._pairs:
            return
        self._pairs.discard(pair)
        for direction in pair.directions:
            for greenlet in (direction.reader, direction.writer):
                if greenlet is not None and greenlet is not gevent.getcurrent():
                    greenlet.kill(block=False)
        for sock in (pair.client, pair.upstream):
            if graceful and sock is not None:
                sock.close()
            else:
                _abort(sock)

    def _ended(self, pair: _Pair, direction: _Direction) -> None:
        direction.ended = True
        if all(d.ended for d in pair.directions):
            self._drop(pair, graceful=True)

    def _read(self, pair: _Pair, direction: _Direction, source: Any) -> None:
        try:
            while True:
                data = source.recv(READ_SIZE)
                if not data:
                    break
                mode = self.mode
                if isinstance(mode, Blackhole) or pair.upstream is None:
                    self._counters["dropped"] += len(data)
                    continue
                data = self._transform(direction, mode, data)
                release = self.clock.now() + (mode.delay if isinstance(mode, Latency) else 0.0)
                while isinstance(self.mode, Bandwidth) and direction.queue.qsize() >= 2:
                    # a capped link holds little: queueing delay stays near 2 chunks / rate
                    gevent.sleep(0.01)
                direction.queue.put((release, data))
        except OSError:
            if not (isinstance(self.mode, Blackhole) or pair.upstream is None):
                self._drop(pair)
                return
        if isinstance(self.mode, Blackhole) or pair.upstream is None:
            # a blackhole delivers no close either: the pair stays open, silent, until the
            # mode changes (then it is reset) or the proxy stops
            direction.ended = True
            return
        direction.queue.put(None)  # clean EOF: half-close the sink once the queue drains

    def _transform(self, direction: _Direction, mode: ProxyMode, data: bytes) -> bytes:
        if isinstance(mode, FlipBits):
            if direction.flipper is None:
                direction.flipper = BitFlipper(mode.every, random.Random(self._rng.random()))
            data, flips = direction.flipper.apply(data)
            self._counters["flipped"] += flips
        elif isinstance(mode, CorruptAfterTls):
            if direction.corrupter is None:
                direction.corrupter = AmqpPayloadCorrupter(mode.min_frame)
            data, frames = direction.corrupter.apply(data)
            self._counters["frames"] += frames
        return data

    def _write(self, pair: _Pair, direction: _Direction, sink: Any) -> None:
        bucket = self._buckets[pair.directions.index(direction)]
        try:
            while True:
                item = direction.queue.get()
                if item is None:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    self._ended(pair, direction)
                    return
                release, data = item
                wait = release - self.clock.now()
                if wait > 0:
                    gevent.sleep(wait)
                view = memoryview(data)
                while view:
                    mode = self.mode
                    if isinstance(mode, Bandwidth):
                        # slices worth 20 ms: small enough to pace, big enough not to spin
                        need = min(len(view), max(1, mode.rate // 50))
                        wait = bucket.take(need, mode.rate, self.clock.now())
                        if wait > 0:
                            gevent.sleep(wait)
                            continue
                        piece = view[:need]
                    else:
                        piece = view
                    sink.sendall(piece)
                    self._counters["relayed"] += len(piece)
                    view = view[len(piece) :]
        except OSError:
            self._drop(pair)
