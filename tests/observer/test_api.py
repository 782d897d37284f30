"""The observer's REST API and /metrics over real HTTP (gevent's WSGIServer on 127.0.0.1),
on a collector fed by the real emitter's messages."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from prometheus_client.parser import text_string_to_metric_families
from vanflow_net import EAST_SITE, T0, WEST_SITE, TwoSites

from skupper_actors.observer.api import Credentials, ObserverApp
from skupper_actors.observer.collector import Collector
from skupper_actors.observer.server import InsecureBindError, check_bind, make_server
from skupper_actors.protocol.vanflow import encode

NOW = T0 + 10


def fed_collector(connections: int = 5) -> tuple[Collector, TwoSites]:
    net = TwoSites()
    collector = Collector(now=T0)
    for n in range(connections):
        flow = net.connect(T0 + n * 0.01, octets=100 * (n + 1), reverse=1000 + n, port=41000 + n)
        if n < 2:
            net.close(flow, T0 + 1)
    for at in (T0 + 0.5, T0 + 2, NOW - 1):  # the last: heartbeats, 1 s before the questions
        for source, message in net.tick(at):
            collector.receive_bytes(encode(message), now=at, source=source)
    return collector, net


@pytest.fixture
def api() -> Iterator[tuple[str, TwoSites]]:
    collector, net = fed_collector()
    server = make_server(ObserverApp(collector, clock=lambda: NOW), "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", net
    finally:
        server.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """A real HTTP client in a real thread, while the hub serves."""
    return gevent.get_hub().threadpool.apply(_get, (url, headers))


def _get(url: str, headers: dict[str, str] | None, method: str = "GET") -> tuple[int, Any]:
    data = b"{}" if method != "GET" else None
    request = urllib.request.Request(url, headers=headers or {}, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            status = response.status
            kind = response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        body, status, kind = error.read(), error.code, error.headers["Content-Type"]
    return status, json.loads(body) if kind == "application/json" else body.decode()


def test_list_envelope_and_lookup(api: tuple[str, TwoSites]) -> None:
    base, _ = api
    status, body = get(f"{base}/api/v2alpha1/sites")
    assert status == 200 and set(body) == {"results", "count", "timeRangeCount"}
    assert body["count"] == body["timeRangeCount"] == 2
    assert {s["name"] for s in body["results"]} == {"west", "east"}
    west = next(s for s in body["results"] if s["name"] == "west")
    assert west["identity"] == WEST_SITE and west["routerCount"] == 1 and west["endTime"] == 0
    status, one = get(f"{base}/api/v2alpha1/sites/{EAST_SITE}")
    assert status == 200 and one["results"]["name"] == "east"


def test_every_collection_answers(api: tuple[str, TwoSites]) -> None:
    base, _ = api
    counts = {}
    for name in (
        "sites",
        "routers",
        "routerlinks",
        "routeraccess",
        "listeners",
        "connectors",
        "services",
        "connections",
        "sitepairs",
        "processes",
    ):
        status, body = get(f"{base}/api/v2alpha1/{name}")
        assert status == 200, name
        counts[name] = body["count"]
    assert counts == {
        "sites": 2,
        "routers": 2,
        "routerlinks": 1,
        "routeraccess": 1,
        "listeners": 1,
        "connectors": 1,
        "services": 1,
        "connections": 5,
        "sitepairs": 1,
        "processes": 2,
    }
    _, links = get(f"{base}/api/v2alpha1/routerlinks")
    (link,) = links["results"]
    assert link["status"] == "up" and link["cost"] == 1
    assert link["sourceSiteName"] == "east" and link["destinationSiteName"] == "west"
    _, services = get(f"{base}/api/v2alpha1/services")
    assert services["results"][0]["isBound"] is True
    _, procs = get(f"{base}/api/v2alpha1/processes?sortBy=name")
    assert [p["name"] for p in procs["results"]] == [
        f"site-client-127.0.0.1-{WEST_SITE[:8]}",
        f"site-server-127.0.0.1-{EAST_SITE[:8]}",
    ]
    _, pairs = get(f"{base}/api/v2alpha1/sitepairs")
    assert pairs["results"][0]["recordCount"] == 5
    assert pairs["results"][0]["sourceName"] == "west"


def test_connections_merge_both_sides(api: tuple[str, TwoSites]) -> None:
    base, net = api
    _, body = get(f"{base}/api/v2alpha1/connections/{net.flows[0]}")
    conn = body["results"]
    assert conn["octetCount"] == 100 and conn["octetReverseCount"] == 1000
    assert conn["latency"] == 900 and conn["latencyReverse"] == 400
    assert conn["sourceSiteName"] == "west" and conn["destSiteName"] == "east"
    assert conn["routingKey"] == "web" and conn["connectorId"] == net.connector
    assert conn["traceSites"] == ["west", "east"] and conn["duration"] is not None
    assert conn["destProcessName"] == f"site-server-127.0.0.1-{EAST_SITE[:8]}"


def test_paging_sorting_filters_and_state(api: tuple[str, TwoSites]) -> None:
    base, net = api
    url = f"{base}/api/v2alpha1/connections"
    _, page = get(f"{url}?sortBy=octetCount.desc&limit=2&offset=1")
    assert page["count"] == 2 and page["timeRangeCount"] == 5
    assert [c["octetCount"] for c in page["results"]] == [400, 300]
    _, active = get(f"{url}?state=active")
    assert active["timeRangeCount"] == 3
    _, ended = get(f"{url}?state=terminated&sortBy=octetCount")
    assert [c["octetCount"] for c in ended["results"]] == [100, 200]
    _, filtered = get(f"{url}?sourcePort=41003")
    assert [c["identity"] for c in filtered["results"]] == [net.flows[3]]
    # a time range before anything started: nothing
    early = int((T0 - 100) * 1e6)
    _, none = get(f"{url}?timeRangeStart={early - 10}&timeRangeEnd={early}")
    assert none["timeRangeCount"] == 0
    _, within = get(f"{url}?timeRangeStart={int((T0 - 1) * 1e6)}&timeRangeOperation=within")
    assert within["timeRangeCount"] == 2  # the two ended ones lie within the range


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=x", "limit must be a whole number"),
        ("offset=-1", "offset must not be negative"),
        ("sortBy=octetCount.up", "sortBy direction"),
        ("sortBy=nope", "unknown field 'nope'"),
        ("state=maybe", "state must be one of"),
        ("timeRangeOperation=overlaps", "timeRangeOperation must be one of"),
        ("timeRangeStart=10&timeRangeEnd=5", "after timeRangeEnd"),
        ("colour=red", "unknown filter field 'colour'"),
    ],
)
def test_bad_parameters_are_400_with_a_message(
    api: tuple[str, TwoSites], query: str, message: str
) -> None:
    base, _ = api
    status, body = get(f"{base}/api/v2alpha1/connections?{query}")
    assert status == 400 and body["code"] == 400 and message in body["message"]


def test_unknown_ids_and_paths_are_404(api: tuple[str, TwoSites]) -> None:
    base, _ = api
    for path in (
        "/api/v2alpha1/sites/nope",
        "/api/v2alpha1/widgets",
        "/elsewhere",
        "/api/v2alpha1/sites/a/b/c",
    ):
        status, body = get(base + path)
        assert status == 404 and body["code"] == 404, path
    status, body = gevent.get_hub().threadpool.apply(
        _get, (f"{base}/api/v2alpha1/sites", None, "POST")
    )
    assert status == 405 and body["message"] == "only GET is served"


def test_metrics_have_skupper_names_and_labels(api: tuple[str, TwoSites]) -> None:
    base, _ = api
    status, text = get(f"{base}/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    (links,) = samples["skupper_site_links_total"]
    assert links.labels == {"site_id": EAST_SITE, "role": "inter-router", "status": "up"}
    assert links.value == 1
    assert {s.labels["name"] for s in samples["skupper_site_info"]} == {"west", "east"}
    (sent,) = samples["skupper_sent_bytes_total"]
    assert sent.value == 100 + 200 + 300 + 400 + 500
    assert sent.labels["source_site_name"] == "west" and sent.labels["routing_key"] == "web"
    (received,) = samples["skupper_received_bytes_total"]
    assert received.value == 1000 + 1001 + 1002 + 1003 + 1004
    assert samples["skupper_connections_opened_total"][0].value == 5
    assert samples["skupper_connections_closed_total"][0].value == 2
    counts = [
        s
        for s in samples["legacy_flow_latency_microseconds_count"]
        if s.labels["direction"] == "incoming"
    ]
    assert counts[0].value == 2  # latency observed once per ended connection
    # a second scrape adds nothing new
    _, again = get(f"{base}/metrics")
    assert "skupper_sent_bytes_total" in again
    second = {
        s.name: s.value
        for f in text_string_to_metric_families(again)
        for s in f.samples
        if s.name == "skupper_sent_bytes_total"
    }
    assert second["skupper_sent_bytes_total"] == sent.value


def test_credentials_required_when_given() -> None:
    collector, _ = fed_collector(1)
    app = ObserverApp(collector, clock=lambda: NOW, credentials=Credentials("ann", "s3cret"))
    server = make_server(app, "127.0.0.1", 0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/api/v2alpha1/sites"
        assert get(base)[0] == 401
        wrong = base64.b64encode(b"ann:nope").decode()
        assert get(base, {"Authorization": f"Basic {wrong}"})[0] == 401
        right = base64.b64encode(b"ann:s3cret").decode()
        assert get(base, {"Authorization": f"Basic {right}"})[0] == 200
    finally:
        server.stop()


def test_binding_beyond_loopback_needs_credentials() -> None:
    with pytest.raises(InsecureBindError, match="--username"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", Credentials("a", "b"))
    check_bind("::1", None)
    check_bind("localhost", None)
