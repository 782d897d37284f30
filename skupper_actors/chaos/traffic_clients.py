"""The clients: long checked streams, paced request/response, and new-connection probes."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import gevent
import gevent.pool
import gevent.socket

from .ledger import ConnectionRecord, Ledger, Outcome
from .pattern import DOWN, REQUEST, STREAM, UP, ExchangeHeader, Pattern, Verifier, content_key
from .scenario import ConnectionTraffic, RequestTraffic, StreamTraffic, TrafficSpec
from .traffic_server import READ_SIZE, abort, quietly, reset_seen_by_writer

RETRY_PAUSE = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """A listener that reaches a service: where clients connect."""

    service: str
    site: str
    host: str
    port: int


class _Conn:
    """The socket of one client connection, once there is one (for closing it right)."""

    __slots__ = ("sock",)

    def __init__(self) -> None:
        self.sock: Any = None


class _Failed(Exception):
    def __init__(self, outcome: Outcome, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome


def _classify(error: BaseException) -> _Failed:
    if isinstance(error, _Failed):
        return error
    if isinstance(error, TimeoutError):
        return _Failed(Outcome.TIMEOUT, "no progress within the timeout")
    return _Failed(Outcome.ERROR, f"{type(error).__name__}: {error}")


class TrafficClients:
    """Runs every client the scenario asks for until ``stop_new``; then lets them finish."""

    def __init__(
        self,
        spec: TrafficSpec,
        endpoints: Mapping[str, Sequence[Endpoint]],
        ledger: Ledger,
        now: Callable[[], float],
        seed: int,
    ) -> None:
        self.spec = spec
        self.endpoints = endpoints
        self.ledger = ledger
        self.now = now
        self.seed = seed
        self.running = False
        self._group = gevent.pool.Group()

    def start(self) -> None:
        self.running = True
        for index, streams in enumerate(self.spec.streams):
            for slot in range(streams.concurrency):
                rng = random.Random(f"{self.seed}:streams:{index}:{slot}")
                self._group.spawn(self._stream_slot, streams, rng, self._pool_seed(1, index))
        for index, requests in enumerate(self.spec.requests):
            interval = requests.connections / requests.rate
            for slot in range(requests.connections):
                rng = random.Random(f"{self.seed}:requests:{index}:{slot}")
                start = slot * interval / requests.connections
                self._group.spawn(
                    self._request_slot, requests, rng, self._pool_seed(2, index), interval, start
                )
        for index, probes in enumerate(self.spec.connections):
            self._group.spawn(self._probe_loop, probes, self._pool_seed(3, index))

    def _pool_seed(self, kind: int, index: int) -> int:
        return (self.seed * 1009 + kind * 101 + index) & (2**63 - 1)

    def stop_new(self) -> None:
        """Start no new streams, requests or probes; those running go on."""
        self.running = False

    def wait_idle(self, timeout: float) -> bool:
        return self._group.join(timeout=timeout)

    def abandon(self) -> None:
        """End whatever still runs; those connections are recorded as abandoned."""
        self.running = False
        self._group.kill(block=True, timeout=5)

    # -- helpers ---------------------------------------------------------------------------
    def _connect(
        self, conn: _Conn, record: ConnectionRecord, endpoint: Endpoint, timeout: float
    ) -> Any:
        try:
            sock = gevent.socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        except OSError as error:
            raise _Failed(Outcome.ERROR, f"connect: {type(error).__name__}: {error}") from None
        conn.sock = sock
        record.connected = self.now()
        return sock

    def _receive(self, sock: Any, record: ConnectionRecord, verifier: Verifier, count: int) -> None:
        """Read ``count`` bytes into ``verifier``, failing on EOF or a wrong byte."""
        remaining = count
        while remaining:
            data = sock.recv(min(remaining, READ_SIZE))
            if not data:
                raise _Failed(
                    Outcome.TRUNCATED, f"clean EOF after {verifier.received} of {count} bytes"
                )
            remaining -= len(data)
            before = verifier.verified
            ok = verifier.feed(data)
            record.verified += verifier.verified - before
            self.ledger.bytes_verified += verifier.verified - before
            if not ok:
                record.first_bad = verifier.first_bad
                raise _Failed(Outcome.CORRUPTED, f"byte {verifier.first_bad} differs")

    def _finish(self, record: ConnectionRecord, sock: Any, failure: _Failed | None) -> None:
        if failure is None:
            self.ledger.close(record, Outcome.INTACT, self.now())
            if sock is not None:
                sock.close()
        else:
            if failure.outcome is Outcome.CORRUPTED and record.first_bad is None:
                record.first_bad = 0
            self.ledger.close(record, failure.outcome, self.now(), str(failure))
            if sock is not None:
                abort(sock)

    def _guarded(self, record: ConnectionRecord, body: Callable[[_Conn], None]) -> Outcome:
        conn = _Conn()
        failure: _Failed | None = None
        try:
            body(conn)
        except gevent.GreenletExit:
            self.ledger.close(record, Outcome.ABANDONED, self.now(), "the run ended")
            if conn.sock is not None:
                abort(conn.sock)
            raise
        except (_Failed, OSError) as error:
            failure = _classify(error)
        self._finish(record, conn.sock, failure)
        assert record.outcome is not None
        return record.outcome

    # -- long streams ------------------------------------------------------------------------
    def _stream_slot(self, spec: StreamTraffic, rng: random.Random, pool_seed: int) -> None:
        endpoints = self.endpoints[spec.service]
        while self.running:
            endpoint = rng.choice(endpoints)
            up = rng.randint(spec.up.low, spec.up.high)
            down = rng.randint(spec.down.low, spec.down.high)
            record = self.ledger.open(
                kind="stream",
                service=spec.service,
                site=endpoint.site,
                started=self.now(),
                up=up,
                down=down,
            )
            outcome = self._guarded(
                record, partial(self._stream, record=record, endpoint=endpoint, pool_seed=pool_seed)
            )
            if outcome is not Outcome.INTACT:
                gevent.sleep(RETRY_PAUSE)

    def _stream(
        self, conn: _Conn, record: ConnectionRecord, endpoint: Endpoint, pool_seed: int
    ) -> None:
        sock = self._connect(conn, record, endpoint, self.spec.connect_timeout)
        sock.settimeout(self.spec.idle_timeout)
        key = content_key(record.id)
        pattern = Pattern(pool_seed)
        header = ExchangeHeader(
            kind=STREAM, stream_id=key, pool_seed=pool_seed, up=record.up, down=record.down
        )
        writer = gevent.spawn(quietly, self._write_stream, sock, header, pattern, record)
        try:
            verifier = Verifier(pattern, key, DOWN, record.down)
            try:
                self._receive(sock, record, verifier, record.down)
            except _Failed as failed:
                # a reset the upload's send took first reads as a clean EOF here
                truncated = failed.outcome is Outcome.TRUNCATED
                reset = reset_seen_by_writer(writer) if truncated else None
                if reset is not None:
                    raise _classify(reset) from None
                raise
            if sock.recv(1):
                raise _Failed(Outcome.CORRUPTED, "bytes past the end of the stream")
            writer.join(self.spec.idle_timeout)
            if not writer.dead:
                raise _Failed(Outcome.TIMEOUT, "the upload did not finish")
            if writer.value is not None:
                raise _classify(writer.value)
        finally:
            writer.kill()

    def _write_stream(
        self, sock: Any, header: ExchangeHeader, pattern: Pattern, record: ConnectionRecord
    ) -> None:
        sock.sendall(header.encode())
        for chunk in pattern.chunks(header.stream_id, UP, header.up):
            sock.sendall(chunk)
            record.sent += len(chunk)
        sock.shutdown(gevent.socket.SHUT_WR)

    # -- request / response --------------------------------------------------------------------
    def _request_slot(
        self,
        spec: RequestTraffic,
        rng: random.Random,
        pool_seed: int,
        interval: float,
        start: float,
    ) -> None:
        endpoints = self.endpoints[spec.service]
        pacing = _Pacing(next_at=self.now() + start, interval=interval)
        while self.running:
            endpoint = rng.choice(endpoints)
            record = self.ledger.open(
                kind="requests", service=spec.service, site=endpoint.site, started=self.now()
            )
            outcome = self._guarded(
                record,
                partial(
                    self._requests,
                    record=record,
                    endpoint=endpoint,
                    spec=spec,
                    rng=rng,
                    pool_seed=pool_seed,
                    pacing=pacing,
                ),
            )
            if outcome is not Outcome.INTACT:
                gevent.sleep(RETRY_PAUSE)

    def _requests(
        self,
        conn: _Conn,
        record: ConnectionRecord,
        endpoint: Endpoint,
        spec: RequestTraffic,
        rng: random.Random,
        pool_seed: int,
        pacing: _Pacing,
    ) -> None:
        sock = self._connect(conn, record, endpoint, self.spec.connect_timeout)
        sock.settimeout(self.spec.idle_timeout)
        pattern = Pattern(pool_seed)
        exchange = 0
        while True:
            pacing.wait(self.now)
            if not self.running:
                break
            up = rng.randint(spec.request.low, spec.request.high)
            down = rng.randint(spec.response.low, spec.response.high)
            key = content_key(record.id, exchange)
            exchange += 1
            started = self.now()
            try:
                self._exchange(sock, record, pattern, pool_seed, key, up, down)
            except BaseException:
                record.requests_failed += 1
                self.ledger.latencies.append((started, self.now() - started, False))
                raise
            record.requests_ok += 1
            self.ledger.latencies.append((started, self.now() - started, True))
        sock.shutdown(gevent.socket.SHUT_WR)
        if sock.recv(1):
            raise _Failed(Outcome.CORRUPTED, "bytes after the last response")

    def _exchange(
        self,
        sock: Any,
        record: ConnectionRecord,
        pattern: Pattern,
        pool_seed: int,
        key: int,
        up: int,
        down: int,
    ) -> None:
        header = ExchangeHeader(kind=REQUEST, stream_id=key, pool_seed=pool_seed, up=up, down=down)
        sock.sendall(header.encode() + pattern.read(key, UP, 0, up))
        record.sent += up
        self._receive(sock, record, Verifier(pattern, key, DOWN, down), down)

    # -- new-connection probes -----------------------------------------------------------------
    def _probe_loop(self, spec: ConnectionTraffic, pool_seed: int) -> None:
        endpoints = self.endpoints[spec.service]
        pacing = _Pacing(next_at=self.now(), interval=1.0 / spec.rate)
        index = 0
        while self.running:
            pacing.wait(self.now)
            if not self.running:
                break
            endpoint = endpoints[index % len(endpoints)]
            index += 1
            record = self.ledger.open(
                kind="probe",
                service=spec.service,
                site=endpoint.site,
                started=self.now(),
                up=spec.size,
                down=spec.size,
            )
            self._group.spawn(
                self._guarded,
                record,
                partial(self._probe, record=record, endpoint=endpoint, pool_seed=pool_seed),
            )

    def _probe(
        self, conn: _Conn, record: ConnectionRecord, endpoint: Endpoint, pool_seed: int
    ) -> None:
        timeout = self.spec.connect_timeout
        sock = self._connect(conn, record, endpoint, timeout)
        sock.settimeout(timeout)
        self._exchange(
            sock,
            record,
            Pattern(pool_seed),
            pool_seed,
            content_key(record.id),
            record.up,
            record.down,
        )
        sock.shutdown(gevent.socket.SHUT_WR)
        if sock.recv(1):
            raise _Failed(Outcome.CORRUPTED, "bytes after the response")


class _Pacing:
    """Fixed-interval pacing that does not burst to catch up after a stall."""

    __slots__ = ("interval", "next_at")

    def __init__(self, *, next_at: float, interval: float) -> None:
        self.next_at = next_at
        self.interval = interval

    def wait(self, now: Callable[[], float]) -> None:
        self.next_at = max(self.next_at + self.interval, now())
        gevent.sleep(max(0.0, self.next_at - now()))
