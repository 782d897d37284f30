"""The README's main job: a newcomer's tour of skupper-actors, three sites on loopback.

    west <---- middle <---- east        links made with tokens (mutual TLS, each site
      ^ listener "web"         ^        its own CA); Python's http.server runs at east
      | curl                   connector "web" -> http.server

Every step is a real `skupper` command, printed before it runs. The sites live in a
temporary SKUPPER_ACTORS_HOME and are stopped at the end (`--keep` leaves them running).

Run: python tools/demo.py [--keep] [--home DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from skupper_actors.api import Namespace
from skupper_actors.management import ManagementClient

SITES = ("west", "middle", "east")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Tour:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "SKUPPER_ACTORS_HOME": str(home)}
        self.skupper = str(Path(sys.executable).with_name("skupper"))

    def run(self, *args: str, stdin: str | None = None, show: bool = True) -> str:
        line = "skupper " + " ".join(shlex.quote(a) for a in args)
        print(f"\n$ {line}")
        result = subprocess.run(
            [self.skupper, *args], input=stdin, capture_output=True, text=True, env=self.env,
            timeout=120, check=False,
        )  # fmt: skip
        output = (result.stdout + result.stderr).rstrip()
        if show and output:
            print("  " + output.replace("\n", "\n  "))
        if result.returncode != 0:
            raise SystemExit(f"demo: '{line}' failed with exit code {result.returncode}")
        return result.stdout

    def router_access(self, site: str, port: int) -> None:
        self.run("-n", site, "system", "apply", "-f", "-", stdin=(
            "apiVersion: skupper.io/v2alpha1\nkind: RouterAccess\n"
            "metadata: {name: skupper-router}\n"
            f"spec: {{roles: [{{name: inter-router, port: {port}}}], bindHost: 127.0.0.1}}\n"
        ))  # fmt: skip


def serve_web(folder: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    def handler(*args: object) -> http.server.SimpleHTTPRequestHandler:
        return http.server.SimpleHTTPRequestHandler(*args, directory=str(folder))  # type: ignore[arg-type]

    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def print_routes(home: Path) -> None:
    env = {"SKUPPER_ACTORS_HOME": str(home)}
    print("\nthe routing table each router converged to:")
    for site in SITES:
        status = ManagementClient(Namespace.locate(site, environ=env).runtime_dir).status()
        routes = ", ".join(
            f"{r.router} (cost {r.cost} via {'/'.join(r.next_hops)})" for r in status.routers
        )
        print(f"  {site:<7} -> {routes}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the three sites running")
    parser.add_argument("--home", help="SKUPPER_ACTORS_HOME to use (default: a new temp folder)")
    args = parser.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="skupper-tour-")).resolve()
    tour = Tour(home)
    print(f"SKUPPER_ACTORS_HOME={home}  (each site is a namespace folder under it)")
    www = home / "www"
    www.mkdir(parents=True, exist_ok=True)
    payload = os.urandom(8 << 20)
    (www / "payload.bin").write_bytes(payload)
    (www / "index.html").write_text("<h1>Hello from east, two hops away.</h1>\n")
    web, web_port = serve_web(www)
    listen_port = free_port()
    started: list[str] = []
    try:
        for site in SITES:
            if site == "east":
                tour.run("-n", site, "site", "create", site, "--wait", "none")
            else:
                tour.run(
                    "-n", site, "site", "create", site, "--enable-link-access", "--wait", "none"
                )
                tour.router_access(site, free_port())
            tour.run("-n", site, "system", "start")
            started.append(site)
        tokens = home / "tokens"
        tokens.mkdir(exist_ok=True)
        tour.run("-n", "west", "token", "issue", str(tokens / "west.token"))
        tour.run("-n", "middle", "token", "redeem", str(tokens / "west.token"))
        tour.run("-n", "middle", "token", "issue", str(tokens / "middle.token"))
        tour.run("-n", "east", "token", "redeem", str(tokens / "middle.token"))
        tour.run("-n", "east", "connector", "create", "web", str(web_port), "--host", "127.0.0.1")
        tour.run("-n", "west", "listener", "create", "web", str(listen_port), "--wait", "ready")
        url = f"http://127.0.0.1:{listen_port}"
        print(f"\n$ curl {url}/   # west -> middle -> east")
        with urllib.request.urlopen(f"{url}/", timeout=10) as response:
            print("  " + response.read().decode().strip())
        began = time.monotonic()
        with urllib.request.urlopen(f"{url}/payload.bin", timeout=60) as response:
            fetched = response.read()
        elapsed = time.monotonic() - began
        same = hashlib.sha256(fetched).digest() == hashlib.sha256(payload).digest()
        print(
            f"$ curl {url}/payload.bin\n  {len(fetched):,} bytes in {elapsed * 1000:.0f} ms through"
            f" two routers, SHA-256 {'matches' if same else 'DIFFERS'}"
        )
        print_routes(home)
        tour.run("-n", "west", "network", "status")
        tour.run("-n", "west", "listener", "status", "web")
        if not same:
            return 1
        if args.keep:
            print(
                f"\nthe sites keep running. Try:\n  export SKUPPER_ACTORS_HOME={home}\n"
                f"  skupper -n west network status\n  curl {url}/\n"
                "stop them with: skupper -n NAME system stop"
            )
            started.clear()
        return 0
    finally:
        for site in reversed(started):
            tour.run("-n", site, "system", "stop", show=False)
        web.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
