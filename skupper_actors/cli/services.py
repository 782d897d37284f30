"""Listener and connector commands share their shape; this builds both groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from skupper_actors.api import API_VERSION, Resource
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
from skupper_actors.cli.waiting import WaitMode

Option = Callable[[Callable[..., Any]], Callable[..., Any]]


def document(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A Skupper-shaped document; options left unset (None) take the api's defaults."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name},
        "spec": {key: value for key, value in spec.items() if value is not None},
    }


def updated(resource: Resource, changes: dict[str, Any]) -> Resource:
    """The resource with the given spec fields (camelCase keys) replaced where not None."""
    doc = store.document_of(resource)
    doc["spec"].update({key: value for key, value in changes.items() if value is not None})
    return store.build(doc)


def make_group(
    kind: str,
    *,
    help_text: str,
    options: list[Option],
    spec_of: Callable[..., dict[str, Any]],
    columns: list[tuple[str, Callable[[Resource], object]]],
) -> click.Group:
    """`create|update|delete|status|generate` for one kind.

    `options` are the kind's spec options (without --port); `spec_of(**options)` maps
    their values to camelCase spec fields.
    """
    lower = kind.lower()

    def with_options(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    @click.group(name=lower, help=help_text, short_help=f"{kind}s: create, update, delete, ...")
    def group() -> None:
        pass

    @group.command(help=f"Create a {lower} (its routing key defaults to its name).")
    @click.argument("name")
    @click.argument("port", type=int)
    @with_options
    @wait_options()
    @pass_cli
    def create(
        ctx: CliContext, /, name: str, port: int, wait: WaitMode, timeout: float, **values: Any
    ) -> None:
        resource = store.build(document(kind, name, {**spec_of(name=name, **values), "port": port}))
        if store.read_declared(ctx.namespace, kind, name) is not None:
            raise CliError(
                ExitCode.ALREADY_EXISTS,
                f"{kind} {name!r} already exists in namespace {ctx.namespace.name!r} "
                f"(use 'skupper {lower} update')",
            )
        submit(ctx, resource, verb="created", wait=wait, timeout=timeout)

    @group.command(help=f"Change a {lower}: only the options given change.")
    @click.argument("name")
    @click.option("--port", type=int, help="The port.")
    @with_options
    @wait_options()
    @pass_cli
    def update(
        ctx: CliContext,
        /,
        name: str,
        port: int | None,
        wait: WaitMode,
        timeout: float,
        **values: Any,
    ) -> None:
        existing = store.require_declared(ctx.namespace, kind, name)
        changes = {**spec_of(name=None, **values), "port": port}
        submit(ctx, updated(existing, changes), verb="updated", wait=wait, timeout=timeout)

    @group.command(help=f"Delete a {lower}.")
    @click.argument("name")
    @pass_cli
    def delete(ctx: CliContext, name: str) -> None:
        delete_resource(ctx, kind, name)

    @group.command(help=f"Show {lower}s (or one) with their status.")
    @click.argument("name", required=False)
    @output_option()
    @pass_cli
    def status(ctx: CliContext, name: str | None, output: OutputFormat | None) -> None:
        show_status(ctx, kind, name, output, columns)

    @group.command(name="generate", help=f"Print a {lower} resource without creating it.")
    @click.argument("name")
    @click.argument("port", type=int)
    @with_options
    @output_option()
    @pass_cli
    def generate_command(
        ctx: CliContext, /, name: str, port: int, output: OutputFormat | None, **values: Any
    ) -> None:
        resource = store.build(document(kind, name, {**spec_of(name=name, **values), "port": port}))
        generate(ctx, resource, output)

    return group


def _routing_key(name: str | None, routing_key: str | None) -> str | None:
    return routing_key if routing_key is not None else name


def _listener_spec(
    *,
    name: str | None,
    routing_key: str | None,
    host: str | None,
    tls_credentials: str | None,
    listener_type: str | None,
    observer: str | None,
) -> dict[str, Any]:
    return {
        "routingKey": _routing_key(name, routing_key),
        "host": host,
        "tlsCredentials": tls_credentials,
        "type": listener_type,
        "observer": observer,
    }


def _connector_spec(
    *,
    name: str | None,
    routing_key: str | None,
    host: str | None,
    tls_credentials: str | None,
    connector_type: str | None,
) -> dict[str, Any]:
    return {
        "routingKey": _routing_key(name, routing_key),
        "host": host,
        "tlsCredentials": tls_credentials,
        "type": connector_type,
    }


_ROUTING_KEY = click.option(
    "-r", "--routing-key", help="The service's routing key (default: the name)."
)
_TLS = click.option(
    "--tls-credentials", help="A folder name in input/certs with tls.crt, tls.key and ca.crt."
)


def _spec_field(field: str) -> Callable[[Resource], object]:
    return lambda resource: getattr(getattr(resource, "spec", None), field, None)


def _matched(field: str) -> Callable[[Resource], object]:
    return lambda resource: getattr(resource.status, field, None)


listener = make_group(
    "Listener",
    help_text="Listeners: a local port whose connections go to connectors with its routing key.",
    options=[
        _ROUTING_KEY,
        click.option("--host", help="The address to bind (default: 0.0.0.0)."),
        _TLS,
        click.option("--listener-type", type=click.Choice(["tcp"]), help="The type (tcp)."),
        click.option(
            "--observer",
            type=click.Choice(["auto", "none", "http1", "http2"]),
            help="The protocol observer (default: auto).",
        ),
    ],
    spec_of=_listener_spec,
    columns=[
        ("ROUTING KEY", _spec_field("routing_key")),
        ("HOST", _spec_field("host")),
        ("PORT", _spec_field("port")),
        ("MATCHED", _matched("has_matching_connector")),
    ],
)

connector = make_group(
    "Connector",
    help_text="Connectors: a server (host and port) that serves its routing key to the network.",
    options=[
        _ROUTING_KEY,
        click.option("--host", help="The server's host (default: localhost)."),
        _TLS,
        click.option("--connector-type", type=click.Choice(["tcp"]), help="The type (tcp)."),
    ],
    spec_of=_connector_spec,
    columns=[
        ("ROUTING KEY", _spec_field("routing_key")),
        ("HOST", _spec_field("host")),
        ("PORT", _spec_field("port")),
        ("MATCHED", _matched("has_matching_listener")),
    ],
)
