"""AMQP messaging benchmark: proton clients through one site, and through two over mTLS.

    python tools/bench/amqp_bench.py [--messages N] [--size BYTES] [--in-flight K]
        [--topology direct|1node|2tls|skr-2tls ...] [--client cpp|python] [--repeats R]
        [--json]

A proton sender at site a sends N (default 20000) messages of BYTES (default 1024) to
the anycast address ``bench``, unsettled, keeping K (default 100) in flight; a proton
receiver in its own process accepts each at site a (``1node``) or at site b, linked to a
over mutual TLS (``2tls``); ``direct`` is the two clients connected to each other, no
router (what the clients alone can do); ``skr-2tls`` is ``2tls`` through two
skupper-routers (skrouterd 3.5.1, one worker thread each, from ../shared/anchors) instead
of our nodes. Reports messages per second, the p50/p99 of send-to-settle latency, and
CPU per message of each node (router) and each client. ``--repeats R`` runs the
topologies R times over, interleaved (a drift of this shared machine touches each alike),
prints every run and then each topology's medians.

Clients: ``cpp`` (the default) is proton's C++ API (``amqp_client/bench_client.cpp``,
built on first use with g++ against Debian's ``libqpid-proton-cpp12-dev``, which the
benchmark installs with apt-get when missing); it spends about 5 µs of CPU per message.
``python`` is proton's Python ``Container`` with plain handlers and a pre-encoded
message: about 120 µs per message per client, so on two cores the Python clients alone
cap a run at about 9,000 msg/s direct and take most of the CPU through two sites.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
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
from skrouter import SkRouterPath, find_skrouterd

from skupper_actors.management import ManagementClient
from skupper_actors.management.client import ManagementError

ADDRESS = "bench"
CLIENT_SOURCE = Path(__file__).resolve().parent / "amqp_client" / "bench_client.cpp"
CLIENT_HEADERS = Path("/usr/include/proton/messaging_handler.hpp")
#: credit the receiver keeps open (it grants one more per message taken)
PREFETCH = 300
#: seconds a sender may still run after the receiver exited (its last outcomes)
RECEIVER_GRACE = 10
#: a run whose sender is not done after this long (plus a time per message) stalled: it
#: ends with the nodes' counters for the address instead of waiting for ever
STALL_SECONDS = 30
#: seconds the skr-2tls topology waits after the receiver attached (see _run_skupper_router)
SKR_SETTLE = 2.0
STALL_PER_MESSAGE = 0.001


class _Accepting:
    """A proton ``Handler`` that answers a peer's opens (the receiving side of ``direct``)."""

    def on_connection_remote_open(self, event: Any) -> None:
        connection = event.connection
        if connection.state & connection.LOCAL_UNINIT:
            connection.open()

    def on_session_remote_open(self, event: Any) -> None:
        session = event.session
        if session.state & session.LOCAL_UNINIT:
            session.open()

    def on_link_remote_open(self, event: Any) -> None:
        link = event.link
        if link.state & link.LOCAL_UNINIT:
            link.source.copy(link.remote_source)
            link.target.copy(link.remote_target)
            link.open()
            if link.is_receiver:
                link.flow(PREFETCH)


def _receive(url: str, expected: int, ready: Any, finished: Any, listen: bool = False) -> None:
    """Accept ``expected`` messages on ``ADDRESS`` (connect to ``url``, or listen on it)."""
    from proton import Delivery, Handler
    from proton.reactor import Container

    class Receiver(_Accepting, Handler):  # type: ignore[misc]
        def __init__(self) -> None:
            self.count = 0
            self.acceptor: Any = None

        def on_reactor_init(self, event: Any) -> None:
            container = event.container
            if listen:
                self.acceptor = container.listen(url)
                ready.set()
            else:
                link = container.create_receiver(container.connect(url), ADDRESS)
                link.flow(PREFETCH)

        def on_link_remote_open(self, event: Any) -> None:
            super().on_link_remote_open(event)
            ready.set()

        def on_delivery(self, event: Any) -> None:
            delivery = event.delivery
            if delivery.partial:
                return
            link = delivery.link
            link.recv(delivery.pending)
            delivery.update(Delivery.ACCEPTED)
            delivery.settle()
            link.flow(1)
            self.count += 1
            if self.count >= expected:
                finished.set()
                event.connection.close()
                if self.acceptor is not None:
                    self.acceptor.close()

    Container(Receiver()).run()


