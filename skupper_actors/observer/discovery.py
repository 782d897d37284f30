"""How the `skupper` command finds a running observer, and what it asks it.

An observer reading a site's node (``-n NAME`` or ``--management RUNTIME_DIR``) writes
``observer.json`` (its URL and pid) into that site's runtime folder while it runs. The
CLI's ``network status`` then adds the observer's traffic per service and link states,
and ``debug dump`` the observer's view of the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

OBSERVER_FILE = "observer.json"
API = "/api/v2alpha1/"


class ObserverUnavailable(Exception):
    """The observer named in a runtime folder did not answer (one line, for users)."""


def announce(runtime_dirs: list[str], url: str) -> list[Path]:
    """Write ``observer.json`` into each folder that exists; the files written."""
    written = []
    text = json.dumps({"url": url, "pid": os.getpid()})
    for folder in runtime_dirs:
        path = Path(folder) / OBSERVER_FILE
        if not path.parent.is_dir():
            continue
        tmp = path.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(text)
            os.replace(tmp, path)
            written.append(path)
    return written


def withdraw(paths: list[Path]) -> None:
    """Remove what ``announce`` wrote, unless another observer has written it since."""
    for path in paths:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()


def find(runtime_dir: Path) -> str | None:
    """The URL of the observer running for this site's node, if one is."""
    try:
        entry = json.loads((runtime_dir / OBSERVER_FILE).read_text())
        pid, url = int(entry["pid"]), str(entry["url"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, unreadable, or its process is gone
    return url


def get(url: str, collection: str, query: str = "", timeout: float = 3.0) -> list[Any]:
    """One collection's ``results`` from the observer's REST API."""
    target = f"{url.rstrip('/')}{API}{collection}" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            results: list[Any] = json.load(response)["results"]
            return results
    except urllib.error.HTTPError as error:
        raise ObserverUnavailable(f"the observer at {url} answered {error.code}") from None
    except (OSError, ValueError, KeyError) as error:
        reason = getattr(error, "reason", None) or error
        raise ObserverUnavailable(f"the observer at {url} did not answer: {reason}") from None


def traffic(url: str) -> dict[str, Any]:
    """Per service: connections (all, open), bytes both ways; every link with its state."""
    services: dict[str, dict[str, Any]] = {}
    for service in get(url, "services"):
        services[service["name"]] = {
            "routingKey": service["name"],
            "connections": 0,
            "open": 0,
            "bytesSent": 0,
            "bytesReceived": 0,
        }
    for conn in get(url, "connections", "state=all"):
        entry = services.get(conn.get("routingKey") or "")
        if entry is None:
            continue
        entry["connections"] += 1
        entry["open"] += 0 if conn.get("endTime") else 1
        entry["bytesSent"] += conn.get("octetCount") or 0
        entry["bytesReceived"] += conn.get("octetReverseCount") or 0
    links = [
        {
            "from": link.get("sourceSiteName"),
            "to": link.get("destinationSiteName"),
            "status": link.get("status"),
            "cost": link.get("cost"),
        }
        for link in get(url, "routerlinks")
    ]
    return {"url": url, "services": [services[k] for k in sorted(services)], "links": links}
