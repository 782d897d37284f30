"""`skupper link`: links to other sites (made by `token redeem`, or applied from
`link generate` output of the other site)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

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
from skupper_actors.cli.services import updated
from skupper_actors.cli.waiting import WaitMode, request_reload


@click.group(name="link", help="Links from this site to others.")
def link() -> None:
    pass


def generated_links(links_dir: Path) -> list[dict[str, Any]]:
    """The documents the node wrote to runtime/links for other sites to apply."""
    documents: list[dict[str, Any]] = []
    for path in sorted(links_dir.glob("*.yaml")) if links_dir.is_dir() else []:
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as error:
            raise CliError(ExitCode.VALIDATION, f"{path}: cannot read: {error}") from None
        documents += [d for d in loaded if isinstance(d, dict)]
    return documents


@link.command(
    name="generate",
    help="Print a Link (with its credentials) that another site applies to link to this one. "
    "Needs link access and a node that has run; the output holds a private key: keep it safe.",
)
@click.option("--name", help="Only the Link of that name (and what it refers to).")
@click.option("--cost", type=click.IntRange(min=1), help="The link's cost.")
@output_option()
@pass_cli
def generate_link(
    ctx: CliContext, name: str | None, cost: int | None, output: OutputFormat | None
) -> None:
    documents = generated_links(ctx.namespace.links_dir)
    if name is not None:
        links = [d for d in documents if d.get("kind") == "Link"]
        wanted = [d for d in links if (d.get("metadata") or {}).get("name") == name]
        if not wanted:
            raise CliError(ExitCode.NOT_FOUND, f"no generated Link {name!r}")
        credentials = {(d.get("spec") or {}).get("tlsCredentials") for d in wanted}
        documents = wanted + [
            d
            for d in documents
            if d.get("kind") != "Link" and (d.get("metadata") or {}).get("name") in credentials
        ]
    if not any(d.get("kind") == "Link" for d in documents):
        raise CliError(
            ExitCode.NOT_FOUND,
            f"no link to generate in namespace {ctx.namespace.name!r}: the site needs link access "
            "(skupper site update --enable-link-access) and a node that has run",
        )
    if cost is not None:
        for document in documents:
            if document.get("kind") == "Link":
                document.setdefault("spec", {})["cost"] = cost
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
    # A redeemed token's Link carries the token's name; deleting the token removes the link.
    removed = [
        kind for kind in ("Link", "AccessToken") if store.delete(namespace, kind, name)
    ]
    if not removed:
        raise CliError(
            ExitCode.NOT_FOUND, f"Link {name!r} not found in namespace {namespace.name!r}"
        )
    outcome = request_reload(namespace)
    for kind in removed:
        ctx.out(f"{kind} {name!r} deleted.")
    if not outcome.running:
        ctx.note(f"note: the site in namespace {namespace.name!r} is not running.")
