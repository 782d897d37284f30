"""Real sites with a TCP service and a real `skupper-observer` reading their nodes, for
the observer's tests (its REST API, metrics, console)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import Mesh, free_port
from servers import HashServer
from test_tcp import add_connector, add_listener, wait_matched

from skupper_actors.security import issue_client_cert

OBSERVER = [sys.executable, "-m", "skupper_actors.observer.main"]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@dataclass
class Observed:
    mesh: Mesh
    port: int  # the listener "hash" at the first site
    http: int  # the observer's
    observer: subprocess.Popen[bytes]
    server: HashServer
    command: list[str]  # how the observer was started (a test may start it again)

    def start_observer(self) -> None:
        """Start the observer again (after the test killed it)."""
        self.observer = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http}/"

    @property
    def api(self) -> str:
        return f"{self.base}api/v2alpha1"

    def results(self, collection: str, query: str = "") -> Any:
        return get_json(f"{self.api}/{collection}" + (f"?{query}" if query else ""))["results"]


@contextmanager
def observed_network(
    folder: Path, sites: list[str], links: list[tuple[str, str]], transport: str = "management"
) -> Iterator[Observed]:
    """``sites`` linked as ``links`` say (dialler first), listener "hash" at the first site,
    connector "hash" at the last (a HashServer), and an observer: reading every node's
    management (``transport="management"``), or attached over AMQP to the first site,
    the only one with an AMQP endpoint (``"amqp"``: it sees the others over the VAN;
    ``"amqps"``: the same over TLS with SASL EXTERNAL, a client certificate)."""
    server = HashServer()
    mesh = Mesh(folder, sites)
    for dialler, accepter in links:
        mesh.link(dialler, accepter)
    if transport == "amqp":
        mesh[sites[0]].config["amqp"] = {"port": free_port()}
        source = ["--router-url", f"amqp://127.0.0.1:{mesh[sites[0]].config['amqp']['port']}"]
    elif transport == "amqps":  # TLS, the observer logs in with a client certificate
        amqp_port = free_port()
        mesh[sites[0]].config["amqp"] = {"port": amqp_port, "tls": True, "auth": "external"}
        issue_client_cert(mesh.certs.ca, "observer").save(folder / "observer-client")
        source = [
            "--router-url", f"amqps://127.0.0.1:{amqp_port}",
            "--router-tls", str(folder / "observer-client"),
        ]  # fmt: skip
    else:
        source = [arg for s in sites for arg in ("--management", mesh[s].config["runtime_dir"])]
    port = add_listener(mesh, sites[0], "hash")
    add_connector(mesh, sites[-1], "hash", server.port)
    http = free_port()
    observed = None
    try:
        mesh.start()
        wait_matched(mesh, sites[0], "hash")
        command = [*OBSERVER, "--listen", f"127.0.0.1:{http}", *source]
        observer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        observed = Observed(mesh, port, http, observer, server, command)
        yield observed
        assert observed.observer.poll() is None, "the observer exited"
    finally:
        if observed is not None:
            observer = observed.observer
            observer.terminate()
            code = observer.wait(10)
            assert code == 0, observer.stderr.read().decode() if observer.stderr else code
        mesh.close()
        server.close()
