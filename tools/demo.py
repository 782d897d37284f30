"""The README's main job: a four-site VAN on loopback, a real web service across it.

    west ---- north        inter-router links over mutual TLS (one CA, one certificate
     |   \\      |          per site), link-state routing with costs;
     |     \\    |          Python's http.server runs at "east" behind a connector;
    south ---- east         a listener at "west" reaches it through the mesh.

Run: python tools/demo.py [--keep] [--folder DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from skupper_actors.management import ManagementClient, ManagementError
from skupper_actors.security import generate_dev_mesh

SITES = ["west", "north", "east", "south"]
LINKS = [("west", "north", 1), ("north", "east", 1), ("east", "south", 1), ("south", "west", 1),
         ("west", "east", 3)]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_web_server(folder: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder))  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ManagementError, OSError, StopIteration):
            value = predicate()
            if value:
                return value
        time.sleep(0.1)
    raise SystemExit(f"demo: timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the sites running")
    parser.add_argument("--folder", help="work folder (default: a new temporary folder)")
    args = parser.parse_args()
    folder = Path(args.folder or tempfile.mkdtemp(prefix="skupper-demo-")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {folder}")

    certs = generate_dev_mesh(folder / "certs", SITES)
    www = folder / "www"
    www.mkdir(exist_ok=True)
    payload = os.urandom(4 << 20)
    (www / "payload.bin").write_bytes(payload)
    (www / "index.html").write_text("<h1>hello from east, across the VAN</h1>\n")
    web, web_port = start_web_server(www)
    ports = {site: free_port() for site in SITES}
    listener_port = free_port()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for site in SITES:
        config = {
            "site": site,
            "runtime_dir": str(folder / "run" / site),
            "inter_router": {
                "host": "127.0.0.1",
                "port": ports[site],
                "tls": {"credentials": str(certs.site_folder(site))},
            },
            "links": [
                {"name": f"to-{b}", "host": "127.0.0.1", "port": ports[b], "cost": cost}
                for a, b, cost in LINKS
                if a == site
            ],
        }
        if site == "east":
            config["connectors"] = [
                {"name": "web", "routing_key": "web", "host": "127.0.0.1", "port": web_port}
            ]
        if site == "west":
            config["listeners"] = [
                {"name": "web", "routing_key": "web", "host": "127.0.0.1", "port": listener_port}
            ]
        path = folder / f"{site}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        log = open(folder / f"{site}.log", "wb")  # noqa: SIM115 - the child keeps it
        processes[site] = subprocess.Popen(
            [sys.executable, "-m", "skupper_actors.node_cli", "run", "-c", str(path), "--log-json"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        print(
            f"started {site:<6} pid {processes[site].pid:<7} inter-router 127.0.0.1:{ports[site]}"
        )
    clients = {site: ManagementClient(folder / "run" / site, timeout=2) for site in SITES}
    try:
        wait(lambda: all(clients[s].status() for s in SITES), 30, "the nodes to start")
        started = time.monotonic()
        degree = {s: sum(s in (a, b) for a, b, _ in LINKS) for s in SITES}

        def converged() -> bool:
            for site in SITES:
                status = clients[site].status()
                up = sum(1 for x in status.links if x.state == "up")
                if up != degree[site] or len(status.routers) != len(SITES) - 1:
                    return False
            return True

        wait(converged, 30, "every link to come up and the routers to converge")
        print(
            f"\nall links up and routes converged {time.monotonic() - started:.2f} s after the"
            " last node started (links retry with exponential back-off)\n"
        )
        for site in SITES:
            status = clients[site].status()
            links = ", ".join(f"{x.peer}({x.cost})" for x in status.links if x.state == "up")
            print(f"{site}: links up to {links}")
            print(f"  {'router':<8}{'cost':>5}  next hop(s)")
            for route in status.routers:
                print(f"  {route.router:<8}{route.cost:>5}  {', '.join(route.next_hops)}")
        wait(
            lambda: next(a for a in clients["west"].status().adaptors if a.name == "web").matched,
            15,
            "the web listener to find its connector",
        )
        url = f"http://127.0.0.1:{listener_port}"
        print(f"\nfetching {url}/ through west -> ... -> east:")
        with urllib.request.urlopen(f"{url}/", timeout=10) as response:
            print("  " + response.read().decode().strip())
        started = time.monotonic()
        with urllib.request.urlopen(f"{url}/payload.bin", timeout=30) as response:
            fetched = response.read()
        elapsed = time.monotonic() - started
        same = hashlib.sha256(fetched).digest() == hashlib.sha256(payload).digest()
        print(
            f"  payload.bin: {len(fetched):,} bytes in {elapsed * 1000:.0f} ms, "
            f"SHA-256 {'matches' if same else 'DIFFERS'}"
        )
        west = next(a for a in clients["west"].status().adaptors if a.name == "web")
        print(
            f"  listener 'web' at west: {west.opened} connections, {west.octets_out:,} bytes "
            f"delivered, first byte after {west.first_byte_ms or 0:.1f} ms on average"
        )
        if not same:
            return 1
        if args.keep:
            print(f"\nsites left running; logs and configs in {folder}; Ctrl-C stops them")
            signal.pause()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in processes.values():
            proc.send_signal(signal.SIGTERM)
        for proc in processes.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        web.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
