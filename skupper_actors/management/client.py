"""A blocking management client for the CLI, tests and tools (plain pyzmq, no gevent)."""

from __future__ import annotations

import pathlib

import zmq

from .schema import NodeStatus, decode_reply, encode_request


class ManagementError(RuntimeError):
    """The node answered with an error."""


class NodeUnreachable(ManagementError):
    """No node answered on the management socket in time."""


class ManagementClient:
    """Ask a node for its status through ``<runtime_dir>/management.sock``."""

    def __init__(self, runtime_dir: str | pathlib.Path, timeout: float = 5.0) -> None:
        self.path = pathlib.Path(runtime_dir) / "management.sock"
        self.timeout = timeout

    def request(self, kind: str = "status") -> NodeStatus:
        if not self.path.exists():
            raise NodeUnreachable(f"no node management socket at {self.path}")
        context = zmq.Context.instance()
        sock = context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, int(self.timeout * 1000))
        sock.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))
        try:
            sock.connect(f"ipc://{self.path}")
            sock.send(encode_request(kind))
            try:
                raw = sock.recv()
            except zmq.Again:
                raise NodeUnreachable(
                    f"node at {self.path} did not answer within {self.timeout:g} s"
                ) from None
        finally:
            sock.close()
        reply = decode_reply(raw)
        if not reply["ok"]:
            raise ManagementError(reply["error"])
        result = reply["result"]
        assert isinstance(result, NodeStatus)
        return result

    def status(self) -> NodeStatus:
        return self.request("status")
