"""skupper-router (skrouterd, the C router we are measured against) as a bench path.

Two routers, a -> b, mutual TLS (or plain), one TCP listener at a and one connector at b
per service, the same shape as the skupper-actors ``2tls`` path; optionally a listener
for AMQP clients on each (``clients``, for tools/bench/amqp_bench.py). Installed from
``../shared/anchors/`` (see its README); absent, the bench leaves its columns out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchnodes import Ports, Processes, listening, node_env, tail, wait_until

SKROUTERD_PATHS = ("/usr/local/sbin/skrouterd", "/usr/sbin/skrouterd")


def find_skrouterd() -> str | None:
    found = shutil.which("skrouterd")
    if found:
        return found
    return next((p for p in SKROUTERD_PATHS if Path(p).exists()), None)


@dataclass(slots=True)
class SkRouterPath:
    """Two skrouterd processes; ``endpoints`` maps each service's key to a's listener port."""

    folder: Path
    binary: str
    servers: dict[str, int]  # routing key -> the server's port
    ports: Ports
    processes: Processes
    tls: bool = True
    worker_threads: int | None = 1
    endpoints: dict[str, int] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: router name ("a", "b") -> a port for AMQP clients (plain, SASL ANONYMOUS)
    clients: dict[str, int] = field(default_factory=dict)

    def configure(self) -> list[Path]:
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        if self.tls:  # a CA and one certificate per router, DNS name localhost
            subprocess.run(
                [sys.executable, "-m", "skupper_actors.node_cli", "dev-certs", "--out",
                 str(self.folder / "certs"), "a", "b"],
                check=True, capture_output=True, env=node_env(),
            )
        inter = self.ports.take()
        self.endpoints = {key: self.ports.take() for key in self.servers}
        configs = []
        for name in ("a", "b"):
            router: dict[str, object] = {"id": f"router-{name}", "mode": "interior"}
            if self.worker_threads is not None:
                router["workerThreads"] = self.worker_threads
            entities: list[list[object]] = [["router", router]]
            link: dict[str, object] = {"role": "inter-router", "port": str(inter)}
            if self.tls:
                certs = self.folder / "certs" / name
                entities.append(["sslProfile", {
                    "name": "inter-router-tls", "caCertFile": str(certs / "ca.crt"),
                    "certFile": str(certs / "tls.crt"), "privateKeyFile": str(certs / "tls.key"),
                }])
                link["sslProfile"] = "inter-router-tls"
            if name == "a":
                # proton checks a connector's host against the certificate's DNS names
                entities.append(["connector", {
                    "name": "to-b", "host": "localhost", "socketAddressFamily": "IPv4", **link,
                }])
                entities += [
                    ["tcpListener", {"name": key, "address": key, "host": "127.0.0.1",
                                     "port": str(port)}]
                    for key, port in self.endpoints.items()
                ]
            else:
                access: dict[str, object] = {"name": "inter-router", "host": "127.0.0.1", **link}
                if self.tls:
                    access.update(authenticatePeer=True, saslMechanisms="EXTERNAL")
                entities.append(["listener", access])
                entities += [
                    ["tcpConnector", {"name": key, "address": key, "host": "127.0.0.1",
                                      "port": str(port)}]
                    for key, port in self.servers.items()
                ]
            if name in self.clients:
                entities.append(["listener", {
                    "name": "clients", "role": "normal", "host": "127.0.0.1",
                    "port": str(self.clients[name]), "saslMechanisms": "ANONYMOUS",
                    "authenticatePeer": False,
                }])
            path = self.folder / f"{name}.json"
            path.write_text(json.dumps(entities, indent=1))
            configs.append(path)
        return configs

    def start(self, ready: dict[str, object], timeout: float = 30.0) -> None:
        """Start both routers; ``ready[key]()`` proves a service answers through them."""
        for config in self.configure():
            log = self.folder / f"{config.stem}.log"
            self.procs.append(self.processes.start(
                [self.binary, "-c", str(config)], log, cwd=self.folder,
                stdout=subprocess.DEVNULL,
            ))
        ports = [*self.endpoints.values(), *self.clients.values()]
        wait_until(lambda: all(listening(p) for p in ports), timeout,
                   "skupper-router's listeners")

        def answers() -> bool:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"skrouterd exited with {proc.returncode}:\n"
                                       + tail(self.folder / "a.log"))
            return all(bool(check()) for check in ready.values())  # type: ignore[operator]

        wait_until(answers, timeout, "a service to answer through skupper-router")

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            self.processes.stop(proc)
        self.procs.clear()
