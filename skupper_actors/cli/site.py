"""`skupper site`: the one Site of a namespace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from skupper_actors.api import Resource, Site
from skupper_actors.cli import store
from skupper_actors.cli.common import (
    delete_resource,
    generate,
    output_option,
    pass_cli,
    show_status,
    submit,
    wait_options,
)
from skupper_actors.cli.context import CliContext
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.cli.output import OutputFormat
from skupper_actors.cli.services import document, updated
from skupper_actors.cli.waiting import WaitMode

F = TypeVar("F", bound=Callable[..., Any])


def the_site(ctx: CliContext, name: str | None) -> Resource:
    """The namespace's site (by name, or the only one)."""
    if name is not None:
        return store.require_declared(ctx.namespace, "Site", name)
    sites = store.declared(ctx.namespace, "Site")
    if not sites:
        raise CliError(
            ExitCode.NOT_FOUND,
            f"no site in namespace {ctx.namespace.name!r} (create one with 'skupper site create')",
        )
    if len(sites) > 1:
        raise CliError(
            ExitCode.VALIDATION,
            f"namespace {ctx.namespace.name!r} has {len(sites)} sites; name the one to use",
        )
    return sites[0]


def _spec(link_access: bool | None, ha: bool | None, edge: bool | None) -> dict[str, Any]:
    return {
        "linkAccess": None if link_access is None else ("default" if link_access else "none"),
        "ha": ha,
        "edge": edge,
    }


def _link_access_option(create: bool) -> Callable[[F], F]:
    if create:
        return click.option(
            "--enable-link-access",
            "link_access",
            is_flag=True,
            default=None,
            help="Accept links from other sites (and let this site issue tokens).",
        )
    return click.option(
        "--enable-link-access/--disable-link-access",
        "link_access",
        default=None,
        help="Accept links from other sites, or stop accepting them.",
    )


_HA = click.option("--enable-ha/--disable-ha", "ha", default=None, help="High availability.")
_EDGE = click.option("--edge/--no-edge", default=None, help="Run as an edge router.")


@click.group(name="site", help="The site of the namespace: create it first.")
def site() -> None:
    pass


@site.command(help="Create the namespace's site.")
@click.argument("name")
@_link_access_option(create=True)
@_HA
@_EDGE
@wait_options()
@pass_cli
def create(
    ctx: CliContext,
    name: str,
    link_access: bool | None,
    ha: bool | None,
    edge: bool | None,
    wait: WaitMode,
    timeout: float,
) -> None:
    resource = store.build(document("Site", name, _spec(link_access, ha, edge)))
    existing = store.declared(ctx.namespace, "Site")
    if existing:
        raise CliError(
            ExitCode.ALREADY_EXISTS,
            f"namespace {ctx.namespace.name!r} already has site {existing[0].name!r} "
            "(use 'skupper site update')",
        )
    submit(ctx, resource, verb="created", wait=wait, timeout=timeout)


@site.command(help="Change the namespace's site: only the options given change.")
@click.argument("name", required=False)
@_link_access_option(create=False)
@_HA
@_EDGE
@wait_options()
@pass_cli
def update(
    ctx: CliContext,
    name: str | None,
    link_access: bool | None,
    ha: bool | None,
    edge: bool | None,
    wait: WaitMode,
    timeout: float,
) -> None:
    existing = the_site(ctx, name)
    submit(
        ctx,
        updated(existing, _spec(link_access, ha, edge)),
        verb="updated",
        wait=wait,
        timeout=timeout,
    )


@site.command(help="Delete the namespace's site (with --all, every resource of the namespace).")
@click.argument("name", required=False)
@click.option("--all", "everything", is_flag=True, help="Delete every resource in the namespace.")
@pass_cli
def delete(ctx: CliContext, name: str | None, everything: bool) -> None:
    resource = the_site(ctx, name)
    if everything:
        others = [r for r in store.declared(ctx.namespace) if r.key != resource.key]
        for other in others:
            store.delete(ctx.namespace, other.kind, other.name)
            ctx.out(f"{other.kind} {other.name!r} deleted.")
    delete_resource(ctx, "Site", resource.name)


@site.command(help="Show the site with its status.")
@click.argument("name", required=False)
@output_option()
@pass_cli
def status(ctx: CliContext, name: str | None, output: OutputFormat | None) -> None:
    show_status(
        ctx,
        "Site",
        name,
        output,
        [
            ("LINK ACCESS", lambda r: r.spec.link_access if isinstance(r, Site) else None),
            (
                "SITES IN NETWORK",
                lambda r: r.status.sites_in_network if isinstance(r, Site) and r.status else None,
            ),
        ],
    )


@site.command(name="generate", help="Print a Site resource without creating it.")
@click.argument("name")
@_link_access_option(create=True)
@_HA
@_EDGE
@output_option()
@pass_cli
def generate_site(
    ctx: CliContext,
    name: str,
    link_access: bool | None,
    ha: bool | None,
    edge: bool | None,
    output: OutputFormat | None,
) -> None:
    generate(ctx, store.build(document("Site", name, _spec(link_access, ha, edge))), output)

