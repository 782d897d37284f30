"""What the REST API shows, built from the collector's records (Skupper's v2alpha1 shapes).

Each function returns plain JSON-ready dicts, one per item, every one with
``identity``, ``startTime`` and ``endTime`` (µs; 0 = live). Processes are synthetic, as
Skupper's observer makes them for hosts without a PROCESS record: one server process per
connector target host and site, one client process per client host and listener site.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from skupper_actors.protocol.vanflow import Attr, RecordType

from .collector import Collector, StoredRecord

Item = dict[str, Any]


def stable_id(*parts: str) -> str:
    """An identity for what the observer makes itself (services, processes, pairs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "skupper-observer:" + "/".join(parts)))


def _base(record: StoredRecord) -> Item:
    return {"identity": record.identity, "startTime": record.start, "endTime": record.end}


def _s(record: StoredRecord | None, code: Attr) -> str | None:
    return None if record is None else record.get_str(code)


def _i(record: StoredRecord | None, code: Attr) -> int | None:
    return None if record is None else record.get_int(code)


@dataclass(slots=True)
class Network:
    """Look-ups over one snapshot of the collector's records."""

    collector: Collector
    #: when the snapshot is taken (seconds since the epoch): a source silent for the
    #: collector's ``stale_after`` at this time has its links shown down
    now: float = field(default_factory=time.time)
    _router_names: dict[str, str] | None = None

    def of(self, kind: RecordType) -> Iterable[StoredRecord]:
        return self.collector.by_type[kind].values()

    def get(self, kind: RecordType, identity: str | None) -> StoredRecord | None:
        return None if identity is None else self.collector.by_type[kind].get(identity)

    def router_named(self, name: str) -> str | None:
        """A router's identity from its name (a trace names routers), or the identity."""
        if name in self.collector.by_type[RecordType.ROUTER]:
            return name
        if self._router_names is None:
            self._router_names = {
                router.get_str(Attr.NAME) or "": router.identity
                for router in self.of(RecordType.ROUTER)
            }
        return self._router_names.get(name)

    def router_site(self, router_id: str | None) -> StoredRecord | None:
        router = self.get(RecordType.ROUTER, router_id)
        return self.get(RecordType.SITE, _s(router, Attr.PARENT))

    def site_of_child(self, record: StoredRecord | None) -> StoredRecord | None:
        return self.router_site(_s(record, Attr.PARENT))


def _site_fields(prefix: str, site: StoredRecord | None) -> Item:
    return {
        f"{prefix}SiteId": None if site is None else site.identity,
        f"{prefix}SiteName": _s(site, Attr.NAME),
    }


def sites(net: Network) -> list[Item]:
    routers: dict[str, int] = {}
    for router in net.of(RecordType.ROUTER):
        parent = router.get_str(Attr.PARENT)
        if parent:
            routers[parent] = routers.get(parent, 0) + 1
    return [
        {
            **_base(site),
            "name": site.get_str(Attr.NAME),
            "namespace": site.get_str(Attr.NAMESPACE),
            "platform": site.get_str(Attr.PLATFORM) or "unknown",
            "provider": site.get_str(Attr.PROVIDER),
            "version": site.get_str(Attr.BUILD_VERSION),
            "routerCount": routers.get(site.identity, 0),
        }
        for site in net.of(RecordType.SITE)
    ]


def routers(net: Network) -> list[Item]:
    items = []
    for router in net.of(RecordType.ROUTER):
        site = net.get(RecordType.SITE, router.get_str(Attr.PARENT))
        items.append(
            {
                **_base(router),
                "name": router.get_str(Attr.NAME),
                "mode": router.get_str(Attr.MODE),
                "namespace": router.get_str(Attr.NAMESPACE),
                "hostName": router.get_str(Attr.HOSTNAME),
                "imageName": router.get_str(Attr.IMAGE_NAME),
                "imageVersion": router.get_str(Attr.IMAGE_VERSION),
                "buildVersion": router.get_str(Attr.BUILD_VERSION),
                "siteId": None if site is None else site.identity,
                "siteName": _s(site, Attr.NAME),
            }
        )
    return items


