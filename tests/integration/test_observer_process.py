"""`skupper-observer` as a user starts it, reading two real nodes' flow records through
their management sockets: REST and /metrics over HTTP, and its refusals."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request

import pytest
from harness import free_port, rss_kib, wait_until
from observers import OBSERVER, observed_network
from prometheus_client.parser import text_string_to_metric_families
from servers import transfer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: bytes = response.read()
        return data


@pytest.mark.parametrize("transport", ["management", "amqps"])
def test_observer_serves_a_two_site_network(tmp_path, transport: str) -> None:
    """``amqps``: attached to a's AMQP endpoint over TLS with a client certificate
    (``tls: true, auth: external``), as ``--router-tls`` says."""
    with observed_network(tmp_path, ["a", "b"], [("a", "b")], transport) as net:

        def sites() -> int:
            try:
                return len(net.results("sites"))
            except OSError:
                return 0

        wait_until(lambda: sites() == 2, 20, interval=0.5, what="the observer to see 2 sites")
        sizes = [(10, 20), (5000, 100_000), (123_456, 7)]
        for send, back in sizes:
            assert transfer(net.port, send, back, seed=send) == (True, True, None)

        wait_until(
            lambda: len(net.results("connections", "state=terminated")) == 3,
            20,
            interval=0.5,
            what="3 ended connections",
        )
        expected_sent = sum(8 + send for send, _ in sizes)
        expected_received = sum(32 + back for _, back in sizes)

        def sent_bytes() -> tuple[float, float]:
            totals = {"skupper_sent_bytes_total": 0.0, "skupper_received_bytes_total": 0.0}
            for family in text_string_to_metric_families(get(f"{net.base}metrics").decode()):
                for sample in family.samples:
                    if sample.name in totals:
                        totals[sample.name] += sample.value
            return totals["skupper_sent_bytes_total"], totals["skupper_received_bytes_total"]

        wait_until(lambda: sent_bytes() == (expected_sent, expected_received), 10, what="bytes")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "0.0.0.0:0"], "give --username and --password-file"),
        (["--listen", "nonsense"], "is not HOST:PORT"),
        (["--flow-record-ttl", "soon"], "--flow-record-ttl"),
        (["--username", "ann"], "go together"),
        (["-n", "Not_A_Name"], "namespace 'Not_A_Name'"),
        (["--router-url", "amqp://127.0.0.1:1"], "or else --router-url"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [*OBSERVER, "--management", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--router-url", "amqps://127.0.0.1:1"], "amqps:// needs --router-tls"),
        (["--router-url", "https://127.0.0.1:1"], "expected amqp://HOST:PORT"),
        (["--router-url", "amqp://127.0.0.1:1", "--router-tls", "."], "goes with an amqps://"),
        (["--router-url", "amqps://127.0.0.1:1", "--router-tls", "{tmp}"], "no ca.crt in"),
        (["--router-url", "amqps://127.0.0.1:1", "--router-tls", "{bad}"], "proton cannot use"),
        (["--router-url", "amqps://127.0.0.1:1", "--router-tls", "{half}"], "go together"),
    ],
)
def test_bad_router_arguments_are_one_line_and_exit_2(
    tmp_path, args: list[str], message: str
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ca.crt").write_text("not a certificate\n")
    half = tmp_path / "half"
    half.mkdir()
    (half / "ca.crt").write_text("x")
    (half / "tls.crt").write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    folders = {"{tmp}": str(empty), "{bad}": str(bad), "{half}": str(half)}
    done = subprocess.run(
        [*OBSERVER, *(folders.get(arg, arg) for arg in args)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_observer_reads_a_namespace_site_by_name(sites, tmp_path) -> None:
    """`skupper-observer -n west`, the documented command, finds the site's node."""
    west = sites("west").start()
    http = free_port()
    observer = subprocess.Popen(
        [*OBSERVER, "-n", "west", "--listen", f"127.0.0.1:{http}"],
        env=west.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def site_names() -> list[str]:
            try:
                body = json.loads(get(f"http://127.0.0.1:{http}/api/v2alpha1/sites"))
            except OSError:
                return []
            return [site["name"] for site in body["results"]]

        wait_until(lambda: site_names() == ["west"], 20, interval=0.5, what="the site")
        routers = json.loads(get(f"http://127.0.0.1:{http}/api/v2alpha1/routers"))["results"]
        assert [r["name"] for r in routers] == ["0/west"]

        # the skupper command finds the running observer through the site's runtime folder
        def skupper(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "skupper_actors.cli.main", "-n", "west", *args],
                env=west.env, capture_output=True, text=True, timeout=60,
            )

        status = skupper("network", "status", "-o", "json")
        assert status.returncode == 0, status.stderr
        seen = json.loads(status.stdout)["observer"]
        assert seen["url"] == f"http://127.0.0.1:{http}" and seen["services"] == []
        text = skupper("network", "status")
        assert f"Traffic, from the observer at http://127.0.0.1:{http}" in text.stdout
        dump = tmp_path / "dump.tar.gz"
        assert skupper("debug", "dump", str(dump)).returncode == 0
        with tarfile.open(dump) as tar:
            member = tar.extractfile("skupper-dump-west/observer/sites.json")
            assert member is not None
            assert [s["name"] for s in json.load(member)] == ["west"]
    finally:
        observer.terminate()
        assert observer.wait(10) == 0
    assert not (west.ns.runtime_dir / "observer.json").exists()  # withdrawn at exit
    plain = subprocess.run(
        [sys.executable, "-m", "skupper_actors.cli.main", "-n", "west", "network", "status"],
        env=west.env, capture_output=True, text=True, timeout=60,
    )
    assert plain.returncode == 0 and "Traffic" not in plain.stdout


@pytest.mark.timeout(90)
def test_a_flood_of_idle_sockets_costs_a_bounded_part_and_requests_still_answer(
    tmp_path,
) -> None:
    """400 sockets that never send a request: the observer serves 256 at once (the
    rest wait in the kernel's backlog), drops each after 10 s idle, and a real request
    made during the flood is answered once the first idle ones are dropped."""
    http = free_port()
    observer = subprocess.Popen(
        [*OBSERVER, "--management", str(tmp_path), "--listen", f"127.0.0.1:{http}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    idle: list[socket.socket] = []
    try:
        url = f"http://127.0.0.1:{http}/api/v2alpha1/sites"
        wait_until(lambda: get_json_slowly(url, 5)["count"] == 0, 20, what="the observer serving")
        before = rss_kib(observer.pid)
        for _ in range(400):
            idle.append(socket.create_connection(("127.0.0.1", http), timeout=5))
        time.sleep(1.0)
        grown = rss_kib(observer.pid) - before
        started = time.monotonic()
        assert get_json_slowly(url, timeout=40)["count"] == 0
        waited = time.monotonic() - started
        assert observer.poll() is None
        assert grown < 16 << 10, f"RSS grew {grown} KiB for 400 idle sockets"
        assert waited < 25, waited
        # the first idle ones were dropped by the observer: reading them says so
        idle[0].settimeout(5)
        assert idle[0].recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
        observer.terminate()
        observer.wait(10)


def get_json_slowly(url: str, timeout: float) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)
