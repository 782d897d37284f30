"""Helpers for the AMQP messaging tests: sites with a client endpoint, proton clients."""

from __future__ import annotations

from pathlib import Path

from harness import Mesh, expected_routes, free_port, wait_until


def line_mesh(folder: Path, sites: list[str], *, plaintext: bool = False) -> Mesh:
    """Sites linked in a line (cost 1 each), every one with an AMQP client endpoint."""
    mesh = Mesh(folder, sites, plaintext=plaintext)
    for site in sites:
        mesh[site].config["amqp"] = {"port": free_port()}
    for left, right in zip(sites, sites[1:], strict=False):
        mesh.link(left, right)
    mesh.start()
    edges = {(left, right): 1 for left, right in zip(sites, sites[1:], strict=False)}
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