def _send(url: str, count: int, size: int, in_flight: int) -> dict[str, float]:
    """Send ``count`` messages, ``in_flight`` unsettled at most; time each to its settle."""
    from proton import Handler, Message
    from proton.reactor import Container

    encoded = Message(address=ADDRESS, body=b"x" * size).encode()
    latencies: list[float] = []
    clock = time.monotonic

    class Sender(Handler):  # type: ignore[misc]
        def __init__(self) -> None:
            self.sent = 0
            self.settled = 0
            self.started = 0.0
            self.finished = 0.0
            self.at: dict[Any, float] = {}

        def on_reactor_init(self, event: Any) -> None:
            event.container.create_sender(event.container.connect(url), ADDRESS)

        def on_link_flow(self, event: Any) -> None:
            self._pump(event.link)

        def _pump(self, sender: Any) -> None:
            if not self.started:
                self.started = clock()
            while sender.credit and self.sent < count and self.sent - self.settled < in_flight:
                self.sent += 1
                delivery = sender.delivery(str(self.sent))
                sender.stream(encoded)
                sender.advance()
                self.at[delivery] = clock()

        def on_delivery(self, event: Any) -> None:
            delivery = event.delivery
            if not (delivery.updated and delivery.remote_state):
                return
            latencies.append(clock() - self.at.pop(delivery))
            delivery.settle()
            self.settled += 1
            if self.settled >= count:
                self.finished = clock()
                event.connection.close()
            else:
                self._pump(delivery.link)

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


def build_client() -> Path:
    """The C++ client, built once per source version (installs its headers if missing)."""
    source = CLIENT_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:12]
    binary = Path("/tmp") / f"skupper-actors-bench-client-{digest}"
    if binary.exists():
        return binary
    if not CLIENT_HEADERS.exists():
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "g++", "libqpid-proton-cpp12-dev"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    partial = binary.with_suffix(".partial")
    subprocess.run(
        ["g++", "-O2", "-std=c++17", "-o", str(partial), str(CLIENT_SOURCE), "-lqpid-proton-cpp"],
        check=True,
    )
    partial.rename(binary)
    return binary


