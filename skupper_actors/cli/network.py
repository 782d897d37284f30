"""`skupper network status`: every site of the network as this site's node sees it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from skupper_actors.cli.common import output_option, pass_cli
from skupper_actors.cli.context import CliContext
from skupper_actors.cli.output import OutputFormat, camel_keys, emit_data, emit_table
from skupper_actors.cli.waiting import node_status
from skupper_actors.management import NodeStatus
from skupper_actors.observer.discovery import ObserverUnavailable, find, traffic


@click.group(name="network", help="The whole network, from the live routers.")
def network() -> None:
    pass

#: addresses the routers use for their flow records (Skupper's vanflow)
FLOW_RECORD_PREFIXES = ("mc/sfe.", "sfe.", "vfcr.")


def network_data(status: NodeStatus, local: NodeStatus | None = None) -> dict[str, Any]:
    """Sites, services (routing key -> sites), this site's links and routes, as plain data.

    `status` answers the `network` request; `local` (the `status` request) has this
    site's links and routes, when the network answer leaves them out.
    """
    local = local or status
    services: dict[str, dict[str, list[str]]] = {}
    for view in status.network:
        for key in view.listeners:
            services.setdefault(key, {"listeners": [], "connectors": []})["listeners"].append(
                view.router
            )
        for key in view.connectors:
            services.setdefault(key, {"listeners": [], "connectors": []})["connectors"].append(
                view.router
            )
    return camel_keys({
        "router": asdict(status.router),
        "sites": [
            {
                "router": view.router,
                "reachable": view.reachable,
                "links": [{"peer": link.peer, "cost": link.cost} for link in view.links],
                "listeners": list(view.listeners),
                "connectors": list(view.connectors),
            }
            for view in sorted(status.network, key=lambda v: v.router)
        ],
        "services": [
            {
                "routingKey": key,
                "listeners": sorted(where["listeners"]),
                "connectors": sorted(where["connectors"]),
            }
            for key, where in sorted(services.items())
        ],
        "amqpAddresses": [asdict(address) for address in local.messaging],
        "links": [asdict(link) for link in status.links or local.links],
        "routes": [asdict(route) for route in status.routers or local.routers],
    })


def _peers(site: dict[str, Any]) -> str:
    return ", ".join(f"{link['peer']} (cost {link['cost']})" for link in site["links"]) or "-"


@network.command(help="Every site with its links and services; -o for the full data.")
@output_option()
@pass_cli
def status(ctx: CliContext, output: OutputFormat | None) -> None:
    view = node_status(ctx.namespace, "network")
    data = network_data(view, node_status(ctx.namespace, "status"))
    observer = find(ctx.namespace.runtime_dir)
    if observer is not None:
        try:
            data["observer"] = traffic(observer)
        except ObserverUnavailable as error:
            data["observer"] = {"url": observer, "error": str(error)}
    if output is not None:
        emit_data(ctx, data, output)
        return
    me = data["router"]["id"]
    emit_table(
        ctx,
        ["SITE", "REACHABLE", "LINKS", "LISTENERS", "CONNECTORS"],
        [
            [
                site["router"] + (" (this site)" if site["router"] == me else ""),
                "up" if site["reachable"] else "down",
                _peers(site),
                site["listeners"],
                site["connectors"],
            ]
            for site in data["sites"]
        ],
        title=f"Sites in the network seen from {me}",
    )
    ctx.out()
    emit_table(
        ctx,
        ["ROUTING KEY", "LISTENERS AT", "CONNECTORS AT"],
        [[s["routingKey"], s["listeners"], s["connectors"]] for s in data["services"]],
        title="Services",
    )
    # the routers' own flow-record addresses (docs/messaging.md) are in -o json only
    client_addresses = [
        a for a in data["amqpAddresses"] if not a["address"].startswith(FLOW_RECORD_PREFIXES)
    ]
    if client_addresses:
        ctx.out()
        emit_table(
            ctx,
            ["ADDRESS", "DISTRIBUTION", "SENDERS", "RECEIVERS", "REMOTE", "IN", "OUT",
             "ACCEPTED", "RELEASED", "DROPPED"],
            [
                [a["address"], a["distribution"], a["senders"], a["receivers"], a["remote"],
                 a["deliveredIn"], a["deliveredOut"], a["accepted"], a["released"], a["dropped"]]
                for a in client_addresses
            ],
            title=f"AMQP addresses at {me}",
        )
    ctx.out()
    emit_table(
        ctx,
        ["LINK", "DIRECTION", "PEER", "STATE", "COST", "ENDPOINT"],
        [
            [
                link["name"],
                link["direction"],
                link["peer"],
                link["state"] + (f" ({link['lastError']})" if link["lastError"] else ""),
                link["cost"],
                f"{link['host']}:{link['port']}",
            ]
            for link in data["links"]
        ],
        title=f"Links of {me}",
    )
    seen = data.get("observer")
    if seen is None:
        return
    ctx.out()
    if "error" in seen:
        ctx.out(f"Traffic: {seen['error']}")
        return
    emit_table(
        ctx,
        ["ROUTING KEY", "CONNECTIONS", "OPEN", "BYTES SENT", "BYTES RECEIVED"],
        [
            [s["routingKey"], s["connections"], s["open"], s["bytesSent"], s["bytesReceived"]]
            for s in seen["services"]
        ],
        title=f"Traffic, from the observer at {seen['url']}",
    )
