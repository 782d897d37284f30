"""The observer's web console in a real headless Chromium (Debian's package), against
three real sites in a line and their observer: the topology shows the three sites and
their two links, a service's connection count rises after traffic, and a screenshot of
the topology is written (docs/console.png is one such screenshot).

Chromium runs the page's JavaScript, which fetches the observer's REST API; the test reads
the DOM Chromium rendered (``--dump-dom``), never the API itself, so what it checks is
what a user sees. Skipped only where no Chromium is installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from harness import wait_until
from observers import observed_network
from servers import transfer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)"),
]
SCREENSHOT = os.environ.get("SKUPPER_CONSOLE_SCREENSHOT")  # where to keep a copy


class Elements(HTMLParser):
    """Every element's attributes, by tag, from a rendered DOM."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def having(self, attribute: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.found if attribute in attrs]


def chromium(*args: str, url: str) -> str:
    """Run headless Chromium on ``url`` until its page settled; what it printed."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=6000",
             *args, url],
            capture_output=True, text=True, timeout=90,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rendered(url: str) -> Elements:
    return Elements(chromium("--dump-dom", url=url))


def test_the_console_shows_the_topology_and_a_service_s_traffic(tmp_path) -> None:
    with observed_network(tmp_path, ["a", "b", "c"], [("a", "b"), ("b", "c")]) as net:
        base = net.base

        def links_up() -> int:
            try:
                return sum(link["status"] == "up" for link in net.results("routerlinks"))
            except OSError:
                return 0

        wait_until(lambda: links_up() == 2, 30, interval=0.5, what="the observer to see 2 links")

        page = rendered(base)
        sites = sorted(attrs["data-site"] or "" for attrs in page.having("data-site"))
        assert sites == ["a", "b", "c"]
        links = {
            frozenset((attrs["data-from"], attrs["data-to"])): attrs["data-status"]
            for attrs in page.having("data-from")
        }
        assert links == {frozenset("ab"): "up", frozenset("bc"): "up"}

        services = rendered(f"{base}#/services")
        [row] = [a for a in services.having("data-service") if a["data-service"] == "hash"]
        before = int(row["data-connections"] or 0)
        for seed in range(5):
            assert transfer(net.port, 1000 + seed, 2000, seed=seed) == (True, True, None)

        def count_on_the_service_page() -> int:
            [item] = net.results("services")
            shown = rendered(f"{base}#/services/{item['identity']}").having("data-count")
            return int(shown[0]["data-count"] or 0) if shown else -1

        wait_until(lambda: count_on_the_service_page() >= before + 5, 30, interval=1,
                   what="the service page's connection count to rise by 5")

        picture = tmp_path / "console.png"
        chromium(f"--screenshot={picture}", "--window-size=1200,760", url=base)
        assert picture.stat().st_size > 10_000 and picture.read_bytes()[:4] == b"\x89PNG"
        if SCREENSHOT:
            Path(SCREENSHOT).write_bytes(picture.read_bytes())