def _exited(pid: int) -> bool:
    """Has child ``pid`` exited? It stays a zombie (``Popen.poll`` would reap it, and
    its /proc entry, with its CPU times, would be gone)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


class CppClients:
    """The receiver runs while the sender sends; CPU per message of each, from /proc."""

    def __init__(self, binary: Path, receive_args: list[str]) -> None:
        self.binary = binary
        self.messages = 0
        #: what the nodes say about the address, when a run stalls (set by ``run``)
        self.describe_nodes: Callable[[], str] = lambda: "no nodes"
        self.receiver = subprocess.Popen(
            [str(binary), *receive_args], stdout=subprocess.PIPE, text=True
        )
        assert self.receiver.stdout is not None
        line = self.receiver.stdout.readline()
        assert line.strip() == "ready", f"the receiver did not attach: {line!r}"

    def send(self, url: str, args: argparse.Namespace) -> dict[str, Any]:
        receiver_before = cpu_seconds(self.receiver.pid)
        self.messages = args.messages
        command = [str(self.binary), "send", url, ADDRESS]
        command += [str(args.messages), str(args.size), str(args.in_flight)]
        sender = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert sender.stdout is not None
        status, usage = self._wait_sender(sender)
        out = sender.stdout.read()
        sender.returncode = os.waitstatus_to_exitcode(status)
        assert sender.returncode == 0, f"the sender failed ({sender.returncode})"
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        receiver_cpu = cpu_seconds(self.receiver.pid) - receiver_before
        if result["accepted"] != args.messages:
            raise RuntimeError(
                f"{result['accepted']} of {args.messages} messages accepted: "
                f"{self.describe_nodes()}"
            )
        try:
            self.receiver.wait(30)
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"every message accepted but the receiver had not all of them 30 s later: "
                f"{self.describe_nodes()}"
            ) from None
        sender_cpu = usage.ru_utime + usage.ru_stime
        result["client_cpu_us_per_msg"] = {
            "sender": round(sender_cpu / args.messages * 1e6, 1),
            "receiver": round(receiver_cpu / args.messages * 1e6, 1),
        }
        return result

    def _wait_sender(self, sender: subprocess.Popen[str]) -> tuple[int, Any]:
        """The sender's exit status and own rusage, once it exits. A receiver that exits
        while the sender still waits (for credit, or outcomes) ends the run after
        RECEIVER_GRACE seconds with an error, instead of a run that never ends."""
        gone = None
        deadline = time.monotonic() + STALL_SECONDS + self.messages * STALL_PER_MESSAGE
        while True:
            pid, status, usage = os.wait4(sender.pid, os.WNOHANG)
            if pid:
                return status, usage
            if time.monotonic() > deadline:
                seen = self.describe_nodes()  # while the sender is still attached
                sender.kill()
                os.wait4(sender.pid, 0)
                raise RuntimeError(f"the run stalled: {seen}")
            # exited? (not reaped: its CPU is read from /proc once the sender is done)
            if gone is None and _exited(self.receiver.pid):
                gone = time.monotonic()
            if gone is not None and time.monotonic() - gone > RECEIVER_GRACE:
                sender.kill()
                os.wait4(sender.pid, 0)
                raise RuntimeError(
                    f"the receiver exited (code {self.receiver.returncode}) and the sender "
                    f"had not finished {RECEIVER_GRACE} s later: see the nodes' logs"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.receiver.poll() is None:
            self.receiver.kill()
            self.receiver.wait(5)


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


class PythonClients:
    """The Python receiver in its own process (no shared GIL); the sender runs here."""

    def __init__(self, receive_url: str, args: argparse.Namespace, listen: bool = False) -> None:
        self.clients = _python_receiver(receive_url, args, listen)

    def send(self, url: str, args: argparse.Namespace) -> dict[str, Any]:
        return _measured_send(url, args, self.clients)

    def stop(self) -> None:
        receiver = self.clients["receiver"]
        if receiver.is_alive():
            receiver.kill()


def _python_receiver(receive_url: str, args: argparse.Namespace, listen: bool) -> dict[str, Any]:
    ready = multiprocessing.Event()
    finished = multiprocessing.Event()
    receiver = multiprocessing.Process(
        target=_receive, args=(receive_url, args.messages, ready, finished, listen), daemon=True
    )
    receiver.start()
    assert ready.wait(20), "the receiver did not attach"
    return {"ready": ready, "finished": finished, "receiver": receiver}


def _measured_send(url: str, args: argparse.Namespace, clients: dict[str, Any]) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    receiver = clients["receiver"]
    receiver_before = cpu_seconds(receiver.pid)
    result = _send(url, args.messages, args.size, args.in_flight)
    after = resource.getrusage(resource.RUSAGE_SELF)
    clients["finished"].wait(30)
    receiver_cpu = cpu_seconds(receiver.pid) - receiver_before
    receiver.join(10)
    sender_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    result["client_cpu_us_per_msg"] = {
        "sender": round(sender_cpu / args.messages * 1e6, 1),
        "receiver": round(receiver_cpu / args.messages * 1e6, 1),
    }
    return result


def _start_clients(args: argparse.Namespace, url: str, listen: bool = False) -> Any:
    if args.client == "python":
        if listen:
            return PythonClients(url, args, listen=True)
        return PythonClients(url, args)
    binary = build_client()
    if listen:
        return CppClients(binary, ["listen", url, str(args.messages)])
    return CppClients(binary, ["receive", url, ADDRESS, str(args.messages)])


def _describe(folder: Path, nodes: dict[str, Any]) -> str:
    """One line: each node's counters for the benchmark's address (or why not)."""
    parts = []
    for site in nodes:
        try:
            status = ManagementClient(folder / "run" / site, timeout=2).status()
        except (ManagementError, OSError) as error:
            parts.append(f"{site}: no status ({error})")
            continue
        for entry in status.messaging:
            if entry.address == ADDRESS:
                parts.append(
                    f"{site}: senders {entry.senders} receivers {entry.receivers} "
                    f"in {entry.delivered_in} out {entry.delivered_out} "
                    f"accepted {entry.accepted} released {entry.released} "
                    f"dropped {entry.dropped}"
                )
    return "; ".join(parts) + f" (logs in {folder})"


def _run_skupper_router(
    args: argparse.Namespace, ports: Ports, processes: Processes
) -> dict[str, Any]:
    """The same clients through two skupper-routers (skrouterd, one worker thread each),
    linked over mutual TLS: the sender at a, the receiver at b."""
    binary = find_skrouterd()
    if binary is None:
        raise RuntimeError("skr-2tls needs skrouterd: see ../shared/anchors/README.md")
    path = SkRouterPath(
        Path("/tmp") / "amqp-bench-skr-2tls", binary, {}, ports, processes,
        clients={"a": ports.take(), "b": ports.take()},
    )  # fmt: skip
    try:
        path.start({})
        clients = _start_clients(args, f"amqp://127.0.0.1:{path.clients['b']}")
        # no status to ask: give the receiver's address a moment to reach router a (the
        # sender would wait for credit meanwhile, counted in its time)
        time.sleep(SKR_SETTLE)
        pids = dict(zip(("a", "b"), path.pids(), strict=True))
        cpu_before = {site: cpu_seconds(pid) for site, pid in pids.items()}
        try:
            result = clients.send(f"amqp://127.0.0.1:{path.clients['a']}", args)
        finally:
            clients.stop()
        used = {site: cpu_seconds(pid) - cpu_before[site] for site, pid in pids.items()}
    finally:
        path.stop()
    result["node_cpu_s"] = {site: round(cpu, 2) for site, cpu in used.items()}
    result["node_cpu_us_per_msg"] = {
        site: round(cpu / args.messages * 1e6, 1) for site, cpu in used.items()
    }
    return {"topology": "skr-2tls", **result}


def run(name: str, args: argparse.Namespace, ports: Ports, processes: Processes) -> dict[str, Any]:
    if name == "direct":  # the clients alone: the receiver listens, the sender connects
        url = f"127.0.0.1:{ports.take()}"
        clients = _start_clients(args, url, listen=True)
        try:
            result = clients.send(f"amqp://{url}", args)
        finally:
            clients.stop()
        return {"topology": name, **result, "node_cpu_s": {}, "node_cpu_us_per_msg": {}}
    if name == "skr-2tls":
        return _run_skupper_router(args, ports, processes)
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
        clients = _start_clients(args, f"amqp://127.0.0.1:{amqp[egress]}")
        ingress = ManagementClient(folder / "run" / "a", timeout=1)

        def routed() -> bool:
            known = {a.address: a for a in ingress.status().addresses}
            found = known.get(f"_skupper/amqp/{ADDRESS}")
            return found is not None and (found.local or egress in found.routers)

        wait_until(routed, 30, "the address to reach site a")
        if isinstance(clients, CppClients):
            clients.describe_nodes = lambda: _describe(folder, nodes)
        cpu_before = {site: cpu_seconds(proc.pid) for site, proc in nodes.items()}
        try:
            result = clients.send(f"amqp://127.0.0.1:{amqp['a']}", args)
        finally:
            clients.stop()
        used = {site: cpu_seconds(proc.pid) - cpu_before[site] for site, proc in nodes.items()}
        result["node_cpu_s"] = {site: round(cpu, 2) for site, cpu in used.items()}
        result["node_cpu_us_per_msg"] = {
            site: round(cpu / args.messages * 1e6, 1) for site, cpu in used.items()
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
    parser.add_argument(
        "--topology", action="append", choices=["direct", "1node", "2tls", "skr-2tls"]
    )
    parser.add_argument("--client", choices=["cpp", "python"], default="cpp")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    ports = Ports()
    processes = Processes()
    results = []
    try:
        for _ in range(args.repeats):
            for name in args.topology or ["direct", "1node", "2tls"]:
                results.append(run(name, args, ports, processes))
    except (RuntimeError, TimeoutError) as error:  # a run that cannot finish: one line
        sys.exit(f"amqp_bench: {error}")
    finally:
        processes.stop_all()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'topology':10} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8}  "
        "node CPU µs/msg            client CPU µs/msg"
    )
    for r in results:
        _print_row(r)
    if args.repeats > 1:
        print(f"medians of {args.repeats}:")
        for name in dict.fromkeys(r["topology"] for r in results):
            _print_row(_medians([r for r in results if r["topology"] == name]))


def _print_row(r: dict[str, Any]) -> None:
    nodes = " ".join(f"{k}={v}" for k, v in r["node_cpu_us_per_msg"].items()) or "-"
    clients = r["client_cpu_us_per_msg"]
    print(
        f"{r['topology']:10} {r['msgs_per_s']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8}  "
        f"{nodes:26} sender={clients['sender']} receiver={clients['receiver']}"
    )


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of a topology's medians, figure by figure, over its runs."""

    def median(values: list[float], digits: int = 2) -> float:
        return round(statistics.median(values), digits)

    first = runs[0]
    return {
        "topology": first["topology"],
        "msgs_per_s": median([r["msgs_per_s"] for r in runs], 1),
        **{key: median([r[key] for r in runs]) for key in ("p50_ms", "p99_ms")},
        **{
            group: {k: median([r[group][k] for r in runs]) for k in first[group]}
            for group in ("node_cpu_us_per_msg", "client_cpu_us_per_msg")
        },
    }


if __name__ == "__main__":
    main()
