"""What the traffic did: one record per connection, with both ends' verdicts, and running totals."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field


class Outcome(enum.Enum):
    INTACT = "intact"  #: every byte arrived, verified, then a clean end
    ERROR = "error"  #: the socket reported an error (reset, refused, broken pipe)
    TIMEOUT = "timeout"  #: no progress for the idle timeout; the client gave up
    TRUNCATED = "truncated"  #: a clean end (EOF) before all bytes arrived: silent truncation
    CORRUPTED = "corrupted"  #: a byte differed from the seeded content
    ABANDONED = "abandoned"  #: still running when the run ended


#: outcomes in which the client learns that something went wrong
SEEN_ERRORS = frozenset({Outcome.ERROR, Outcome.TIMEOUT})


@dataclass(slots=True, kw_only=True)
class ConnectionRecord:
    """One client connection (a stream, a request connection, or a new-connection probe)."""

    id: int
    kind: str  #: "stream" | "requests" | "probe"
    service: str
    site: str  #: the listener's site
    started: float  #: run time (s)
    connected: float | None = None
    ended: float | None = None
    up: int = 0  #: bytes the client meant to send (streams, probes)
    down: int = 0  #: bytes it expected back
    sent: int = 0
    verified: int = 0  #: bytes the client received and verified
    outcome: Outcome | None = None
    error: str | None = None
    first_bad: int | None = None
    #: the server's verdict on the bytes it received (None: the connection never got there)
    server_outcome: Outcome | None = None
    server_site: str = ""  #: the connector's site that delivered it to the server
    server_ended: float | None = None  #: run time of the server's verdict
    server_verified: int = 0
    server_error: str | None = None
    server_first_bad: int | None = None
    requests_ok: int = 0
    requests_failed: int = 0

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "id": self.id,
            "kind": self.kind,
            "service": self.service,
            "site": self.site,
            "started": _round(self.started),
            "connected": _round(self.connected),
            "ended": _round(self.ended),
            "up": self.up,
            "down": self.down,
            "sent": self.sent,
            "verified": self.verified,
            "outcome": self.outcome.value if self.outcome else None,
            "server_outcome": self.server_outcome.value if self.server_outcome else None,
            "server_verified": self.server_verified,
            "server_site": self.server_site,
            "server_ended": _round(self.server_ended),
        }
        for key in ("error", "first_bad", "server_error", "server_first_bad"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.kind == "requests":
            data["requests_ok"] = self.requests_ok
            data["requests_failed"] = self.requests_failed
        return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class Corruption:
    """Evidence of one corrupted delivery: where it was seen and at which offset."""

    at: float
    connection: int
    side: str  #: "client" or "server"
    offset: int | None
    detail: str


@dataclass(slots=True, kw_only=True)
class Ledger:
    """Every connection record, by id, plus totals the monitor samples for the timeline."""

    records: dict[int, ConnectionRecord] = field(default_factory=dict)
    corruptions: list[Corruption] = field(default_factory=list)
    #: (run time, latency s, ok) per request/response exchange
    latencies: list[tuple[float, float, bool]] = field(default_factory=list)
    #: server verdicts on connections whose header never arrived intact: (time, outcome, why)
    unattributed: list[tuple[float, Outcome, str]] = field(default_factory=list)
    bytes_verified: int = 0
    errors: int = 0
    intact: int = 0
    open_connections: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def open(
        self, *, kind: str, service: str, site: str, started: float, up: int = 0, down: int = 0
    ) -> ConnectionRecord:
        record = ConnectionRecord(
            id=next(self._ids),
            kind=kind,
            service=service,
            site=site,
            started=started,
            up=up,
            down=down,
        )
        self.records[record.id] = record
        self.open_connections += 1
        return record

    def close(
        self, record: ConnectionRecord, outcome: Outcome, now: float, error: str | None = None
    ) -> None:
        if record.outcome is not None:
            return
        record.outcome = outcome
        record.ended = now
        record.error = error
        self.open_connections -= 1
        if outcome is Outcome.INTACT:
            self.intact += 1
        elif outcome is not Outcome.ABANDONED:
            self.errors += 1
        if outcome is Outcome.CORRUPTED:
            self.corruptions.append(
                Corruption(
                    at=now,
                    connection=record.id,
                    side="client",
                    offset=record.first_bad,
                    detail=error or "",
                )
            )

    def server_verdict(
        self,
        connection: int,
        outcome: Outcome,
        now: float,
        *,
        verified: int,
        error: str | None = None,
        first_bad: int | None = None,
        site: str = "",
    ) -> None:
        record = self.records.get(connection)
        if outcome is Outcome.CORRUPTED:
            self.corruptions.append(
                Corruption(
                    at=now,
                    connection=connection,
                    side="server",
                    offset=first_bad,
                    detail=error or "",
                )
            )
        if record is None:
            if outcome is not Outcome.INTACT:
                self.unattributed.append((now, outcome, error or ""))
            return
        record.server_outcome = outcome
        record.server_ended = now
        record.server_site = site
        record.server_verified = verified
        record.server_error = error
        record.server_first_bad = first_bad

    def count(self, kind: str | None = None) -> dict[str, int]:
        """Outcome name -> number of records (of ``kind``)."""
        totals: dict[str, int] = {}
        for record in self.records.values():
            if kind is None or record.kind == kind:
                name = record.outcome.value if record.outcome else "open"
                totals[name] = totals.get(name, 0) + 1
        return totals
