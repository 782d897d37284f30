"""One real ``skupper-node`` process per site, driven from the harness's gevent hub.

Waiting is cooperative (``gevent.sleep`` between polls; the management socket through
``zmq.green``), so proxies and traffic keep running while a node starts or stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gevent
import zmq
import zmq.green

from skupper_actors.management import (
    SOCKET_NAME,
    ManagementError,
    NodeStatus,
    NodeUnreachable,
    decode_reply,
    encode_request,
)


class NodeFailed(RuntimeError):
    """A node that should be running is not (it exited, or never answered)."""


_context: Any = None


def query_status(runtime_dir: Path, timeout: float = 1.0) -> NodeStatus:
    """The node's status through its management socket, without blocking the hub."""
    global _context
    path = runtime_dir / SOCKET_NAME
    if not path.exists():
        raise NodeUnreachable(f"no management socket at {path}")
    if _context is None:
        _context = zmq.green.Context()
    sock = _context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"ipc://{path}")
        sock.send(encode_request("status"))
        with gevent.Timeout(timeout, False):
            raw = sock.recv()
            reply = decode_reply(raw)
            if not reply["ok"]:
                raise ManagementError(reply["error"])
            result = reply["result"]
            assert isinstance(result, NodeStatus)
            return result
        raise NodeUnreachable(f"node at {path} did not answer within {timeout:g} s")
    finally:
        sock.close()


class NodeProcess:
    """A site's node: its config file, its process and log, its management socket."""

    def __init__(
        self,
        *,
        site: str,
        args: Sequence[str],
        runtime_dir: Path,
        log_path: Path,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.site = site
        #: what follows ``skupper-node run``: ``-c site.yaml`` or ``-n <namespace>``
        self.args = tuple(args)
        self.extra_env = dict(env or {})
        self.runtime_dir = runtime_dir
        self.log_path = log_path
        #: command words before the node's own (``ip netns exec <ns>`` in namespace mode)
        self.prefix = tuple(prefix)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.stopped = False  #: SIGSTOPped by the harness

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"node {self.site} is already running")
        command = [
            *self.prefix,
            sys.executable,
            "-m",
            "skupper_actors.node_cli",
            "run",
            *self.args,
            "--log-json",
        ]
        env = {**os.environ, **self.extra_env}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")) if p
        )
        with open(self.log_path, "ab") as log:
            # its own session: a Ctrl-C at the harness's terminal is the harness's to handle
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.starts += 1
        self.stopped = False

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            code = self.poll()
            if code is not None:
                raise NodeFailed(f"node {self.site} exited with {code}:\n{self.log_tail()}")
            try:
                if self.status().router.id == self.site:
                    return
            except (ManagementError, OSError) as error:
                last = error
            gevent.sleep(0.1)
        raise NodeFailed(f"node {self.site} did not answer within {timeout:g} s ({last})")

    def status(self, timeout: float = 1.0) -> NodeStatus:
        return query_status(self.runtime_dir, timeout)

    def poll(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signum)
        if signum == signal.SIGSTOP:
            self.stopped = True
        elif signum == signal.SIGCONT:
            self.stopped = False

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.proc is not None and time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                return code
            gevent.sleep(0.02)
        return self.poll()

    def kill(self) -> int | None:
        """SIGKILL and reap."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
        self.stopped = False
        return self.wait_exit(10)

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGCONT (in case it is stopped), SIGTERM, then SIGKILL after ``timeout``."""
        if self.alive:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            code = self.wait_exit(timeout)
            if code is not None:
                return code
        return self.kill()

    def rss_kib(self) -> int | None:
        if self.proc is None:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        events.append(json.loads(line))
        return events

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
