"""`skupper link`: links to other sites (made by `token redeem`, or applied from the
other site's `link generate` output)."""

from __future__ import annotations

from typing import Any

import click
import yaml

from skupper_actors.api import API_VERSION, ResourceError, read_status
from skupper_actors.cli import store
from skupper_actors.cli.common import (
    output_option,
    pass_cli,
    show_status,
    submit,
    wait_options,
)
from skupper_actors.cli.context import CliContext
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.cli.output import OutputFormat, emit_data
from skupper_actors.cli.secrets import secret_document
from skupper_actors.cli.services import updated
from skupper_actors.cli.waiting import WaitMode, request_reload
from skupper_actors.security import CertificateAuthority, CredentialsError, issue_client_cert


@click.group(name="link", help="Links from this site to others.")
def link() -> None:
    pass


SITE_CA = "skupper-site-ca"


def _site_endpoints(ctx: CliContext) -> tuple[str, list[dict[str, Any]]]:
    """The site's name and the inter-router endpoints its node reports."""
    sites = store.declared(ctx.namespace, "Site")
    if len(sites) != 1:
        raise CliError(ExitCode.NOT_FOUND, f"no site in namespace {ctx.namespace.name!r}")
    site = sites[0]
    try:
        reported = read_status(ctx.namespace, "Site", site.name)
    except ResourceError:
        reported = None
    endpoints = getattr(reported.status, "endpoints", ()) if reported is not None else ()
    found = [
        {"name": e.name, "host": e.host, "port": str(e.port)}
        for e in endpoints
        if e.name == "inter-router"
    ]
    if not found:
        raise CliError(
            ExitCode.NOT_FOUND,
            f"site {site.name!r} reports no inter-router endpoint: it needs link access "
            "(skupper site update --enable-link-access) and a running node",
        )
    return site.name, found


def _site_ca(ctx: CliContext) -> CertificateAuthority:
    folder = ctx.namespace.runtime_certs_dir / SITE_CA
    try:
        return CertificateAuthority.load(folder)
    except (CredentialsError, OSError):
        raise CliError(
            ExitCode.NOT_FOUND, f"the site has no CA yet ({folder}): start its node once"
        ) from None


@link.command(
    name="generate",
    help="Print a Link and its credentials (a TLS Secret) that another site applies with "
    "'skupper system apply -f' to link to this one. The output holds a private key: keep it "
    "safe. Needs link access and a running node.",
)
@click.option("--name", help="The link's (and its credentials') name (default: link-<site>).")
@click.option("--cost", type=click.IntRange(min=1), default=1, show_default=True,
              help="The link's cost.")
@output_option()
@pass_cli
def generate_link(ctx: CliContext, name: str | None, cost: int, output: OutputFormat | None) -> (
    None
):
    site_name, endpoints = _site_endpoints(ctx)
    link_name = name or f"link-{site_name}"
    resource = store.build(
        {
            "apiVersion": API_VERSION,
            "kind": "Link",
            "metadata": {"name": link_name},
            "spec": {"endpoints": endpoints, "tlsCredentials": link_name, "cost": cost},
        }
    )
    credentials = issue_client_cert(_site_ca(ctx), link_name)
    documents = [store.document_of(resource), secret_document(link_name, credentials)]
    if output == "json":
        emit_data(ctx, documents, "json")
    else:
        ctx.out(yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True), end="")


@link.command(help="Change a link's cost.")
@click.argument("name")
@click.option("--cost", type=int, required=True, help="The link's cost (1 or more).")
@wait_options()
@pass_cli
def update(ctx: CliContext, name: str, cost: int, wait: WaitMode, timeout: float) -> None:
    existing = store.require_declared(ctx.namespace, "Link", name)
    submit(ctx, updated(existing, {"cost": cost}), verb="updated", wait=wait, timeout=timeout)


@link.command(help="Show links with their status.")
@click.argument("name", required=False)
@output_option()
@pass_cli
def status(ctx: CliContext, name: str | None, output: OutputFormat | None) -> None:
    show_status(
        ctx,
        "Link",
        name,
        output,
        [
            ("REMOTE SITE", lambda r: getattr(r.status, "remote_site_name", None)),
            ("COST", lambda r: getattr(getattr(r, "spec", None), "cost", None)),
        ],
    )


@link.command(help="Delete a link (or the token that made it).")
@click.argument("name")
@pass_cli
def delete(ctx: CliContext, name: str) -> None:
    namespace = ctx.namespace
    # A redeemed token's Link carries the token's name.
    removed = [kind for kind in ("Link", "AccessToken") if store.delete(namespace, kind, name)]
    made_by_node = namespace.links_dir / f"Link-{name}.yaml"
    if not removed and not made_by_node.exists():
        raise CliError(
            ExitCode.NOT_FOUND, f"Link {name!r} not found in namespace {namespace.name!r}"
        )
    outcome = request_reload(namespace)
    for kind in removed:
        ctx.out(f"{kind} {name!r} deleted.")
    if made_by_node.exists():
        # The node owns runtime/: the CLI never edits it.
        ctx.note(
            f"note: the node keeps the link it made from token {name!r} in {made_by_node}; "
            "it stays until the node removes it"
        )
    if not outcome.running:
        ctx.note(f"note: the site in namespace {namespace.name!r} is not running.")
