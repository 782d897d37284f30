"""ManagementActor: answers the CLI and tests on a ZeroMQ REP socket (ipc, mode 0600)."""

from __future__ import annotations

import base64
import contextlib
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import zmq.green as zmq

from skupper_actors.kernel import Actor, KernelError
from skupper_actors.management import (
    SOCKET_NAME,
    AdaptorInfo,
    HealthInfo,
    NodeStatus,
    RouterInfo,
    decode_request,
    encode_reply,
)
from skupper_actors.management.schema import MessagingAddressInfo, ProtocolError

from ..context import RouterContext
from ..health import run_off_loop
from ..links.routing import RoutingSnapshot
from ..messages import GetAdaptorInfo, GetRoutingSnapshot, Reload
from ..vanflow_messages import VANFLOW, DrainVanflow
from .grants import GetGrantCounters
from .memory import memory_counters


@dataclass(frozen=True, slots=True, kw_only=True)
class _ServeLoopDied:
    error: BaseException


class ManagementActor(Actor):
    """Serves typed status requests; one request at a time (REQ/REP)."""

    def __init__(
        self, ctx: RouterContext, runtime_dir: pathlib.Path, router_info: Callable[[], RouterInfo]
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.socket_path = runtime_dir / SOCKET_NAME
        self.router_info = router_info
        self.sock: Any = None
        self._serve_greenlet: gevent.Greenlet[Any, Any] | None = None

    def on_start(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.socket_path.parent, 0o700)
        if self.socket_path.exists():
            self.socket_path.unlink()  # a stale socket from a node that died
        sock = zmq.Context.instance().socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        old = os.umask(0o177)  # the socket file is created 0600, with no window
        try:
            sock.bind(f"ipc://{self.socket_path}")
        finally:
            os.umask(old)
        self.sock = sock
        self.log.info("management_listening", path=str(self.socket_path))
        self._serve_greenlet = gevent.spawn(self._serve)
        self._serve_greenlet.link_exception(self._died)

    def on_receive(self, message: object) -> Any:
        if isinstance(message, _ServeLoopDied):
            raise message.error
        return super().on_receive(message)

    def on_stop(self, reason: object) -> None:
        if self._serve_greenlet is not None:
            self._serve_greenlet.unlink(self._died)
            self._serve_greenlet.kill(block=True, timeout=2)
        if self.sock is not None:
            self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def _died(self, greenlet: gevent.Greenlet[Any, Any]) -> None:
        if self.ref.alive:
            self.ref.tell(
                _ServeLoopDied(error=greenlet.exception or RuntimeError("serve loop died"))
            )

    def _serve(self) -> None:
        while True:
            raw = self.sock.recv()
            self.sock.send(self.answer(raw))

    def _adaptors(self) -> tuple[AdaptorInfo, ...]:
        found = []
        for name in self.ctx.registry.names():
            if name.startswith(("listener-", "connector-")):
                ref = self.ctx.lookup(name)
                if ref is None:
                    continue
                try:
                    found.append(ref.ask(GetAdaptorInfo(), timeout=2))
                except KernelError as error:
                    self.log.warning("adaptor_status_unavailable", adaptor=name, error=str(error))
        return tuple(found)

    def _messaging(self) -> tuple[MessagingAddressInfo, ...]:
        return tuple(
            MessagingAddressInfo(
                address=address,
                distribution=view["distribution"],
                senders=view["senders"],
                receivers=view["receivers"],
                remote=tuple(view["remote"]),
                delivered_in=view["in"],
                delivered_out=view["out"],
                accepted=view["accepted"],
                released=view["released"],
                dropped=view["dropped"],
            )
            for address, view in self.ctx.messages.addresses().items()
        )

    def _counters(self) -> dict[str, int]:
        """Limit counters: the buffer budget's, and those of the actors that keep them
        (the grant server, when it runs)."""
        counters = memory_counters(self.ctx.dataplane.budget, self.ctx.memory)
        grants = self.ctx.lookup("grants")
        if grants is None:
            return counters
        try:
            counters.update(grants.ask(GetGrantCounters(), timeout=2))
        except KernelError as error:
            self.log.warning("counters_unavailable", actor="grants", error=str(error))
        return counters

    def _vanflow(self, *, flush: bool = False) -> bytes:
        """The vanflow messages since the last read (the first read makes a consumer);
        ``flush``: and every live record in full in the next read (a new reader's first)."""
        vanflow = self.ctx.lookup(VANFLOW)
        if vanflow is None:
            return encode_reply(error="the flow records are (re)starting; try again")
        try:
            messages = vanflow.ask(DrainVanflow(flush=flush), timeout=5)
        except KernelError as error:
            return encode_reply(error=f"flow records did not answer: {error}")
        status = NodeStatus(
            router=self.router_info(),
            vanflow=tuple(base64.b64encode(m).decode() for m in messages),
        )
        return run_off_loop(encode_reply, status)

    def answer(self, raw: bytes) -> bytes:
        """One reply for one request; every failure is an error reply, never silence."""
        try:
            kind = decode_request(raw)
        except ProtocolError as error:
            self.log.warning("management_request_invalid", error=str(error))
            return encode_reply(error=str(error))
        if kind == "reload":
            controller = self.ctx.lookup("controller")
            if controller is None:
                return encode_reply(
                    error="this node does not run from a namespace: nothing to reload"
                )
            try:
                controller.ask(Reload(), timeout=60)
            except KernelError as error:
                return encode_reply(error=f"reload failed: {error}")
        if kind in ("vanflow", "vanflow-flush"):
            return self._vanflow(flush=kind == "vanflow-flush")
        routing = self.ctx.lookup("routing")
        if routing is None:
            return encode_reply(error="the router is (re)starting; try again")
        try:
            snapshot: RoutingSnapshot = routing.ask(
                GetRoutingSnapshot(
                    addresses=kind in ("status", "addresses", "reload"),
                    network=kind in ("status", "network", "reload"),
                ),
                timeout=5,
            )
        except KernelError as error:
            return encode_reply(error=f"router did not answer: {error}")
        health = self.ctx.health
        measured = HealthInfo(
            loop_stall_max_ms=round(health.longest_stall * 1000, 3),
            loop_busy_max_ms=round(health.longest_busy * 1000, 3),
            gc_pause_max_ms=round(health.longest_gc * 1000, 3),
            loop_stalls=tuple(
                (second, round(stall * 1000, 3), round(busy * 1000, 3))
                for second, stall, busy in health.stalls()
            ),
            limits_exceeded=dict(health.snapshot()),
        )
        status = NodeStatus(
            router=self.router_info(),
            health=measured,
            links=snapshot.links if kind in ("status", "links", "reload", "network") else (),
            routers=snapshot.routes if kind in ("status", "routers", "reload", "network") else (),
            addresses=snapshot.addresses if kind in ("status", "addresses", "reload") else (),
            adaptors=self._adaptors() if kind in ("status", "adaptors", "reload") else (),
            network=snapshot.network if kind in ("status", "network", "reload") else (),
            messaging=self._messaging() if kind in ("status", "addresses", "reload") else (),
            counters=self._counters() if kind in ("status", "reload") else {},
        )
        # validating and encoding is O(network) (every address): not on the loop
        return run_off_loop(encode_reply, status)
