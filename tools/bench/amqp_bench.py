"""AMQP messaging benchmark: proton clients through one site, and through two over mTLS.

    python tools/bench/amqp_bench.py [--messages N] [--size BYTES] [--in-flight K]
        [--topology 1node|2tls ...] [--json]

A proton ``Container`` sender at site a sends N (default 20000) messages of BYTES
(default 1024) to the anycast address ``bench``, unsettled, keeping K (default 100) in
flight; a proton receiver (its own process, so the two clients do not share a GIL)
accepts each at site a (``1node``) or at site b, linked to a over mutual TLS
(``2tls``). Reports messages per second and the p50/p99 of send-to-settle latency,
and the CPU seconds each node used.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchnodes import (
    NODE_CMD,
    Ports,
    Processes,
    cpu_seconds,
    node_env,
    wait_until,
)

from skupper_actors.management import ManagementClient

ADDRESS = "bench"


def _receive(url: str, expected: int, ready: Any, finished: Any) -> None:
    from proton.handlers import MessagingHandler
    from proton.reactor import Container

    class Receiver(MessagingHandler):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(prefetch=300)
            self.count = 0

        def on_start(self, event: Any) -> None:
            event.container.create_receiver(event.container.connect(url), ADDRESS)

        def on_link_opened(self, event: Any) -> None:
            ready.set()

        def on_message(self, event: Any) -> None:
            self.count += 1
            if self.count >= expected:
                finished.set()
                event.connection.close()

    Container(Receiver()).run()


def _send(url: str, count: int, size: int, in_flight: int) -> dict[str, float]:
    from proton import Message
    from proton.handlers import MessagingHandler
    from proton.reactor import Container

    body = b"x" * size
    latencies: list[float] = []

    class Sender(MessagingHandler):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.sent = 0
            self.settled = 0
            self.started = 0.0
            self.at: dict[Any, float] = {}

        def on_start(self, event: Any) -> None:
            event.container.create_sender(event.container.connect(url), ADDRESS)

        def on_sendable(self, event: Any) -> None:
            if not self.started:
                self.started = time.monotonic()
            sender = event.sender
            while sender.credit and self.sent < count and self.sent - self.settled < in_flight:
                self.at[sender.send(Message(body=body))] = time.monotonic()
                self.sent += 1

        def on_settled(self, event: Any) -> None:
            latencies.append(time.monotonic() - self.at.pop(event.delivery))
            self.settled += 1
            if self.settled >= count:
                self.finished = time.monotonic()
                event.connection.close()
            else:
                self.on_sendable(event)

    sender = Sender()
    Container(sender).run()
    seconds = sender.finished - sender.started
    ordered = sorted(latencies)
    return {
        "messages": count,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(count / seconds, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
    }


def _configure(name: str, folder: Path, ports: Ports) -> tuple[list[Path], dict[str, int]]:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    sites = ["a", "b"] if name == "2tls" else ["a"]
    if name == "2tls":
        subprocess.run(
            [*NODE_CMD, "dev-certs", "--out", str(folder / "certs"), *sites],
            check=True,
            capture_output=True,
            env=node_env(),
        )
    inter = {site: ports.take() for site in sites}
    amqp = {site: ports.take() for site in sites}
    configs = []
    for site in sites:
        router: dict[str, Any] = {"host": "127.0.0.1", "port": inter[site]}
        if name == "2tls":
            router["tls"] = {"credentials": str(folder / "certs" / site)}
        else:
            router["plaintext"] = True
        config: dict[str, Any] = {
            "site": site,
            "runtime_dir": str(folder / "run" / site),
            "inter_router": router,
            "amqp": {"port": amqp[site]},
        }
        if site == "a" and name == "2tls":
            config["links"] = [{"name": "to-b", "host": "127.0.0.1", "port": inter["b"]}]
        path = folder / f"{site}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        configs.append(path)
    return configs, amqp


def run(name: str, args: argparse.Namespace, ports: Ports, processes: Processes) -> dict[str, Any]:
    folder = Path("/tmp") / f"amqp-bench-{name}"
    configs, amqp = _configure(name, folder, ports)
    nodes = {
        path.stem: processes.start(
            [*NODE_CMD, "run", "-c", str(path), "--log-json", "--log-level", "warning"],
            folder / f"{path.stem}.log",
            env=node_env(),
            stdout=subprocess.DEVNULL,
        )
        for path in configs
    }
    try:
        for site in nodes:
            client = ManagementClient(folder / "run" / site, timeout=1)
            wait_until(lambda c=client: c.status().router.id, 30, f"node {site}")
        egress = "b" if name == "2tls" else "a"
        ready = multiprocessing.Event()
        finished = multiprocessing.Event()
        receiver = multiprocessing.Process(
            target=_receive,
            args=(f"amqp://127.0.0.1:{amqp[egress]}", args.messages, ready, finished),
            daemon=True,
        )
        receiver.start()
        assert ready.wait(20), "the receiver did not attach"
        ingress = ManagementClient(folder / "run" / "a", timeout=1)

        def routed() -> bool:
            known = {a.address: a for a in ingress.status().addresses}
            found = known.get(f"_skupper/amqp/{ADDRESS}")
            return found is not None and (found.local or egress in found.routers)

        wait_until(routed, 30, "the address to reach site a")
        cpu_before = {site: cpu_seconds(proc.pid) for site, proc in nodes.items()}
        result = _send(f"amqp://127.0.0.1:{amqp['a']}", args.messages, args.size, args.in_flight)
        finished.wait(30)
        receiver.join(10)
        result["node_cpu_s"] = {
            site: round(cpu_seconds(proc.pid) - cpu_before[site], 2) for site, proc in nodes.items()
        }
        return {"topology": name, **result}
    finally:
        for proc in nodes.values():
            processes.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--topology", action="append", choices=["1node", "2tls"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ports = Ports()
    processes = Processes()
    results = []
    try:
        for name in args.topology or ["1node", "2tls"]:
            results.append(run(name, args, ports, processes))
    finally:
        processes.stop_all()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'topology':10} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8}  node CPU s")
    for r in results:
        print(
            f"{r['topology']:10} {r['msgs_per_s']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8}  "
            f"{r['node_cpu_s']}"
        )


if __name__ == "__main__":
    main()
