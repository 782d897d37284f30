"""GrantServerActor: the HTTPS endpoint where other sites redeem access tokens.

POST `/<grant id>` with the grant's code as the body. 404 for an unknown, expired or used
up grant, 403 for a wrong code (which does not use up a redemption), 200 with a JSON
document holding a client certificate + key signed by this site's CA, the CA, and one
Link per inter-router endpoint. A redemption is counted only once that answer is made.
Off until the controller enables it (a grant exists). Connections are bounded by
`GrantLimits` (see grantconn.py and docs/limits.md).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import gevent.socket
import gevent.ssl

from skupper_actors.api import (
    Endpoint,
    Link,
    LinkSpec,
    Metadata,
    resource_to_document,
)
from skupper_actors.kernel import Actor
from skupper_actors.security import CertificateAuthority, client_common_name, issue_client_cert
from skupper_actors.security.grants import Grant, GrantBook, GrantRefused

from .grantconn import GrantCounters, GrantHttpServer, GrantLimits

MAX_BODY = 4096
#: what a redeeming site may call itself (a site name; checked before it reaches a certificate)
_REDEEMER_RE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
MAX_REDEEMER_LENGTH = 63


@dataclass(frozen=True, slots=True, kw_only=True)
class EnableGrants:
    """Start serving (idempotent); the reply is the bound (host, port)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadCertificate:
    """The server certificate was reissued: present the new one from now on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GetGrantCounters:
    """Ask for the grant server's counters (a dict of name to count)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantServerInfo:
    host: str
    port: int


class GrantServerActor(Actor):
    def __init__(
        self,
        *,
        site: str,
        book: GrantBook,
        ca: Callable[[], CertificateAuthority],
        cert_file: str,
        key_file: str,
        host: str,
        port: int,
        endpoints: Callable[[], Iterable[Endpoint]],
        limits: GrantLimits | None = None,
        counters: GrantCounters | None = None,
    ) -> None:
        super().__init__()
        self.site = site
        self.book = book
        self.ca = ca
        self.cert_file = cert_file
        self.key_file = key_file
        self.host = host
        self.port = port
        self.endpoints = endpoints
        self.limits = limits or GrantLimits()
        # kept by the node, so that a restart of this actor does not reset them
        self.counters = counters if counters is not None else GrantCounters()
        self.server: GrantHttpServer | None = None
        self.context: ssl.SSLContext | None = None

    def on_receive(self, message: object) -> Any:
        if isinstance(message, EnableGrants):
            if self.server is None:
                self._start()
            assert self.server is not None
            host, port = self.server.address[:2]
            return GrantServerInfo(host=host, port=port)
        if isinstance(message, GetGrantCounters):
            return self.counters.snapshot()
        if isinstance(message, ReloadCertificate):
            if self.context is not None:  # else it is read when the server starts
                self.context.load_cert_chain(self.cert_file, self.key_file)
                self.log.info("grant_server_certificate_reloaded")
            return None
        return super().on_receive(message)

    def on_stop(self, reason: object) -> None:
        if self.server is not None:
            self.server.stop(timeout=1)

    def _start(self) -> None:
        context = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        self.context = context  # each accepted connection is wrapped with it
        listener = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        server = GrantHttpServer(
            listener,
            self._app,
            context=lambda: context,
            limits=self.limits,
            counters=self.counters,
            log=self.log,
        )
        server.start()
        self.server = server
        self.log.info(
            "grant_server_started",
            host=server.address[0],
            port=server.address[1],
            max_connections=self.limits.max_connections,
            max_connections_per_peer=self.limits.max_connections_per_peer,
        )

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        def reply(status: str, body: bytes, kind: str = "text/plain") -> list[bytes]:
            start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
            return [body]

        if environ.get("REQUEST_METHOD") != "POST":
            return reply("405 Method Not Allowed", b"POST the grant's code\n")
        grant_id = environ.get("PATH_INFO", "").strip("/")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return reply("400 Bad Request", b"bad Content-Length\n")
        if length > min(MAX_BODY, self.limits.max_request_bytes) or length < 0:
            return reply("413 Payload Too Large", b"code too long\n")
        code = environ["wsgi.input"].read(length).decode(errors="replace").strip()
        redeemer = environ.get("HTTP_SKUPPER_SITE_NAME", "unknown")
        peer = environ.get("REMOTE_ADDR")
        if len(redeemer) > MAX_REDEEMER_LENGTH or not _REDEEMER_RE.fullmatch(redeemer):
            self.log.warning("grant_refused", grant=grant_id, peer=peer, reason="bad site name")
            return reply("400 Bad Request", b"skupper-site-name must be a site name\n")
        try:
            # counted only once the answer is made: a failure here burns nothing
            grant, body = self.book.redeem_with(
                grant_id, code, time.time(), lambda g: self._answer(g, redeemer)
            )
        except GrantRefused as refused:
            self.log.warning(
                "grant_refused", grant=grant_id, redeemer=redeemer, peer=peer, reason=str(refused)
            )
            status = {403: "403 Forbidden", 404: "404 Not Found"}.get(
                refused.http_status, "400 Bad Request"
            )
            return reply(status, f"{refused}\n".encode())
        self.log.info(
            "grant_redeemed",
            grant=grant.name,
            redeemer=redeemer,
            peer=peer,
            redemptions=grant.redemptions,
            allowed=grant.redemptions_allowed,
        )
        return reply("200 OK", body, "application/json")

    def _answer(self, grant: Grant, redeemer: str) -> bytes:
        """The JSON answer for one redemption: fresh client credentials and the links."""
        credentials = issue_client_cert(self.ca(), client_common_name(redeemer, grant.name))
        links = [
            resource_to_document(
                Link(
                    metadata=Metadata(name=grant.name),
                    spec=LinkSpec(endpoints=(endpoint,), tls_credentials=grant.name),
                )
            )
            for endpoint in self.endpoints()
        ]
        return json.dumps(
            {
                "site": self.site,
                "credentials": {
                    "tls.crt": credentials.cert_pem.decode(),
                    "tls.key": credentials.key_pem.decode(),
                    "ca.crt": credentials.ca_pem.decode(),
                },
                "links": links,
            }
        ).encode()
