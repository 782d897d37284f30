"""`skupper token`: issue a token from this site (an AccessGrant) and redeem one from
another site (an AccessToken, which the node turns into credentials and a Link)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import click

from skupper_actors.api import (
    API_VERSION,
    DEFAULT_LINK_COST,
    AccessGrant,
    AccessToken,
    Resource,
    ResourceError,
    dump_resources,
    read_status,
)
from skupper_actors.cli import store
from skupper_actors.cli.common import DURATION, pass_cli, submit
from skupper_actors.cli.context import CliContext
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.cli.waiting import (
    DEFAULT_TIMEOUT,
    POLL_INTERVAL,
    request_reload,
    wait_for_status,
)
from skupper_actors.security._files import PRIVATE_FILE_MODE, write_file_atomically


@click.group(name="token", help="Tokens: how a site links to another one.")
def token() -> None:
    pass


def _grant_complete(resource: Resource) -> bool:
    status = resource.status
    return isinstance(resource, AccessGrant) and bool(
        status is not None and getattr(status, "url", None) and getattr(status, "code", None)
        and getattr(status, "ca", None)
    )


def _default_name(ctx: CliContext) -> str:
    sites = store.declared(ctx.namespace, "Site")
    prefix = sites[0].name if len(sites) == 1 else ctx.namespace.name
    return f"{prefix[:50]}-{secrets.token_hex(4)}"


def write_token_file(ctx: CliContext, file: str, resource: Resource) -> None:
    """Write the token YAML to `file` (0600), or to stdout for "-"."""
    text = dump_resources([resource])
    if file == "-":
        ctx.out(text, end="")
        return
    path = Path(file)
    if not path.parent.is_dir():
        raise CliError(ExitCode.NOT_FOUND, f"{path.parent}: no such folder")
    try:
        write_file_atomically(path, text.encode("utf-8"), mode=PRIVATE_FILE_MODE)
    except OSError as error:
        raise CliError(ExitCode.SYSTEM, f"cannot write {path}: {error.strerror}") from None


@token.command(
    help="Issue a token: FILE (or - for stdout) lets another site link to this one. "
    "Needs a running site with link access."
)
@click.argument("file")
@click.option(
    "--redemptions-allowed", type=click.IntRange(min=1), default=1, show_default=True,
    help="How many times the token can be redeemed.",
)
@click.option(
    "--expiration-window", default="15m", show_default=True,
    help="How long the token can be redeemed (a duration: 15m, 1h, 90s).",
)
@click.option(
    "--cost", type=click.IntRange(min=1), default=DEFAULT_LINK_COST, show_default=True,
    help="The cost of the link made with the token.",
)
@click.option("--name", help="The grant's and token's name (default: generated).")
@click.option(
    "--timeout", type=DURATION, default=DEFAULT_TIMEOUT, show_default="60s",
    help="How long to wait for the grant.",
)
@pass_cli
def issue(
    ctx: CliContext,
    file: str,
    redemptions_allowed: int,
    expiration_window: str,
    cost: int,
    name: str | None,
    timeout: float,
) -> None:
    namespace = ctx.namespace
    grant_name = name or _default_name(ctx)
    grant = store.build(
        {
            "apiVersion": API_VERSION,
            "kind": "AccessGrant",
            "metadata": {"name": grant_name},
            "spec": {
                "redemptionsAllowed": redemptions_allowed,
                "expirationWindow": expiration_window,
            },
        }
    )
    if store.read_declared(namespace, "AccessGrant", grant_name) is not None:
        raise CliError(ExitCode.ALREADY_EXISTS, f"AccessGrant {grant_name!r} already exists")
    if file != "-" and not Path(file).parent.is_dir():
        raise CliError(ExitCode.NOT_FOUND, f"{Path(file).parent}: no such folder")
    store.write(namespace, grant)
    outcome = request_reload(namespace)
    if not outcome.running:
        store.delete(namespace, "AccessGrant", grant_name)
        raise CliError(
            ExitCode.NODE_UNREACHABLE,
            f"cannot issue a token: the site in namespace {namespace.name!r} is not running "
            f"({outcome.problem}); start it with 'skupper -n {namespace.name} system start'",
        )
    with ctx.progress(f"Waiting for grant {grant_name!r} to be ready") as progress:
        reported = wait_for_status(
            namespace, grant, "ready", timeout, also=_grant_complete, progress=progress.update
        )
    status = reported.status
    assert isinstance(reported, AccessGrant) and status is not None
    access_token = store.build(
        {
            "apiVersion": API_VERSION,
            "kind": "AccessToken",
            "metadata": {"name": grant_name},
            "spec": {
                "url": getattr(status, "url", None),
                "code": getattr(status, "code", None),
                "ca": getattr(status, "ca", None),
                "linkCost": cost,
            },
        },
        source=f"AccessGrant {grant_name} status",
    )
    write_token_file(ctx, file, access_token)
    if file != "-":
        ctx.out(f"Grant {grant_name!r} is ready; token written to {file}.")
        ctx.note(
            f"It can be redeemed {redemptions_allowed} time(s) within {expiration_window}, "
            f"at the other site: skupper token redeem {file}"
        )


@token.command(help="Redeem a token FILE (or - for stdin) issued by another site, to link to it.")
@click.argument("file")
@click.option("--name", help="The token's name here (default: the name in the file).")
@click.option(
    "--timeout", type=DURATION, default=DEFAULT_TIMEOUT, show_default="60s",
    help="How long to wait for the redemption.",
)
@pass_cli
def redeem(ctx: CliContext, file: str, name: str | None, timeout: float) -> None:
    namespace = ctx.namespace
    stdin_text = ctx.env.stdin.read() if file == "-" else None
    resources = store.read_input_file(file, stdin_text).resources
    tokens = [r for r in resources if isinstance(r, AccessToken)]
    if len(tokens) != 1 or len(resources) != 1:
        raise CliError(ExitCode.VALIDATION, f"{file}: must hold exactly one AccessToken")
    access_token: Resource = tokens[0]
    if name is not None:
        document = store.document_of(access_token)
        document["metadata"]["name"] = name
        access_token = store.build(document)
    if store.read_declared(namespace, "AccessToken", access_token.name) is not None:
        raise CliError(
            ExitCode.ALREADY_EXISTS,
            f"AccessToken {access_token.name!r} was already redeemed here "
            f"(delete its link with 'skupper link delete {access_token.name}', or use --name)",
        )
    started = time.monotonic()
    try:
        submit(
            ctx,
            access_token,
            verb="written",
            wait="ready",
            timeout=timeout,
            done=f"Token {access_token.name!r} redeemed.",
        )
    except CliError as error:
        if error.code == ExitCode.FAILED:
            # The grant server's refusals are final; a stale token file would only block a retry.
            store.delete(namespace, "AccessToken", access_token.name)
            request_reload(namespace)
        raise
    _report_link(ctx, access_token.name, max(1.0, timeout - (time.monotonic() - started)))


def _report_link(ctx: CliContext, name: str, timeout: float) -> None:
    """Wait (briefly) for the node's status of the Link the token made, and say how it is."""
    deadline = time.monotonic() + min(timeout, 15.0)
    with ctx.progress(f"Waiting for link {name!r}") as progress:
        while True:
            try:
                link = read_status(ctx.namespace, "Link", name)
            except ResourceError:
                link = None
            if link is not None and link.status is not None:
                progress.update(link.status.message or link.status.status)
            if link is not None and link.status is not None and (
                link.status.status != "Pending" or time.monotonic() >= deadline
            ):
                remote = getattr(link.status, "remote_site_name", None)
                to = f" to site {remote!r}" if remote else ""
                ctx.out(f"Link {name!r}{to}: {link.status.status} ({link.status.message}).")
                return
            if time.monotonic() >= deadline:
                ctx.note(f"note: the node has not reported link {name!r} yet.")
                return
            time.sleep(POLL_INTERVAL)
