"""The observer's collector, sans-IO: decoded vanflow messages in, effects out.

It discovers sources by their beacons, asks for the subscriptions and the flush a
source needs (``Subscribe``, ``SendFlush`` effects for whatever attaches to the site),
patches each record's attributes into its copy (deltas, in any order: the listener's
and the connector's parts of one BIFLOW_TPORT merge by identity whichever comes first),
forgets a source silent for ``source_ttl`` (30 s) with its records, and keeps ended
flow records ``flow_ttl`` (15 min), never more than ``max_ended_flows`` of them (the
oldest go first). Time is the caller's: ``now`` in seconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from proton import Message, ProtonException

from skupper_actors.protocol.vanflow import (
    FLOW_TYPES,
    SOURCE_ROUTER,
    Attr,
    Beacon,
    Flush,
    Heartbeat,
    Problems,
    Record,
    RecordBatch,
    RecordType,
    Value,
    VanflowDecodeError,
    VanflowMessage,
    flows_address,
    from_message,
    heartbeats_address,
    logs_address,
    source_of,
)


def source_of_address(address: str | None) -> str | None:
    """Whose records an address carries (``mc/sfe.<id>[.flows|.logs|.heartbeats]``)."""
    if not address or not address.startswith("mc/sfe.") or address == "mc/sfe.all":
        return None
    source = address[len("mc/sfe.") :]
    for suffix in (".flows", ".logs", ".heartbeats"):
        source = source.removesuffix(suffix)
    return source


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe:
    """Open a receiver on ``address`` (a source's records)."""

    source: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe:
    source: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SendFlush:
    """Send a FLUSH to ``address`` (the source's direct address)."""

    source: str
    address: str


Effect = Subscribe | Unsubscribe | SendFlush


#: kept for ``flow_ttl`` once ended, within ``max_ended_flows``: what grows with traffic
_RETAINED = FLOW_TYPES | {RecordType.LOG}


@dataclass(slots=True)
class Source:
    id: str
    type: str
    address: str
    direct: str
    discovered: float
    last_seen: float
    flushed: bool = False
    addresses: tuple[str, ...] = ()


@dataclass(slots=True)
class StoredRecord:
    type: RecordType
    identity: str
    owner: str
    attrs: dict[int, Value]
    ended_at: float | None = None

    def get_str(self, code: Attr) -> str | None:
        value = self.attrs.get(code)
        return value if isinstance(value, str) else None

    def get_int(self, code: Attr) -> int | None:
        value = self.attrs.get(code)
        return value if isinstance(value, int) else None

    @property
    def start(self) -> int:
        return self.get_int(Attr.START_TIME) or 0

    @property
    def end(self) -> int:
        return self.get_int(Attr.END_TIME) or 0


#: told of every change: the record, the attributes that changed, whether it is new
Watcher = Callable[[StoredRecord, dict[int, Value], bool], None]


@dataclass(slots=True)
class CollectorStats:
    messages: int = 0
    records: int = 0
    decode_errors: int = 0
    sources_forgotten: int = 0
    ended_flows_evicted: int = 0
    problems: Problems = field(default_factory=Problems)


class Collector:
    def __init__(
        self,
        *,
        now: float,
        source_ttl: float = 30.0,
        flow_ttl: float = 900.0,
        max_ended_flows: int = 100_000,
        flush_after: float = 5.0,
        stale_after: float = 4.5,
    ) -> None:
        self.started = now
        self.stale_after = stale_after
        self.source_ttl = source_ttl
        self.flow_ttl = flow_ttl
        self.max_ended_flows = max_ended_flows
        self.flush_after = flush_after
        self.stats = CollectorStats()
        self.sources: dict[str, Source] = {}
        self.records: dict[str, StoredRecord] = {}
        self.by_type: dict[RecordType, dict[str, StoredRecord]] = {t: {} for t in RecordType}
        self._by_owner: dict[str, set[str]] = {}
        self._ended: dict[str, float] = {}  # ended flow identities, oldest first
        self.watchers: list[Watcher] = []

    # -- in ------------------------------------------------------------------------------------
    def receive_bytes(self, data: bytes, *, now: float, source: str | None = None) -> list[Effect]:
        """One encoded message; without ``source``, its ``to`` address tells whose it is."""
        amqp = Message()
        try:
            amqp.decode(data)
            message = from_message(amqp.subject, amqp.properties, amqp.body, self.stats.problems)
        except (VanflowDecodeError, ProtonException):
            self.stats.decode_errors += 1
            return []
        return self.receive(message, now=now, source=source or source_of_address(amqp.address))

    def receive(
        self, message: VanflowMessage, *, now: float, source: str | None = None
    ) -> list[Effect]:
        """One decoded message; ``source``: whose address it came on, when known."""
        self.stats.messages += 1
        if isinstance(message, Beacon):
            return self._beacon(message, now)
        if isinstance(message, Heartbeat):
            return self._seen(message.source, now)
        if isinstance(message, Flush):
            return []  # for sources, not collectors
        assert isinstance(message, RecordBatch)
        for record in message.records:
            self.apply(record, now=now, sender=source)
        return self._seen(source, now) if source else []

    def apply(self, record: Record, *, now: float, sender: str | None = None) -> None:
        """Patch one record (or a part of one) into the store; ended flow and LOG records
        are kept ``flow_ttl``, within ``max_ended_flows``."""
        self.stats.records += 1
        stored = self.records.get(record.identity)
        if stored is None:
            owner = (
                source_of(record.identity)
                if record.type in FLOW_TYPES or sender is None
                else sender
            )
            stored = StoredRecord(record.type, record.identity, owner, dict(record.attrs))
            self.records[record.identity] = stored
            self.by_type[record.type][record.identity] = stored
            self._by_owner.setdefault(owner, set()).add(record.identity)
            changed = dict(record.attrs)
            created = True
        elif stored.type is not record.type:
            self.stats.problems.add("record_type_changed")
            return
        else:
            changed = {k: v for k, v in record.attrs.items() if stored.attrs.get(k) != v}
            stored.attrs.update(changed)
            created = False
        if stored.ended_at is None and Attr.END_TIME in changed and stored.type in _RETAINED:
            stored.ended_at = now
            self._ended[stored.identity] = now
            self._evict_over_bound()
        for watcher in self.watchers:
            watcher(stored, changed, created)

    def is_live(self, source_id: str | None, now: float) -> bool:
        """False for a discovered source silent for ``stale_after`` (it beats every 2 s):
        its records still show, but what they say of its links no longer holds."""
        source = self.sources.get(source_id) if source_id is not None else None
        return source is None or now - source.last_seen < self.stale_after

    # -- time ----------------------------------------------------------------------------------
    def tick(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        for source in list(self.sources.values()):
            if now - source.last_seen >= self.source_ttl:
                effects += self._forget(source)
            elif not source.flushed and now - source.discovered >= self.flush_after:
                effects.append(self._flush(source))
        horizon = now - self.flow_ttl
        while self._ended:
            identity, ended_at = next(iter(self._ended.items()))
            if ended_at > horizon:
                break
            self._drop(identity)
        return effects

    # -- inside --------------------------------------------------------------------------------
    def _beacon(self, beacon: Beacon, now: float) -> list[Effect]:
        known = self.sources.get(beacon.source)
        if known is not None:
            known.last_seen = now
            return []
        extra: tuple[str, ...]
        if beacon.source_type == SOURCE_ROUTER:
            extra = (flows_address(beacon.source), logs_address(beacon.source))
        else:
            extra = (heartbeats_address(beacon.source),)
        addresses = (beacon.address, *extra)
        self.sources[beacon.source] = Source(
            id=beacon.source,
            type=beacon.source_type,
            address=beacon.address,
            direct=beacon.direct,
            discovered=now,
            last_seen=now,
            addresses=addresses,
        )
        return [Subscribe(source=beacon.source, address=address) for address in addresses]

    def _seen(self, source_id: str, now: float) -> list[Effect]:
        source = self.sources.get(source_id)
        if source is None:
            return []  # not discovered (yet): its beacon says where to listen
        source.last_seen = now
        return [] if source.flushed else [self._flush(source)]

    def _flush(self, source: Source) -> SendFlush:
        source.flushed = True
        return SendFlush(source=source.id, address=source.direct)

    def _forget(self, source: Source) -> list[Effect]:
        del self.sources[source.id]
        self.stats.sources_forgotten += 1
        for identity in list(self._by_owner.pop(source.id, ())):
            if identity not in self._ended:  # ended flows stay their time, as history
                self._drop(identity)
        return [Unsubscribe(source=source.id, address=address) for address in source.addresses]

    def _drop(self, identity: str) -> None:
        stored = self.records.pop(identity, None)
        self._ended.pop(identity, None)
        if stored is not None:
            del self.by_type[stored.type][identity]
            owned = self._by_owner.get(stored.owner)
            if owned is not None:
                owned.discard(identity)

    def _evict_over_bound(self) -> None:
        while len(self._ended) > self.max_ended_flows:
            self._drop(next(iter(self._ended)))
            self.stats.ended_flows_evicted += 1