def routerlinks(net: Network) -> list[Item]:
    items = []
    for link in net.of(RecordType.LINK):
        access = net.get(RecordType.ROUTER_ACCESS, link.get_str(Attr.PEER))
        dest_router = _s(access, Attr.PARENT)
        items.append(
            {
                **_base(link),
                "name": link.get_str(Attr.NAME),
                "routerId": link.get_str(Attr.PARENT),
                "cost": link.get_int(Attr.LINK_COST),
                "role": link.get_str(Attr.ROLE),
                # the record's own word, unless the router keeping it went silent (a
                # killed router never says its links went down)
                "status": (link.get_str(Attr.OPER_STATUS) or "down")
                if net.collector.is_live(link.owner, net.now)
                else "down",
                "octetCount": link.get_int(Attr.OCTETS) or 0,
                "octetReverseCount": link.get_int(Attr.OCTETS_REVERSE) or 0,
                "routerAccessId": link.get_str(Attr.PEER),
                "destinationRouterId": dest_router,
                **_site_fields("source", net.site_of_child(link)),
                **_site_fields("destination", net.router_site(dest_router)),
            }
        )
    return items


def routeraccess(net: Network) -> list[Item]:
    return [
        {
            **_base(access),
            "name": access.get_str(Attr.NAME),
            "routerId": access.get_str(Attr.PARENT),
            "role": access.get_str(Attr.ROLE),
            "linkCount": access.get_int(Attr.LINK_COUNT) or 0,
        }
        for access in net.of(RecordType.ROUTER_ACCESS)
    ]


def _adaptors(net: Network, kind: RecordType) -> list[Item]:
    items = []
    for record in net.of(kind):
        site = net.site_of_child(record)
        key = record.get_str(Attr.VAN_ADDRESS)
        item = {
            **_base(record),
            "name": record.get_str(Attr.NAME),
            "routerId": record.get_str(Attr.PARENT),
            "siteId": None if site is None else site.identity,
            "siteName": _s(site, Attr.NAME),
            "routingKey": key,
            "serviceId": None if key is None else stable_id("service", key),
            "destHost": record.get_str(Attr.DEST_HOST),
            "destPort": record.get_str(Attr.DEST_PORT),
            "protocol": record.get_str(Attr.PROTOCOL) or "tcp",
            "flowCount": record.get_int(Attr.FLOW_COUNT_L4) or 0,
        }
        if kind is RecordType.CONNECTOR and site is not None and item["destHost"]:
            item["processId"] = stable_id("server", item["destHost"], site.identity)
        items.append(item)
    return items


def listeners(net: Network) -> list[Item]:
    return _adaptors(net, RecordType.LISTENER)


def connectors(net: Network) -> list[Item]:
    return _adaptors(net, RecordType.CONNECTOR)


def services(net: Network) -> list[Item]:
    found: dict[str, Item] = {}
    for kind, count in (
        (RecordType.LISTENER, "listenerCount"),
        (RecordType.CONNECTOR, "connectorCount"),
    ):
        for record in net.of(kind):
            key = record.get_str(Attr.VAN_ADDRESS)
            if key is None:
                continue
            item = found.setdefault(
                key,
                {
                    "identity": stable_id("service", key),
                    "startTime": record.start,
                    "endTime": 0,
                    "name": key,
                    "protocol": record.get_str(Attr.PROTOCOL) or "tcp",
                    "observedApplicationProtocols": [],
                    "listenerCount": 0,
                    "connectorCount": 0,
                },
            )
            if record.end == 0:
                item[count] += 1
            item["startTime"] = min(item["startTime"], record.start)
    for item in found.values():
        item["hasListener"] = item["listenerCount"] > 0
        item["isBound"] = item["hasListener"] and item["connectorCount"] > 0
    return list(found.values())


def _process_name(role: str, host: str, site: StoredRecord) -> str:
    return f"site-{role}-{host}-{site.identity[:8]}"


