"""The observer's HTTP face as a plain WSGI application (served by gevent's WSGIServer).

``GET /api/v2alpha1/<collection>`` answers Skupper's list envelope (``results``,
``count``, ``timeRangeCount``), ``GET /api/v2alpha1/<collection>/<id>`` one item
(``{"results": {...}}``), ``GET /metrics`` the Prometheus exposition, ``GET /`` the web
console (``console/``: plain HTML, CSS and JavaScript on this API). Errors are
``{"code": ..., "message": ...}``: 400 for a bad parameter, 404 for an unknown path or
id, 405 for another method, 401 without the credentials the server was given.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from . import query
from .collector import Collector
from .metrics import ObserverMetrics
from .views import COLLECTIONS, Network

API_PREFIX = "/api/v2alpha1/"
#: the web console (docs/observer.md): its page, script and style, from this package
CONSOLE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/console/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console/console.css": ("console.css", "text/css; charset=utf-8"),
}


@functools.cache
def console_file(name: str) -> bytes:
    return (resources.files(__package__) / "console" / name).read_bytes()
_log = structlog.get_logger().bind(component="observer-api")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def accepts(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        same_user = hmac.compare_digest(user.encode(), self.username.encode())
        return hmac.compare_digest(password.encode(), self.password.encode()) and same_user


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


class ObserverApp:
    def __init__(
        self,
        collector: Collector,
        clock: Callable[[], float],
        *,
        credentials: Credentials | None = None,
        metrics: ObserverMetrics | None = None,
    ) -> None:
        self.collector = collector
        self.clock = clock
        self.credentials = credentials
        self.metrics = metrics or ObserverMetrics(collector, clock)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            if self.credentials and not self.credentials.accepts(environ.get("HTTP_AUTHORIZATION")):
                raise HttpError(401, "credentials required")
            if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
                raise HttpError(405, "only GET is served")
            path = environ.get("PATH_INFO", "/")
            if path in CONSOLE_FILES:
                name, content_type = CONSOLE_FILES[path]
                return self._respond(start_response, 200, console_file(name), content_type)
            if path == "/metrics":
                return self._respond(
                    start_response, 200, self.metrics.exposition(), CONTENT_TYPE_LATEST
                )
            params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
            body = self.get(path, params)
        except HttpError as error:
            body = {"code": error.status, "message": error.message}
            return self._json(start_response, error.status, body)
        except Exception as error:  # a bug must answer 500 and be logged, not kill the server
            _log.exception("observer_request_failed", path=environ.get("PATH_INFO"))
            body = {"code": 500, "message": f"internal error: {type(error).__name__}"}
            return self._json(start_response, 500, body)
        return self._json(start_response, 200, body)

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """The JSON body for ``path`` (raises HttpError)."""
        if not path.startswith(API_PREFIX):
            raise HttpError(404, f"no such path: {path}")
        parts = path[len(API_PREFIX) :].strip("/").split("/")
        view = COLLECTIONS.get(parts[0])
        if view is None or len(parts) > 2:
            raise HttpError(404, f"no such path: {path}")
        items = view(Network(self.collector, now=self.clock()))
        if len(parts) == 2:
            for item in items:
                if item["identity"] == parts[1]:
                    return {"results": item}
            raise HttpError(404, f"no {parts[0]} item with identity {parts[1]!r}")
        try:
            wanted = query.parse(params, now_us=int(self.clock() * 1_000_000))
            page, total = query.apply(items, wanted)
        except query.QueryError as error:
            raise HttpError(400, str(error)) from None
        return {"results": page, "count": len(page), "timeRangeCount": total}

    def _json(self, start_response: StartResponse, status: int, body: object) -> list[bytes]:
        return self._respond(start_response, status, json.dumps(body).encode(), "application/json")

    def _respond(
        self, start_response: StartResponse, status: int, data: bytes, content_type: str
    ) -> list[bytes]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(data)))]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Basic realm="skupper-observer"'))
        start_response(f"{status} {_REASONS[status]}", headers)
        return [data]
