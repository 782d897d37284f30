"""Namespace mode: each site in its own network namespace, sites joined by veth pairs.

Needs root and iproute2. Every site also gets an "uplink" veth pair to the harness's
namespace, so the harness's clients reach the site's listeners and the site's
connectors reach the harness's servers. Cutting a link sets the dialling side's veth
down: the peer hears nothing (no reset), so the routers notice by HELLO max age.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence

from .scenario import LinkSpec

# Each run takes two free /16s from 10.100-10.199 (so that runs at the same time on one
# host do not clash): site i's uplink is 10.U.i.1 (harness side) - 10.U.i.2 (site side),
# link k is 10.L.k.1 (dialler) - 10.L.k.2 (target), L = U + 1.
_FIRST_NET, _LAST_NET = 100, 199


def _free_networks(run_id: str) -> tuple[str, str]:
    used = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    taken = {int(part.split(".")[1]) for part in used.split() if part.startswith("10.")}
    start = int(run_id, 16) % ((_LAST_NET - _FIRST_NET) // 2)
    for step in range((_LAST_NET - _FIRST_NET) // 2):
        second = _FIRST_NET + 2 * ((start + step) % ((_LAST_NET - _FIRST_NET) // 2))
        if second not in taken and second + 1 not in taken:
            return f"10.{second}", f"10.{second + 1}"
    raise NetnsUnavailable("no free 10.x.0.0/16 pair for the namespace mode's addresses")


class NetnsUnavailable(RuntimeError):
    """Namespace mode cannot run here (not root, no iproute2, no namespace support)."""


def _ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsUnavailable(f"{' '.join(command)}: {result.stderr.strip()}")


def check_netns() -> None:
    """Raise NetnsUnavailable saying why namespace mode cannot run on this machine."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("namespace mode needs root (ip netns add)")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("namespace mode needs iproute2's 'ip' command")
    probe = f"skc-probe-{secrets.token_hex(3)}"
    _ip("netns", "add", probe)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)


class NetnsFabric:
    """The namespaces and veth pairs of one run; ``teardown`` removes them all."""

    def __init__(self, sites: Sequence[str], links: Sequence[LinkSpec]) -> None:
        if len(sites) > 250 or len(links) > 250:
            raise NetnsUnavailable("namespace mode handles at most 250 sites and 250 links")
        self.run_id = secrets.token_hex(2)
        self.uplink_net, self.link_net = _free_networks(self.run_id)
        self.sites = list(sites)
        self.links = list(links)
        self._made: list[str] = []

    def namespace(self, site: str) -> str:
        return f"skc{self.run_id}-{self.sites.index(site)}"

    def site_ip(self, site: str) -> str:
        """The site's address on its uplink (where its listeners and port bind)."""
        return f"{self.uplink_net}.{self.sites.index(site)}.2"

    def harness_ip(self, site: str) -> str:
        """The harness's address as the site sees it (where its connectors point)."""
        return f"{self.uplink_net}.{self.sites.index(site)}.1"

    def link_target_ip(self, link: LinkSpec) -> str:
        return f"{self.link_net}.{self._index(link)}.2"

    def link_target_ips(self) -> list[str]:
        return [self.link_target_ip(link) for link in self.links]

    def _index(self, link: LinkSpec) -> int:
        return [x.name for x in self.links].index(link.name)

    def _link_device(self, link: LinkSpec) -> str:
        return f"kc{self.run_id}a{self._index(link)}"

    def command_prefix(self, site: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(site)]

    def setup(self) -> None:
        try:
            for index, site in enumerate(self.sites):
                namespace = self.namespace(site)
                _ip("netns", "add", namespace)
                self._made.append(namespace)
                _ip("link", "set", "lo", "up", namespace=namespace)
                host, inner = f"kc{self.run_id}h{index}", f"kc{self.run_id}s{index}"
                _ip("link", "add", host, "type", "veth", "peer", "name", inner)
                _ip("link", "set", inner, "netns", namespace)
                _ip("addr", "add", f"{self.uplink_net}.{index}.1/30", "dev", host)
                _ip("link", "set", host, "up")
                _ip(
                    "addr",
                    "add",
                    f"{self.uplink_net}.{index}.2/30",
                    "dev",
                    inner,
                    namespace=namespace,
                )
                _ip("link", "set", inner, "up", namespace=namespace)
            for index, link in enumerate(self.links):
                near, far = f"kc{self.run_id}a{index}", f"kc{self.run_id}b{index}"
                source, target = self.namespace(link.source), self.namespace(link.target)
                _ip(
                    "link",
                    "add",
                    near,
                    "netns",
                    source,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    far,
                    "netns",
                    target,
                )
                _ip("addr", "add", f"{self.link_net}.{index}.1/30", "dev", near, namespace=source)
                _ip("addr", "add", f"{self.link_net}.{index}.2/30", "dev", far, namespace=target)
                _ip("link", "set", near, "up", namespace=source)
                _ip("link", "set", far, "up", namespace=target)
        except NetnsUnavailable:
            self.teardown()
            raise

    def set_link(self, link: LinkSpec, up: bool) -> None:
        """``ip link set down`` (or ``up``) on the dialling side's veth of ``link``."""
        _ip(
            "link",
            "set",
            self._link_device(link),
            "up" if up else "down",
            namespace=self.namespace(link.source),
        )

    def teardown(self) -> None:
        """Delete the namespaces; their veth pairs (and the uplinks' host ends) go with them."""
        for namespace in reversed(self._made):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
        self._made.clear()
