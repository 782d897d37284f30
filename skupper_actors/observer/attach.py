"""The observer's AMQP client: attaches to its site with proton's Container API.

``SiteAttachment`` receives beacons on ``mc/sfe.all``, opens and closes receivers as
the collector's ``Subscribe`` / ``Unsubscribe`` effects say, sends its ``SendFlush``
effects, and hands every message (with the address it came on) to ``deliver``. The
Container runs in a thread of its own (it blocks in its reactor); effects go in through
an ``EventInjector``, messages come out through a queue that wakes the gevent hub. It
needs a site with an AMQP endpoint (``amqp:`` in its site file); every router of the
network sends its records as multicast messages across the VAN to the receivers
attached there. ``ManagementFeed`` reads the same messages from the management sockets
of nodes on the same host, for sites without an AMQP endpoint (docs/adr/0033).
"""

from __future__ import annotations

import base64
import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import structlog
from proton import Message, SSLDomain, SSLException
from proton.handlers import MessagingHandler
from proton.reactor import ApplicationEvent, Container, EventInjector

from skupper_actors.management import ManagementClient, ManagementError
from skupper_actors.protocol.vanflow import BEACON_ADDRESS

from .collector import Effect, SendFlush, Subscribe, Unsubscribe

#: (the address a message came on, its subject, application properties, body)
Delivered = tuple[str | None, Any, Any, Any]
Deliver = Callable[[list[Delivered]], None]
CREDIT = 256
#: a failing attachment is logged at most this often (proton retries within 10 s)
FAILURE_LOG_INTERVAL = 30.0


def _log() -> Any:
    return structlog.get_logger().bind(component="observer")


def client_tls(folder: Path) -> tuple[Any, str | None]:
    """Proton's client TLS from ``folder``: (an SSLDomain, the SASL mechanism to allow).

    ``ca.crt`` is required: the site's certificate must chain to it (the chain is
    checked, not the host name: sites' certificates name DNS names, and the observer
    usually dials an address). With ``tls.crt`` and ``tls.key`` the observer presents
    that client certificate and logs in with SASL EXTERNAL; with neither, ANONYMOUS.
    Raises ValueError (or OSError) with a one-line reason."""
    ca = folder / "ca.crt"
    cert, key = folder / "tls.crt", folder / "tls.key"
    if not ca.is_file():
        raise ValueError(f"no ca.crt in {folder}")
    if cert.exists() != key.exists():
        raise ValueError("tls.crt and tls.key go together")
    domain = SSLDomain(SSLDomain.MODE_CLIENT)
    try:
        domain.set_trusted_ca_db(str(ca))
        domain.set_peer_authentication(SSLDomain.VERIFY_PEER, str(ca))
        if cert.exists():
            domain.set_credentials(str(cert), str(key), None)
    except SSLException as error:
        raise ValueError(f"proton cannot use these files: {error}") from None
    return domain, ("EXTERNAL" if cert.exists() else None)


class _Handler(MessagingHandler):
    def __init__(
        self,
        url: str,
        out: queue.SimpleQueue[Delivered],
        wake: Callable[[], None],
        tls: Path | None = None,
    ):
        super().__init__(prefetch=CREDIT)
        self.url = url
        self.tls = tls
        self.out = out
        self.wake = wake
        self.container: Any = None
        self.connection: Any = None
        self.sender: Any = None
        self.receivers: dict[str, Any] = {}
        self.failed_at: float | None = None

    def on_start(self, event: Any) -> None:
        self.container = event.container
        options: dict[str, Any] = {}
        if self.tls is not None:
            domain, mechanism = client_tls(self.tls)
            options["ssl_domain"] = domain
            if mechanism is not None:
                options["allowed_mechs"] = mechanism
        # reconnects, backing off
        self.connection = event.container.connect(self.url, **options)
        self.sender = event.container.create_sender(self.connection, None)  # anonymous
        self._subscribe(event.container, BEACON_ADDRESS)

    def _subscribe(self, container: Any, address: str) -> None:
        if address not in self.receivers:
            self.receivers[address] = container.create_receiver(self.connection, address)

    def on_connection_opened(self, event: Any) -> None:
        self.failed_at = None
        _log().info("observer_attached", url=self.url)

    def on_transport_error(self, event: Any) -> None:
        """The site is down or refused us: proton reconnects, backing off (to 10 s)."""
        now = time.monotonic()
        if self.failed_at is not None and now - self.failed_at < FAILURE_LOG_INTERVAL:
            return
        self.failed_at = now
        condition = event.transport.condition if event.transport else None
        why = condition.description if condition is not None else "transport error"
        _log().warning("observer_attach_failed", url=self.url, error=why)

    def on_message(self, event: Any) -> None:
        message = event.message
        address = event.receiver.source.address if event.receiver else None
        self.out.put((address, message.subject, message.properties, message.body))
        self.wake()

    def on_effects(self, event: Any) -> None:  # an ApplicationEvent named "effects"
        for effect in event.subject:
            if isinstance(effect, Subscribe):
                self._subscribe(self.container, effect.address)
            elif isinstance(effect, Unsubscribe):
                receiver = self.receivers.pop(effect.address, None)
                if receiver is not None:
                    receiver.close()
            elif isinstance(effect, SendFlush) and self.sender is not None:
                self.sender.send(Message(address=effect.address, subject="FLUSH"))


class SiteAttachment:
    """One AMQP connection to the local site for the collector."""

    def __init__(self, url: str, deliver: Deliver, tls: Path | None = None) -> None:
        self.deliver = deliver
        self._queue: queue.SimpleQueue[Delivered] = queue.SimpleQueue()
        self._async = gevent.get_hub().loop.async_()
        self._async.start(self._drain)
        self._injector = EventInjector()
        self._handler = _Handler(url, self._queue, self._async.send, tls)
        self._container = Container(self._handler)
        self._container.selectable(self._injector)
        self._thread: Any = None
        #: why the AMQP client stopped by itself (None while it runs)
        self.failure: str | None = None

    def start(self) -> None:
        self._thread = gevent.get_hub().threadpool.spawn(self._container.run)
        self._thread.rawlink(self._ended)

    def _ended(self, result: Any) -> None:
        error = result.exception
        self.failure = f"{type(error).__name__}: {error}" if error else "the AMQP client stopped"

    def apply(self, effects: list[Effect]) -> None:
        if effects:
            self._injector.trigger(ApplicationEvent("effects", subject=list(effects)))

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.unlink(self._ended)
        self._injector.close()
        self._container.stop()
        self._async.stop()

    def _drain(self) -> None:
        batch = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if batch:
            self.deliver(batch)


class ManagementFeed:
    """Until nodes carry AMQP for clients: the vanflow messages of nodes on this host,
    read through their management sockets (each read takes what the node held)."""

    def __init__(self, runtime_dirs: list[str], deliver: Callable[[list[bytes]], None]) -> None:
        self.clients = [ManagementClient(d, timeout=2) for d in runtime_dirs]
        self.deliver = deliver
        self.failures = 0
        # a first read, and the first after a failure, asks for every live record in full:
        # the node may have sent them already, to an observer before this one
        self._flush = set(range(len(self.clients)))

    def poll(self) -> None:
        for number, client in enumerate(self.clients):
            kind = "vanflow-flush" if number in self._flush else "vanflow"
            try:
                status = gevent.get_hub().threadpool.apply(client.request, (kind,))
            except ManagementError:
                self.failures += 1  # the node is down or restarting: its records wait
                self._flush.add(number)
                continue
            self._flush.discard(number)
            self.deliver([base64.b64decode(m) for m in status.vanflow])
