"""Two routers' vanflow output, made by the real sans-IO emitter, for collector tests.

west (listener ``web``) links to east (connector ``web`` to 127.0.0.1:8080); ``n``
connections from 127.0.0.1 go west -> east, each with its listener-side record at west
and its connector-side co-record at east. Returns the messages each router would send.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skupper_actors.protocol.vanflow import (
    BEACON_ADDRESS,
    Attr,
    Emitter,
    Outgoing,
    RecordType,
    flows_address,
    logs_address,
    records_address,
)

T0 = 1_700_000_000.0
WEST_SITE = "11111111-aaaa-4aaa-8aaa-000000000001"
EAST_SITE = "22222222-bbbb-4bbb-8bbb-000000000002"


def consuming(emitter: Emitter) -> Emitter:
    source = emitter.source_id
    for address in (
        BEACON_ADDRESS,
        records_address(source),
        flows_address(source),
        logs_address(source),
    ):
        emitter.set_consumer(address, True)
    return emitter


@dataclass
class TwoSites:
    west: Emitter = field(default_factory=lambda: consuming(Emitter("west0", now=T0)))
    east: Emitter = field(default_factory=lambda: consuming(Emitter("east0", now=T0)))
    flows: list[str] = field(default_factory=list)
    listener: str = ""
    connector: str = ""
    link: str = ""

    def __post_init__(self) -> None:
        w, e = self.west, self.east
        w.add(
            RecordType.SITE, {Attr.NAME: "west", Attr.PLATFORM: "linux"}, now=T0, identity=WEST_SITE
        )
        e.add(
            RecordType.SITE, {Attr.NAME: "east", Attr.PLATFORM: "linux"}, now=T0, identity=EAST_SITE
        )
        for emitter, site, name in ((w, WEST_SITE, "west"), (e, EAST_SITE, "east")):
            emitter.add(
                RecordType.ROUTER,
                {Attr.PARENT: site, Attr.NAME: f"0/{name}", Attr.MODE: "interior"},
                now=T0,
                identity=emitter.source_id,
            )
        access = w.add(
            RecordType.ROUTER_ACCESS,
            {Attr.PARENT: w.source_id, Attr.NAME: "inter-router", Attr.ROLE: "inter-router"},
            now=T0,
        )
        self.link = (
            e.add(
                RecordType.LINK,
                {
                    Attr.PARENT: e.source_id,
                    Attr.NAME: "to-west",
                    Attr.ROLE: "inter-router",
                    Attr.LINK_COST: 1,
                    Attr.OPER_STATUS: "up",
                    Attr.PEER: access or "",
                },
                now=T0,
            )
            or ""
        )
        common = {Attr.VAN_ADDRESS: "web", Attr.PROTOCOL: "tcp"}
        self.listener = (
            w.add(
                RecordType.LISTENER,
                {
                    **common,
                    Attr.PARENT: w.source_id,
                    Attr.NAME: "web",
                    Attr.DEST_HOST: "127.0.0.1",
                    Attr.DEST_PORT: "9090",
                },
                now=T0,
            )
            or ""
        )
        self.connector = (
            e.add(
                RecordType.CONNECTOR,
                {
                    **common,
                    Attr.PARENT: e.source_id,
                    Attr.NAME: "web",
                    Attr.DEST_HOST: "127.0.0.1",
                    Attr.DEST_PORT: "8080",
                },
                now=T0,
            )
            or ""
        )

    def connect(self, now: float, *, octets: int, reverse: int, port: int) -> str:
        flow = self.west.add(
            RecordType.BIFLOW_TPORT,
            {
                Attr.PARENT: self.listener,
                Attr.SOURCE_HOST: "127.0.0.1",
                Attr.SOURCE_PORT: str(port),
            },
            now=now,
        )
        assert flow is not None
        self.east.add_corecord(
            flow,
            {
                Attr.CONNECTOR: self.connector,
                Attr.PROXY_HOST: "127.0.0.1",
                Attr.PROXY_PORT: str(port + 1),
                Attr.TRACE: "0/west|0/east",
            },
            now=now,
        )
        self.west.update(
            flow, {Attr.OCTETS: octets, Attr.OCTETS_REVERSE: reverse, Attr.LATENCY: 900}
        )
        self.east.update(flow, {Attr.PROCESS_LATENCY: 400})
        self.flows.append(flow)
        return flow

    def close(self, flow: str, now: float) -> None:
        self.west.end(flow, now=now)
        self.east.end(flow, now=now)

    def tick(self, now: float) -> list[tuple[str, Outgoing]]:
        """Everything both would send at ``now``, with the sender's source id."""
        return [(self.west.source_id, m) for m in self.west.tick(now)] + [
            (self.east.source_id, m) for m in self.east.tick(now)
        ]
