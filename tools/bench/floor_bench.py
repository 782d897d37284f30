#!/usr/bin/env python3
"""The floor of this design: a minimal two-process gevent relay, measured beside the nodes.

    python tools/bench/floor_bench.py [--seconds 4] [--repeats 3] [--pgbench]

What would a router cost per small request if it did nothing but move bytes, in Python on
gevent, over one mutual-TLS connection between two processes? This bench runs such a
relay (``--relay``: a few dozen lines, no AMQP, no flow control, no records, no error
handling worth the name: never a product) and the two-site mTLS path of ``tcp_bench``
side by side, with the same echo client, and prints the routers' CPU per 64-byte echo
round trip (both processes) and the echo p50. With ``--pgbench`` it also runs
``pgbench -S -c 8`` through both (PostgreSQL started by ``app_bench``'s servers).

The relay reads client sockets and the link from watcher callbacks, frames each chunk
with an 8-byte header (stream id, length), encrypts what one loop pass gathered through
memory BIOs and sends it in one write: the shape of the nodes' data path, minus
everything a VAN adds. What the nodes spend above it is the price of the protocol
(proton's engine, AMQP framing, streams, windows, vanflow records) and of the actors;
docs/adr/0021 (second addendum) has the numbers.

A second floor relay, ``floor+proton``, is the same program with the framing done by
proton's engine instead of an 8-byte header (a sending link per connection and
direction, one delivery streamed on it; ``pn_link_send`` and ``pn_link_recv`` through
the same cffi module the nodes use): the floor of any design that drives proton from
Python, so that what the nodes spend splits into proton's share and their own.

When skupper-router is installed (``../shared/anchors/``) its two-router mTLS path
(one worker thread) is measured in the same rounds. Every path's CPU is also given
split into user space and the kernel: the kernel's share (sockets, wake-ups) is what
any relay of this shape pays; the user-space share is the price of the language and
the design.
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket
import ssl
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

_FRAME = struct.Struct(">II")  # stream id, payload length (0: the stream ended)
_PROTON_BUFFER = 1 << 18  # the proton relay's output and delivery reads, at most


# -- the relay (a child process) -------------------------------------------------------
def relay(role: str, listen: int, to: int, certs: Path, kind: str = "bytes") -> None:
    """``a``: clients on ``listen``, the link to ``to``; ``b``: the link on ``listen``,
    connections to the server on ``to``."""
    import gevent
    from gevent import get_hub

    loop = get_hub().loop
    conns: dict[int, Conn] = {}

    class Link:
        def __init__(self, sock: socket.socket, server_side: bool) -> None:
            context = ssl.SSLContext(
                ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT
            )
            context.load_cert_chain(certs / "cert.pem", certs / "key.pem")
            context.load_verify_locations(certs / "cert.pem")
            context.verify_mode = ssl.CERT_REQUIRED
            context.check_hostname = False
            self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side)
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    if self.outgoing.pending:
                        sock.sendall(self.outgoing.read())
                    self.incoming.write(sock.recv(65536))
            if self.outgoing.pending:
                sock.sendall(self.outgoing.read())
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self.tls = sock, tls._sslobj  # type: ignore[attr-defined]
            self.out: list[bytes] = []
            self.due = False
            self.rest = b""
            self.watcher = loop.io(sock.fileno(), 1)
            self.watcher.start(self.readable)

        def send(self, sid: int, data: bytes) -> None:
            self.out += (_FRAME.pack(sid, len(data)), data)
            if not self.due:
                self.due = True
                loop.run_callback(self.flush)

        def flush(self) -> None:
            self.due = False
            self.write(b"".join(self.out))
            self.out.clear()

        def write(self, data: Any) -> None:
            self.tls.write(data)
            self.sock.sendall(self.outgoing.read())  # loopback takes it: a floor, not a router

        def readable(self) -> None:
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                return
            if not data:
                os._exit(0)
            self.incoming.write(data)
            chunks = []
            while True:
                try:
                    chunks.append(self.tls.read(262144))
                except ssl.SSLWantReadError:
                    break
            self.received(b"".join(chunks))

        def received(self, plain: bytes) -> None:
            data = self.rest + plain
            pos, end = 0, len(data)
            while end - pos >= 8:
                sid, size = _FRAME.unpack_from(data, pos)
                if end - pos - 8 < size:
                    break
                self.frame(sid, data[pos + 8 : pos + 8 + size])
                pos += 8 + size
            self.rest = data[pos:]

        def frame(self, sid: int, data: bytes) -> None:
            conn = conns.get(sid)
            if conn is None and data and role == "b":
                conn = conns[sid] = Conn(socket.create_connection(("127.0.0.1", to)), sid, self)
            if conn is not None:
                conn.write(data)

    class ProtonLink(Link):
        """The same relay with AMQP framing by proton's engine (``--kind proton``): a
        sending link per connection and direction, one delivery streamed on it, its
        bytes handed to ``pn_link_send`` as they come and read with ``pn_link_recv``;
        nothing else (no headers, windows, acknowledgements or records)."""

        def __init__(self, sock: socket.socket, server_side: bool) -> None:
            from cproton import ffi, lib

            self.lib, self.ffi = lib, ffi
            self.transport = lib.pn_transport()
            if server_side:
                lib.pn_transport_set_server(self.transport)
            self.connection = lib.pn_connection()
            self.collector = lib.pn_collector()
            lib.pn_connection_collect(self.connection, self.collector)
            lib.pn_transport_bind(self.transport, self.connection)
            lib.pn_connection_set_container(self.connection, role.encode())
            self.session = lib.pn_session(self.connection)
            lib.pn_session_set_incoming_capacity(self.session, 1 << 30)
            self.senders: dict[int, object] = {}
            self.sid_of: dict[object, int] = {}
            self.buffer = ffi.new("char[]", _PROTON_BUFFER)
            if not server_side:
                lib.pn_connection_open(self.connection)
                lib.pn_session_open(self.session)
            super().__init__(sock, server_side)
            self.events()
            self.flush()

        def send(self, sid: int, data: bytes) -> None:
            lib = self.lib
            sender = self.senders.get(sid)
            if sender is None:
                if not data:
                    return
                sender = self.senders[sid] = lib.pn_sender(self.session, f"s{sid}".encode())
                lib.pn_terminus_set_address(lib.pn_link_target(sender), b"relay")
                lib.pn_link_open(sender)
                self.tag = self.ffi.from_buffer(b"0")
                lib.pn_delivery(sender, (1, self.tag))
            if data:
                lib.pn_link_send(sender, data, len(data))
            if not self.due:
                self.due = True
                loop.run_callback(self.flush)

        def flush(self) -> None:
            self.due = False
            lib = self.lib
            while (size := min(lib.pn_transport_pending(self.transport), _PROTON_BUFFER)) > 0:
                lib.pn_transport_peek(self.transport, self.buffer, size)
                self.write(self.ffi.buffer(self.buffer, size))
                lib.pn_transport_pop(self.transport, size)

        def received(self, plain: bytes) -> None:
            if plain:
                self.lib.pn_transport_push(self.transport, plain, len(plain))
                self.events()
                self.flush()

        def events(self) -> None:
            lib, ffi = self.lib, self.ffi
            while event := lib.pn_collector_peek(self.collector):
                kind = lib.pn_event_type(event)
                if kind == lib.PN_DELIVERY:
                    link = lib.pn_event_link(event)
                    delivery = lib.pn_link_current(link)
                    if delivery and lib.pn_link_is_receiver(link):
                        while (size := min(lib.pn_delivery_pending(delivery),
                                           _PROTON_BUFFER)) > 0:
                            got = lib.pn_link_recv(link, self.buffer, size)
                            sid = self.sid_of.get(link)
                            if sid is None:
                                name = ffi.string(lib.pn_link_name(link)).decode()
                                sid = self.sid_of[link] = int(name[1:])
                            self.frame(sid, ffi.buffer(self.buffer, got)[:])
                elif kind == lib.PN_CONNECTION_REMOTE_OPEN:
                    if lib.pn_connection_state(self.connection) & lib.PN_LOCAL_UNINIT:
                        lib.pn_connection_open(self.connection)
                elif kind == lib.PN_SESSION_REMOTE_OPEN:
                    if lib.pn_session_state(self.session) & lib.PN_LOCAL_UNINIT:
                        self.session = lib.pn_event_session(event)
                        lib.pn_session_set_incoming_capacity(self.session, 1 << 30)
                        lib.pn_session_open(self.session)
                elif kind == lib.PN_LINK_REMOTE_OPEN:
                    link = lib.pn_event_link(event)
                    if lib.pn_link_is_receiver(link) and lib.pn_link_state(link) & (
                        lib.PN_LOCAL_UNINIT
                    ):
                        lib.pn_terminus_copy(lib.pn_link_target(link),
                                             lib.pn_link_remote_target(link))
                        lib.pn_link_open(link)
                        lib.pn_link_flow(link, 1000)
                lib.pn_collector_pop(self.collector)

    class Conn:
        def __init__(self, sock: socket.socket, sid: int, link: Link) -> None:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self.sid, self.link = sock, sid, link
            self.watcher = loop.io(sock.fileno(), 1)
            self.watcher.start(self.readable)

        def readable(self) -> None:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            self.link.send(self.sid, data)
            if not data:
                self.close()

        def write(self, data: bytes) -> None:
            if data:
                self.sock.sendall(data)  # small replies: the kernel takes them
            else:
                self.close()

        def close(self) -> None:
            self.watcher.stop()
            self.sock.close()
            conns.pop(self.sid, None)

    listener = socket.create_server(("127.0.0.1", listen))
    (certs / f"ready-{role}-{listen}").touch()  # listening (a probe would be taken as the link)
    link_class = ProtonLink if kind == "proton" else Link
    if role == "b":
        link = link_class(listener.accept()[0], server_side=True)
    else:
        link = link_class(socket.create_connection(("127.0.0.1", to)), server_side=False)
        listener.setblocking(False)
        ids = iter(range(1, 1 << 31))

        def accept() -> None:
            while True:
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    return
                sid = next(ids)
                conns[sid] = Conn(sock, sid, link)

        loop.io(listener.fileno(), 1).start(accept)
    gevent.wait()


def _self_signed(folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "floor")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = folder / "key.pem"
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    key_file.chmod(0o600)


# -- the driver ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per echo measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pgbench", action="store_true", help="pgbench -S -c 8 too")
    parser.add_argument("--relay", nargs=4, metavar=("ROLE", "LISTEN", "TO", "CERTS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--relay-kind", choices=("bytes", "proton"), default="bytes",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.relay:
        role, listen, to, certs = args.relay
        relay(role, int(listen), int(to), Path(certs), args.relay_kind)
        return 0

    import app_bench
    import loadgen
    from benchnodes import Endpoints, Ports, Processes, Topology, cpu_split, wait_until
    from skrouter import SkRouterPath, find_skrouterd

    def cpu(pids: list[int]) -> tuple[float, float]:
        splits = [cpu_split(p) for p in pids]
        return sum(u for u, _ in splits), sum(k for _, k in splits)

    work = Path(tempfile.mkdtemp(prefix="floor-bench-"))
    ports, processes = Ports(), Processes()
    _self_signed(work)
    echo = loadgen._listen(0)
    threading.Thread(target=loadgen.serve_echo, args=(echo,), daemon=True).start()
    servers = app_bench.Servers(work, ports, processes) if args.pgbench else None
    try:
        targets = {"echo": echo.getsockname()[1]}
        if servers is not None:
            servers.start()
            targets["pg"] = servers.pg
        paths: dict[str, tuple[dict[str, int], list[int]]] = {}
        kinds = {"floor": "bytes", "floor+proton": "proton"}
        for name, kind in kinds.items():
            floor: dict[str, int] = {}
            pids = []
            for key, target in targets.items():
                link, client = ports.take(), ports.take()
                me = [sys.executable, str(Path(__file__).resolve()), "--relay-kind", kind,
                      "--relay"]
                pids.append(processes.start([*me, "b", str(link), str(target), str(work)],
                                            work / f"relay-{kind}-b-{key}.log").pid)
                wait_until(lambda port=link: (work / f"ready-b-{port}").exists(), 10,
                           f"the {name} relay (b)")
                pids.append(processes.start([*me, "a", str(client), str(link), str(work)],
                                            work / f"relay-{kind}-a-{key}.log").pid)
                wait_until(lambda port=client: (work / f"ready-a-{port}").exists(), 10,
                           f"the {name} relay (a)")
                floor[key] = client
            paths[name] = (floor, pids)
        extra = {"pg": targets["pg"]} if "pg" in targets else {}
        topology = Topology("2tls", work / "nodes", Endpoints(
            sink=ports.take(), echo=targets["echo"], iperf=None, extra=extra,
        ), ports, processes)
        topology.configure()
        topology.start()
        topology.wait_ready(timeout=60)
        assert topology.endpoints is not None
        ours = {"echo": topology.endpoints.echo, **topology.endpoints.extra}
        paths["2tls"] = (ours, list(topology.pids().values()))
        binary = find_skrouterd()
        if binary is not None:
            skr = SkRouterPath(work / "skr", binary, targets, ports, processes)
            skr.start({"echo": lambda: loadgen.echo_latency(skr.endpoints["echo"], 5, 0, 2)})
            paths["skr"] = (dict(skr.endpoints), skr.pids())
        results: dict[str, dict[str, list[float]]] = {p: {} for p in paths}
        for round_no in range(args.repeats):
            names = list(paths) if round_no % 2 == 0 else list(paths)[::-1]
            for name in names:
                endpoints, path_pids = paths[name]
                loadgen.echo_latency(endpoints["echo"], 500, 0, 0.5)  # warm
                before = cpu(path_pids)
                run = loadgen.echo_latency(endpoints["echo"], 10**7, 0, args.seconds)
                user, kernel = (a - b for a, b in zip(cpu(path_pids), before, strict=True))
                results[name].setdefault("echo_p50_us", []).append(run.p50_us)
                per = 1e6 / run.rounds
                results[name].setdefault("echo_cpu_us", []).append((user + kernel) * per)
                results[name].setdefault("echo_user_us", []).append(user * per)
                results[name].setdefault("echo_kernel_us", []).append(kernel * per)
                if "pg" in endpoints:
                    before = cpu(path_pids)
                    pg = app_bench.run_pgbench(endpoints["pg"], 8, int(args.seconds), False)
                    used = sum(cpu(path_pids)) - sum(before)
                    results[name].setdefault("pgbench_tps", []).append(pg["tps"])
                    results[name].setdefault("pgbench_cpu_us", []).append(
                        used / pg["transactions"] * 1e6)
        print(f"floor relays (bytes; proton framing) vs skupper-actors (2 sites, mTLS)"
              f"{' and skupper-router (1 thread, mTLS)' if 'skr' in paths else ''}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}, {args.repeats} repeat(s), medians; "
              f"load average {os.getloadavg()[0]:.2f}")
        print("  (CPU: both router processes together, per unit; user + kernel = cpu)")
        print(f"  {'':16s}" + "".join(f"{name:>14s}" for name in paths)
              + ("   2tls/skr" if "skr" in paths else ""))
        for key in results["floor"]:
            row = {p: statistics.median(results[p][key]) for p in paths}
            line = f"  {key:16s}" + "".join(f"{row[name]:14.1f}" for name in paths)
            if row.get("skr"):
                line += f"   {row['2tls'] / row['skr']:9.2f}"
            print(line)
            runs = "; ".join(f"{p} " + "/".join(f"{x:.1f}" for x in results[p][key]) for p in paths)
            print(f"  {'':16s}({runs})")
    finally:
        processes.stop_all()
    return 0


__all__ = ["main", "relay"]

if __name__ == "__main__":
    raise SystemExit(main())
