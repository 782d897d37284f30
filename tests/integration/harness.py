"""Real skupper-node processes on 127.0.0.1 for integration tests.

Ports come from a range below Linux's ephemeral range (32768-60999), so the kernel never
hands one of them to another socket while a test holds it; within a session they are
handed out once each. Each node logs JSON lines to ``<test folder>/<site>.log``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from skupper_actors.management import ManagementClient, ManagementError, NodeStatus
from skupper_actors.security import generate_dev_mesh

_ports = itertools.count(20000 + (os.getpid() % 500) * 20)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, never returned twice per session."""
    for port in _ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (ManagementError, OSError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)


def limit_files(count: int) -> Callable[[], None]:
    """A ``preexec_fn`` giving the child at most ``count`` open files (as systemd user
    units and supervisord usually do: 1024)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return apply


class NodeProcess:
    """One site: its config file, its process, its management client."""

    def __init__(self, mesh: Mesh, site: str, port: int, config: dict[str, Any]) -> None:
        self.mesh = mesh
        self.site = site
        self.port = port
        self.config = config
        self.config_path = mesh.folder / f"{site}.yaml"
        self.runtime_dir = mesh.folder / "run" / site
        self.log_path = mesh.folder / f"{site}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = ManagementClient(self.runtime_dir, timeout=2)
        self.nofile: int | None = None  # the node's open-file limit (soft and hard)

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))

    def start(self, wait: bool = True) -> NodeProcess:
        self.write_config()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "skupper_actors.node_cli",
                "run",
                "-c",
                str(self.config_path),
                "--log-json",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if self.nofile is None else limit_files(self.nofile),
        )
        log.close()
        if wait:
            wait_until(self.ready, 20, what=f"node {self.site} to answer management")
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"node {self.site} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )
        return self.status().router.id == self.site

    def status(self) -> NodeStatus:
        return self.client.status()

    def routes(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        return {r.router: (r.cost, r.next_hops) for r in self.status().routers}

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 10) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def rss_kib(self) -> int:
        assert self.proc is not None
        return rss_kib(self.proc.pid)


def rss_kib(pid: int) -> int:
    """A process's resident set size, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Mesh:
    """A set of sites with certificates from one CA, in one test folder."""

    def __init__(
        self,
        folder: Path,
        sites: Iterable[str],
        *,
        hello_interval: float = 1.0,
        hello_max_age: float = 3.0,
        plaintext: bool = False,
    ) -> None:
        self.folder = folder
        self.sites = list(sites)
        self.certs = generate_dev_mesh(folder / "certs", self.sites)
        self.nodes: dict[str, NodeProcess] = {}
        for site in self.sites:
            port = free_port()
            inter: dict[str, Any] = {"host": "127.0.0.1", "port": port}
            if plaintext:
                inter["plaintext"] = True
            else:
                inter["tls"] = {"credentials": str(self.certs.site_folder(site))}
            config = {
                "site": site,
                "runtime_dir": str(folder / "run" / site),
                "inter_router": inter,
                "links": [],
                "routing": {"hello_interval": hello_interval, "hello_max_age": hello_max_age},
            }
            self.nodes[site] = NodeProcess(self, site, port, config)

    def __getitem__(self, site: str) -> NodeProcess:
        return self.nodes[site]

    def link(self, source: str, target: str, cost: int = 1, port: int | None = None) -> None:
        """Configure an outgoing link (before the source starts); ``port`` e.g. a proxy's."""
        self.nodes[source].config["links"].append(
            {
                "name": f"to-{target}",
                "host": "127.0.0.1",
                "port": port or self.nodes[target].port,
                "cost": cost,
            }
        )

    def serve(self, site: str, routing_key: str, port: int = 9) -> None:
        """Declare a connector at ``site`` (its routing key becomes an address there)."""
        self.nodes[site].config.setdefault("connectors", []).append(
            {"name": routing_key, "routing_key": routing_key, "host": "127.0.0.1", "port": port}
        )

    def start(self) -> Mesh:
        for node in self.nodes.values():
            node.start(wait=False)
        for node in self.nodes.values():
            wait_until(node.ready, 20, what=f"node {node.site} to answer management")
        return self

    def wait_converged(
        self, expected: dict[str, dict[str, tuple[int, tuple[str, ...]]]], timeout: float = 15
    ) -> None:
        """Wait until every node's routes equal ``expected[site]``."""

        def converged() -> bool:
            return all(self.nodes[site].routes() == routes for site, routes in expected.items())

        try:
            wait_until(converged, timeout, interval=0.1, what="routes to converge")
        except AssertionError:
            actual = {}
            for site in expected:
                try:
                    actual[site] = self.nodes[site].routes()
                except ManagementError as error:
                    actual[site] = str(error)  # type: ignore[assignment]
            raise AssertionError(
                f"routes did not converge:\nexpected {expected}\nactual   {actual}"
            ) from None

    def close(self) -> None:
        for node in self.nodes.values():
            if node.alive:
                try:
                    node.signal(signal.SIGCONT)
                    node.stop(timeout=5)
                except subprocess.TimeoutExpired:
                    node.kill()


def expected_routes(
    sites: Iterable[str], edges: dict[tuple[str, str], int]
) -> dict[str, dict[str, tuple[int, tuple[str, ...]]]]:
    """Plain reference: for each site, every other reachable site's cost and next hops.

    ``edges`` maps an undirected (a, b) pair to its cost. Next hops are all neighbours
    that start a shortest path (equal-cost alternatives included), sorted.
    """
    names = list(sites)
    inf = float("inf")
    dist = {a: {b: (0 if a == b else inf) for b in names} for a in names}
    for (a, b), cost in edges.items():
        dist[a][b] = min(dist[a][b], cost)
        dist[b][a] = min(dist[b][a], cost)
    for k in names:
        for i in names:
            for j in names:
                if dist[i][k] + dist[k][j] < dist[i][j]:
                    dist[i][j] = dist[i][k] + dist[k][j]
    neighbours: dict[str, dict[str, int]] = {a: {} for a in names}
    for (a, b), cost in edges.items():
        neighbours[a][b] = min(cost, neighbours[a].get(b, cost))
        neighbours[b][a] = min(cost, neighbours[b].get(a, cost))
    table: dict[str, dict[str, tuple[int, tuple[str, ...]]]] = {}
    for src in names:
        table[src] = {}
        for dst in names:
            if dst == src or dist[src][dst] == inf:
                continue
            hops = sorted(
                n for n, c in neighbours[src].items() if c + dist[n][dst] == dist[src][dst]
            )
            table[src][dst] = (int(dist[src][dst]), tuple(hops))
    return table


class LinkProxy:
    """A TCP relay between two nodes that a test can cut (a link fault, no root needed)."""

    def __init__(self, target_port: int) -> None:
        import threading

        self.target_port = target_port
        self.port = free_port()
        self._threading = threading
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._flowing = threading.Event()
        self._flowing.set()
        self.open()

    def open(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        self._thread = self._threading.Thread(target=self._accept, args=(server,), daemon=True)
        self._thread.start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def stall(self) -> None:
        """Stop relaying bytes but keep the connections open (a silent link)."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and reset the existing ones."""
        if self._server is not None:
            # shutdown wakes the thread blocked in accept(); close alone would not on Linux
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self._flowing.set()
        self.cut()
