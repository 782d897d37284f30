"""Helpers for the AMQP messaging tests: sites with a client endpoint, proton clients.

Receivers and bulk senders run proton's own ``Container`` in a thread of the test;
single calls use ``proton.utils.BlockingConnection``.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import Mesh, expected_routes, free_port, wait_until
from proton import Delivery, Message
from proton.handlers import MessagingHandler
from proton.reactor import Container


def line_mesh(folder: Path, sites: list[str], *, plaintext: bool = False) -> Mesh:
    """Sites linked in a line (cost 1 each), every one with an AMQP client endpoint."""
    mesh = Mesh(folder, sites, plaintext=plaintext)
    for site in sites:
        mesh[site].config["amqp"] = {"port": free_port()}
    for left, right in itertools.pairwise(sites):
        mesh.link(left, right)
    mesh.start()
    edges = dict.fromkeys(itertools.pairwise(sites), 1)
    mesh.wait_converged(expected_routes(sites, edges))
    return mesh


def url(mesh: Mesh, site: str) -> str:
    return f"amqp://127.0.0.1:{mesh[site].config['amqp']['port']}"


def wait_address(
    mesh: Mesh, site: str, address: str, routers: set[str], timeout: float = 15
) -> None:
    """Wait until ``site`` knows receivers for client ``address`` at ``routers``."""
    key = f"_skupper/amqp/{address}"

    def known() -> bool:
        found = {a.address: set(a.routers) for a in mesh[site].status().addresses}
        return found.get(key, set()) >= routers

    wait_until(known, timeout, interval=0.1, what=f"{site} to learn {address} at {routers}")


class ClientThread(threading.Thread):
    """A proton Container running ``handler`` in a thread until ``stop()``."""

    def __init__(self, handler: MessagingHandler) -> None:
        super().__init__(daemon=True)
        self.handler = handler
        self.container = Container(handler)
        self.container.timeout = 0.05
        self._stop_flag = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.container.start()
            while not self._stop_flag.is_set() and self.container.process():
                pass
        except BaseException as error:  # reported by stop()
            self.error = error
        finally:
            with contextlib.suppress(Exception):
                self.container.stop()

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(10)
        if self.error is not None:
            raise self.error


class Receiver(MessagingHandler):  # type: ignore[misc]
    """Receives from ``address`` with ``credit`` (``prefetch``), settling as ``decide`` says."""

    def __init__(
        self,
        url: str,
        address: str,
        *,
        credit: int = 100,
        decide: Callable[[Message], Any] | None = None,
        auto_settle: bool = True,
        keep: bool = True,
        connect: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(prefetch=credit, auto_accept=False)
        self.url = url
        self.connect = connect or {}  # more Container.connect options (ssl_domain=...)
        self.address = address
        self.decide = decide
        self.auto_settle = auto_settle
        self.keep = keep  # False: count the messages and their bytes only
        self.count = 0
        self.body_bytes = 0
        self.messages: list[Message] = []
        self.unsettled: list[Delivery] = []
        self.ready = threading.Event()
        self.receiver: Any = None
        self.connection: Any = None

    def on_start(self, event: Any) -> None:
        self.connection = event.container.connect(self.url, **self.connect)
        self.receiver = event.container.create_receiver(self.connection, self.address)

    def on_link_opened(self, event: Any) -> None:
        if event.link.name == self.receiver.name:
            self.ready.set()

    def on_message(self, event: Any) -> None:
        self.count += 1
        body = event.message.body
        if isinstance(body, bytes | str):
            self.body_bytes += len(body)
        if self.keep:
            self.messages.append(event.message)
        if not self.auto_settle:
            self.unsettled.append(event.delivery)
            return
        outcome = self.decide(event.message) if self.decide else Delivery.ACCEPTED
        event.delivery.update(outcome)
        event.delivery.settle()


def receive_in_thread(url: str, address: str, **options: Any) -> tuple[Receiver, ClientThread]:
    receiver = Receiver(url, address, **options)
    thread = ClientThread(receiver)
    thread.start()
    assert receiver.ready.wait(10), f"receiver on {address} did not attach"
    return receiver, thread


class Sender(MessagingHandler):  # type: ignore[misc]
    """Sends ``count`` messages (``make(i)``) as credit allows, counting the outcomes."""

    def __init__(self, url: str, address: str | None, count: int, make: Callable[[int], Message]):
        super().__init__()
        self.url = url
        self.address = address
        self.count = count
        self.make = make
        self.sent = 0
        self.outcomes: dict[str, int] = {"accepted": 0, "rejected": 0, "released": 0, "modified": 0}
        self.settled_tags: list[Any] = []
        self.done = threading.Event()
        self.latencies: list[float] = []
        self._sent_at: dict[Any, float] = {}

    def on_start(self, event: Any) -> None:
        conn = event.container.connect(self.url)
        self.sender = event.container.create_sender(conn, self.address)

    def on_sendable(self, event: Any) -> None:
        sender = event.sender
        while sender.credit and self.sent < self.count:
            delivery = sender.send(self.make(self.sent))
            self._sent_at[delivery] = time.monotonic()
            self.sent += 1

    def _settled(self, event: Any, kind: str) -> None:
        self.outcomes[kind] += 1
        started = self._sent_at.pop(event.delivery, None)
        if started is not None:
            self.latencies.append(time.monotonic() - started)
        self.settled_tags.append(event.delivery.tag)
        if sum(self.outcomes.values()) >= self.count:
            self.done.set()

    def on_accepted(self, event: Any) -> None:
        self._settled(event, "accepted")

    def on_rejected(self, event: Any) -> None:
        self._settled(event, "rejected")

    def on_released(self, event: Any) -> None:
        kind = "modified" if event.delivery.remote_state == Delivery.MODIFIED else "released"
        self._settled(event, kind)
