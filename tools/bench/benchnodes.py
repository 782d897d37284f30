"""Processes for the TCP benchmark: skupper-node topologies, servers, their clean-up.

Every child runs in its own session (a Ctrl-C reaches only the benchmark, which then
stops them in order) and is told by the kernel to die if the benchmark dies first.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from skupper_actors.management import ManagementClient, ManagementError

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("bench-sink", "bench-echo", "bench-iperf")
NODE_CMD = [sys.executable, "-m", "skupper_actors.node_cli"]
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Ports:
    """Free ports on 127.0.0.1 below the ephemeral range, each handed out once."""

    def __init__(self) -> None:
        self._next = itertools.count(21000 + (os.getpid() % 300) * 30)

    def take(self) -> int:
        for port in self._next:
            if port >= 32768:
                break
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise RuntimeError("no free port below 32768")


def listening(port: int) -> bool:
    """True when something listens on 127.0.0.1:port (read from /proc: no connection made)."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(
            fields[1] == wanted and fields[3] == "0A"
            for fields in (line.split() for line in table.readlines()[1:])
        )


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (ManagementError, OSError) as error:
            last = error
        if time.monotonic() > deadline:
            detail = f" (last error: {last})" if last else ""
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(0.05)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by ``pid``: in user space, in the kernel."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class Processes:
    """Every process the benchmark started; ``stop_all`` ends them (TERM, then KILL)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=kwargs.pop("stdout", out),
                stderr=out,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # safe: no threads run while processes start
                **kwargs,
            )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)


@dataclass(slots=True)
class Endpoints:
    """Where a client connects for each server, on one path."""

    sink: int
    echo: int
    iperf: int | None
    #: more servers by routing key (e.g. ``bench-redis``), each reached through a listener
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Node:
    site: str
    config: Path
    runtime_dir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


@dataclass(slots=True)
class Topology:
    """The nodes of one path: ``1node`` (a), or ``2plain``/``2tls`` (a -> b)."""

    name: str
    folder: Path
    servers: Endpoints
    ports: Ports
    processes: Processes
    node_cmd: list[str] = field(default_factory=list)  # default: this Python's node_cli
    nodes: list[Node] = field(default_factory=list)
    endpoints: Endpoints | None = None

    def configure(self) -> None:
        if self.folder.exists():  # a stale management socket would answer nothing
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        two = self.name != "1node"
        sites = ["a", "b"] if two else ["a"]
        tls = self.name == "2tls"
        if tls:
            certs = self.folder / "certs"
            subprocess.run(
                [sys.executable, "-m", "skupper_actors.node_cli", "dev-certs", "--out",
                 str(certs), *sites],
                check=True, capture_output=True, env=node_env(),
            )
        inter_ports = {site: self.ports.take() for site in sites}
        server_ports = {"bench-sink": self.servers.sink, "bench-echo": self.servers.echo}
        if self.servers.iperf is not None:
            server_ports["bench-iperf"] = self.servers.iperf
        server_ports.update(self.servers.extra)
        listen_ports = {key: self.ports.take() for key in server_ports}
        for site in sites:
            inter: dict[str, Any] = {"host": "127.0.0.1", "port": inter_ports[site]}
            if tls:
                inter["tls"] = {"credentials": str(self.folder / "certs" / site)}
            else:
                inter["plaintext"] = True
            config: dict[str, Any] = {
                "site": site,
                "runtime_dir": str(self.folder / "run" / site),
                "inter_router": inter,
            }
            if site == "a":
                config["listeners"] = [
                    {"name": key, "routing_key": key, "host": "127.0.0.1", "port": port}
                    for key, port in listen_ports.items()
                ]
                if two:
                    config["links"] = [
                        {"name": "to-b", "host": "127.0.0.1", "port": inter_ports["b"], "cost": 1}
                    ]
            if site == sites[-1]:
                config["connectors"] = [
                    {"name": key, "routing_key": key, "host": "127.0.0.1", "port": port}
                    for key, port in server_ports.items()
                ]
            path = self.folder / f"{site}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            self.nodes.append(
                Node(site, path, self.folder / "run" / site, self.folder / f"{site}.log")
            )
        self.endpoints = Endpoints(
            sink=listen_ports["bench-sink"],
            echo=listen_ports["bench-echo"],
            iperf=listen_ports.get("bench-iperf"),
            extra={key: listen_ports[key] for key in self.servers.extra},
        )

    def start(self) -> None:
        for node in self.nodes:
            node.proc = self.processes.start(
                [*(self.node_cmd or NODE_CMD), "run", "-c", str(node.config),
                 "--log-json", "--log-level", "warning"],
                node.log,
                env=node_env(),
                stdout=subprocess.DEVNULL,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.endpoints is not None
        for node in self.nodes:
            answers = functools.partial(
                self._answers, node, ManagementClient(node.runtime_dir, timeout=1)
            )
            wait_until(answers, timeout, f"{self.name}: node {node.site} to answer management")
        ingress = ManagementClient(self.nodes[0].runtime_dir, timeout=1)
        egress_site = self.nodes[-1].site
        keys = [k for k in KEYS if k != "bench-iperf" or self.endpoints.iperf is not None]
        keys += list(self.endpoints.extra)
        wait_until(lambda: self._routed(ingress, egress_site, keys), timeout,
                   f"{self.name}: route and addresses at site a")
        ports = [self.endpoints.sink, self.endpoints.echo, *self.endpoints.extra.values()]
        wait_until(lambda: all(listening(p) for p in ports), timeout,
                   f"{self.name}: listeners to listen")

    def _answers(self, node: Node, client: ManagementClient) -> bool:
        if node.proc is not None and node.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name}: node {node.site} exited with {node.proc.returncode}:\n"
                + tail(node.log)
            )
        return client.status().router.id == node.site

    @staticmethod
    def _routed(client: ManagementClient, egress: str, keys: list[str]) -> bool:
        status = client.status()
        if egress != status.router.id and not any(r.router == egress for r in status.routers):
            return False
        known = {a.address: a for a in status.addresses}
        return all(
            key in known and (known[key].local or egress in known[key].routers) for key in keys
        )

    def pids(self) -> dict[str, int]:
        return {node.site: node.pid for node in self.nodes}

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.proc is not None:
                self.processes.stop(node.proc)

    def log_problems(self) -> list[str]:
        """Warning and error lines from the nodes' logs, and anything that is not JSON."""
        found = []
        for node in self.nodes:
            if not node.log.exists():
                continue
            for line in node.log.read_text(errors="replace").splitlines():
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    found.append(f"{node.site}: {line}")
                    continue
                if isinstance(event, dict) and event.get("level") in ("warning", "error"):
                    found.append(f"{node.site}: {line}")
        return found


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
