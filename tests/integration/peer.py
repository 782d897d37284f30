"""A hostile but certified router for integration tests, built from our own protocol code.

It holds a certificate from the mesh's CA, opens a real mTLS connection, speaks the
router protocol (open properties, control links, HELLO, LSU, MAU) well enough to become
a two-way neighbour, and then does what a test tells it to: advertise more addresses than
allowed, attach too many links, claim another router's id.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import threading
import time
from typing import Any

from skupper_actors.protocol import amqp
from skupper_actors.protocol.addresses import CONTROL_ADDRESS, MESSAGE_ADDRESS
from skupper_actors.security import Credentials, client_context


class RoguePeer:
    """One connection to ``port``; a reader thread pumps the engine and answers HELLOs."""

    def __init__(
        self, port: int, credentials: Credentials, router_id: str, *, instance: int | None = None
    ) -> None:
        self.router_id = router_id
        self.instance = instance or time.time_ns() // 1_000_000
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock: ssl.SSLSocket = client_context(credentials).wrap_socket(
            raw, server_hostname="127.0.0.1"
        )
        self.sock.settimeout(None)
        self.conn = amqp.AmqpConnection(
            router_id,
            server=False,
            properties={
                "skupper.router-id": router_id,
                "skupper.instance": self.instance,
                "skupper.pv": 1,
            },
        )
        self.lock = threading.RLock()
        self.remote: str | None = None
        self.closed: amqp.ConnectionClosed | None = None
        self.ended = threading.Event()
        self.opened = threading.Event()
        self.two_way = threading.Event()
        self.link_closes: list[amqp.LinkClosed] = []
        self.control: int | None = None
        self.mobile_seq = 0
        self._ls_seq = itertools.count(1)
        with self.lock:
            self.conn.open()
            self._flush()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._hello = threading.Thread(target=self._hellos, daemon=True)
        self._hello.start()

    # -- pumping ---------------------------------------------------------------------------
    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            with contextlib.suppress(OSError):
                self.sock.sendall(data)

    def _read(self) -> None:
        try:
            while data := self.sock.recv(1 << 16):
                with self.lock:
                    self.conn.receive_data(data)
                    self._events()
                    self._flush()
        except (OSError, ValueError):
            pass
        finally:
            self.ended.set()

    def _events(self) -> None:
        for event in self.conn.events():
            if isinstance(event, amqp.ConnectionOpened):
                self.remote = str(event.remote_properties.get("skupper.router-id"))
                self.control = self.conn.open_sender(f"control-{self.router_id}", CONTROL_ADDRESS)
                self.conn.open_sender(f"messages-{self.router_id}", MESSAGE_ADDRESS)
                self.opened.set()
            elif isinstance(event, amqp.LinkOpened) and event.remote_initiated:
                credit = 256 if event.address == CONTROL_ADDRESS else 1024
                self.conn.flow(event.link_id, credit)
            elif isinstance(event, amqp.MessageReceived):
                self.conn.flow(event.link_id, 1)
                body = event.message.body
                if (
                    isinstance(body, dict)
                    and body.get("op") == "HELLO"
                    and self.router_id in body.get("seen", ())
                ):
                    self.two_way.set()
            elif isinstance(event, amqp.LinkClosed):
                self.link_closes.append(event)
            elif isinstance(event, amqp.ConnectionClosed):
                self.closed = event
                self.ended.set()

    def _hellos(self) -> None:
        while not self.ended.wait(0.5):
            if self.remote is not None:
                seen = [self.remote]
                self.send({"op": "HELLO", "pv": 1, "id": self.router_id,
                           "instance": self.instance, "seen": seen})

    # -- what tests do -----------------------------------------------------------------------
    def send(self, body: dict[str, Any]) -> None:
        with self.lock:
            if self.control is not None and not self.ended.is_set():
                self.conn.send_message(
                    self.control, amqp.AmqpMessage(to=CONTROL_ADDRESS, body=body)
                )
                self._flush()

    def become_neighbour(self, timeout: float = 10) -> None:
        """Wait for the open, HELLO until the link is two-way, then announce a link state."""
        if not self.opened.wait(timeout) or not self.two_way.wait(timeout):
            raise AssertionError(f"{self.router_id} did not become a neighbour: {self.closed}")
        assert self.remote is not None
        self.send({"op": "LSU", "pv": 1, "id": self.router_id, "instance": self.instance,
                   "ls_seq": next(self._ls_seq), "ls": {self.remote: 1}})

    def add_addresses(self, addresses: list[str]) -> None:
        """One MAU (a difference) adding ``addresses``."""
        self.mobile_seq += 1
        self.send({"op": "MAU", "pv": 1, "id": self.router_id, "instance": self.instance,
                   "mobile_seq": self.mobile_seq, "add": addresses, "del": []})

    def set_addresses(self, addresses: list[str]) -> None:
        """One MAU with the absolute list."""
        self.mobile_seq += 1
        self.send({"op": "MAU", "pv": 1, "id": self.router_id, "instance": self.instance,
                   "mobile_seq": self.mobile_seq, "exist": addresses})

    def attach_streams(self, count: int, batch: int = 500) -> None:
        """Attach ``count`` streaming sender links (as TCP streams would), never using them."""
        for start in range(0, count, batch):
            with self.lock:
                if self.ended.is_set():
                    return
                for n in range(start, min(count, start + batch)):
                    self.conn.open_sender(f"forward/rogue-{n}", "nowhere", streaming=True)
                self._flush()

    def close(self) -> None:
        self.ended.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        self._reader.join(5)
        self._hello.join(5)
