"""``/metrics``: Skupper's ``skupper_*`` metrics from the collector, with prometheus-client.

Network state (sites, routers, links by status, listeners, connectors) is read at each
scrape. Traffic counters (bytes each way, connections opened and closed) and the latency
histograms are counted up at each scrape from the connections whose listener and
connector are known: a connection is counted once its labels resolve, with every octet
it has carried so far, so the totals never depend on which part of a biflow came first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PromCollector

from .collector import Collector
from .views import Network, connections, connectors, listeners, routerlinks, routers, sites

TRAFFIC_LABELS = (
    "source_site_id",
    "source_site_name",
    "source_process_name",
    "dest_site_id",
    "dest_site_name",
    "dest_process_name",
    "routing_key",
    "protocol",
)
LEGACY_BUCKETS = (1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7)
INTERNAL_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(slots=True)
class _Counted:
    octets: int = 0
    octets_reverse: int = 0
    closed: bool = False
    latency: bool = False


class _NetworkGauges(PromCollector):
    def __init__(self, collector: Collector, clock: Callable[[], float]) -> None:
        self.collector = collector
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        net = Network(self.collector, now=self.clock())
        info = GaugeMetricFamily(
            "skupper_site_info", "A site of the network", labels=["site_id", "name", "version"]
        )
        for site in sites(net):
            if site["endTime"] == 0:
                info.add_metric([site["identity"], site["name"] or "", site["version"] or ""], 1)
        yield info
        yield _count(
            "skupper_routers_total",
            "Routers by site and mode",
            ("site_id", "mode"),
            [(r["siteId"] or "", r["mode"] or "") for r in routers(net) if r["endTime"] == 0],
        )
        yield _count(
            "skupper_site_links_total",
            "Inter-router links by site, role and status",
            ("site_id", "role", "status"),
            [
                (link["sourceSiteId"] or "", link["role"] or "", link["status"])
                for link in routerlinks(net)
                if link["endTime"] == 0
            ],
        )
        for name, items in (
            ("skupper_site_listeners_total", listeners(net)),
            ("skupper_site_connectors_total", connectors(net)),
        ):
            yield _count(
                name,
                name.split("_")[2].capitalize() + " by site",
                ("site_id",),
                [(item["siteId"] or "",) for item in items if item["endTime"] == 0],
            )


def _count(
    name: str, doc: str, labels: tuple[str, ...], rows: list[tuple[str, ...]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    counts: dict[tuple[str, ...], int] = {}
    for row in rows:
        counts[row] = counts.get(row, 0) + 1
    for row, count in sorted(counts.items()):
        family.add_metric(list(row), count)
    return family


class ObserverMetrics:
    def __init__(self, collector: Collector, clock: Callable[[], float] = time.time) -> None:
        self.collector = collector
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_NetworkGauges(collector, clock))
        self.sent = Counter(
            "skupper_sent_bytes", "Bytes clients sent", TRAFFIC_LABELS, registry=self.registry
        )
        self.received = Counter(
            "skupper_received_bytes",
            "Bytes clients received",
            TRAFFIC_LABELS,
            registry=self.registry,
        )
        self.opened = Counter(
            "skupper_connections_opened",
            "Connections opened",
            TRAFFIC_LABELS,
            registry=self.registry,
        )
        self.closed = Counter(
            "skupper_connections_closed",
            "Connections closed",
            TRAFFIC_LABELS,
            registry=self.registry,
        )
        self.legacy_latency = Histogram(
            "legacy_flow_latency_microseconds",
            "First byte in to first byte back, µs",
            (*TRAFFIC_LABELS, "direction"),
            buckets=LEGACY_BUCKETS,
            registry=self.registry,
        )
        self.internal_latency = Histogram(
            "skupper_internal_latency_seconds",
            "Latency the network adds: listener side minus connector side",
            TRAFFIC_LABELS,
            buckets=INTERNAL_BUCKETS,
            registry=self.registry,
        )
        self.ignored = Counter(
            "skupper_observer_ignored",
            "Vanflow input the observer left out, by reason",
            ("reason",),
            registry=self.registry,
        )
        self._ignored_seen: dict[str, int] = {}
        self._counted: dict[str, _Counted] = {}

    def refresh(self) -> None:
        """Count what changed since the last scrape."""
        live = set()
        for conn in connections(Network(self.collector, now=self.clock())):
            if conn["sourceSiteId"] is None or conn["destSiteId"] is None:
                continue  # not yet both parts: counted once they are
            identity = conn["identity"]
            live.add(identity)
            labels = tuple(
                str(conn[key] or "")
                for key in (
                    "sourceSiteId",
                    "sourceSiteName",
                    "sourceProcessName",
                    "destSiteId",
                    "destSiteName",
                    "destProcessName",
                    "routingKey",
                    "protocol",
                )
            )
            counted = self._counted.get(identity)
            if counted is None:
                counted = self._counted[identity] = _Counted()
                self.opened.labels(*labels).inc()
            if conn["octetCount"] > counted.octets:
                self.sent.labels(*labels).inc(conn["octetCount"] - counted.octets)
                counted.octets = conn["octetCount"]
            if conn["octetReverseCount"] > counted.octets_reverse:
                self.received.labels(*labels).inc(
                    conn["octetReverseCount"] - counted.octets_reverse
                )
                counted.octets_reverse = conn["octetReverseCount"]
            if not counted.latency and conn["latency"] > 0 and conn["endTime"]:
                counted.latency = True
                self.legacy_latency.labels(*labels, "incoming").observe(conn["latency"])
                if conn["latencyReverse"]:
                    self.legacy_latency.labels(*labels, "outgoing").observe(conn["latencyReverse"])
                    added = max(0, conn["latency"] - conn["latencyReverse"]) / 1e6
                    self.internal_latency.labels(*labels).observe(added)
            if not counted.closed and conn["endTime"]:
                counted.closed = True
                self.closed.labels(*labels).inc()
        for identity in [i for i in self._counted if i not in live]:
            del self._counted[identity]  # the record is gone: nothing more to count
        for reason, count in self.collector.stats.problems.counts.items():
            seen = self._ignored_seen.get(reason, 0)
            if count > seen:
                self.ignored.labels(reason).inc(count - seen)
                self._ignored_seen[reason] = count

    def exposition(self) -> bytes:
        self.refresh()
        data: bytes = generate_latest(self.registry)
        return data