def connections(net: Network) -> list[Item]:
    items = []
    for flow in net.of(RecordType.BIFLOW_TPORT):
        listener = net.get(RecordType.LISTENER, flow.get_str(Attr.PARENT))
        connector = net.get(RecordType.CONNECTOR, flow.get_str(Attr.CONNECTOR))
        source_site = net.site_of_child(listener)
        dest_site = net.site_of_child(connector)
        source_host = flow.get_str(Attr.SOURCE_HOST)
        dest_host = _s(connector, Attr.DEST_HOST)
        trace = flow.get_str(Attr.TRACE)
        routers_on_path = [] if not trace or trace == "Local" else trace.split("|")
        trace_sites = []
        for router_name in routers_on_path:
            site = net.router_site(net.router_named(router_name))
            trace_sites.append(_s(site, Attr.NAME) or router_name)
        start, end = flow.start, flow.end
        item = {
            **_base(flow),
            "listenerId": flow.get_str(Attr.PARENT),
            "connectorId": flow.get_str(Attr.CONNECTOR),
            "routingKey": _s(listener, Attr.VAN_ADDRESS) or _s(connector, Attr.VAN_ADDRESS),
            "protocol": _s(connector, Attr.PROTOCOL) or "tcp",
            "sourceHost": source_host,
            "sourcePort": flow.get_str(Attr.SOURCE_PORT),
            "destHost": dest_host,
            "destPort": _s(connector, Attr.DEST_PORT),
            "proxyHost": flow.get_str(Attr.PROXY_HOST),
            "proxyPort": flow.get_str(Attr.PROXY_PORT),
            "octetCount": flow.get_int(Attr.OCTETS) or 0,
            "octetReverseCount": flow.get_int(Attr.OCTETS_REVERSE) or 0,
            "latency": flow.get_int(Attr.LATENCY) or 0,
            "latencyReverse": flow.get_int(Attr.PROCESS_LATENCY) or 0,
            "listenerError": flow.get_str(Attr.ERROR_LISTENER_SIDE),
            "connectorError": flow.get_str(Attr.ERROR_CONNECTOR_SIDE),
            "traceRouters": routers_on_path,
            "traceSites": trace_sites,
            "duration": end - start if end else None,
            **_site_fields("source", source_site),
            **_site_fields("dest", dest_site),
            "sourceProcessId": None,
            "sourceProcessName": None,
            "destProcessId": None,
            "destProcessName": None,
        }
        if source_site is not None and source_host:
            item["sourceProcessId"] = stable_id("client", source_host, source_site.identity)
            item["sourceProcessName"] = _process_name("client", source_host, source_site)
        if dest_site is not None and dest_host:
            item["destProcessId"] = stable_id("server", dest_host, dest_site.identity)
            item["destProcessName"] = _process_name("server", dest_host, dest_site)
        if source_site is not None and dest_site is not None:
            item["sitePairId"] = stable_id("sitepair", source_site.identity, dest_site.identity)
        items.append(item)
    return items


def processes(net: Network) -> list[Item]:
    found: dict[str, Item] = {}

    def add(role: str, host: str, site: StoredRecord, start: int, key: str | None) -> None:
        identity = stable_id(role, host, site.identity)
        item = found.setdefault(
            identity,
            {
                "identity": identity,
                "startTime": start,
                "endTime": 0,
                "name": _process_name(role, host, site),
                "siteId": site.identity,
                "siteName": site.get_str(Attr.NAME),
                "componentId": stable_id(f"site-{role}s", site.identity),
                "componentName": f"site-{role}s-{site.identity[:8]}",
                "sourceHost": host,
                "hostName": None,
                "imageName": None,
                "role": "remote",
                "binding": "bound" if role == "server" else "unbound",
                "services": [],
            },
        )
        item["startTime"] = min(item["startTime"], start)
        if key and key not in item["services"]:
            item["services"].append(key)

    for connector in net.of(RecordType.CONNECTOR):
        site = net.site_of_child(connector)
        host = connector.get_str(Attr.DEST_HOST)
        if site is not None and host:
            add("server", host, site, connector.start, connector.get_str(Attr.VAN_ADDRESS))
    for flow in net.of(RecordType.BIFLOW_TPORT):
        listener = net.get(RecordType.LISTENER, flow.get_str(Attr.PARENT))
        site = net.site_of_child(listener)
        host = flow.get_str(Attr.SOURCE_HOST)
        if site is not None and host:
            add("client", host, site, flow.start, _s(listener, Attr.VAN_ADDRESS))
    return list(found.values())


def sitepairs(net: Network) -> list[Item]:
    pairs: dict[str, Item] = {}
    for conn in connections(net):
        pair_id = conn.get("sitePairId")
        if pair_id is None:
            continue
        item = pairs.setdefault(
            pair_id,
            {
                "identity": pair_id,
                "startTime": conn["startTime"],
                "endTime": 0,
                "pairType": "SITE",
                "recordCount": 0,
                "protocol": conn["protocol"],
                "sourceId": conn["sourceSiteId"],
                "sourceName": conn["sourceSiteName"],
                "destinationId": conn["destSiteId"],
                "destinationName": conn["destSiteName"],
            },
        )
        item["recordCount"] += 1
        item["startTime"] = min(item["startTime"], conn["startTime"])
    return list(pairs.values())


COLLECTIONS = {
    "sites": sites,
    "routers": routers,
    "routerlinks": routerlinks,
    "routeraccess": routeraccess,
    "listeners": listeners,
    "connectors": connectors,
    "services": services,
    "connections": connections,
    "sitepairs": sitepairs,
    "processes": processes,
}
