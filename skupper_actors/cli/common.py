"""What many commands share: the --wait/--timeout/-o options, writing a resource and
waiting for it, and listing resources with their status."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from skupper_actors.api import (
    Namespace,
    Resource,
    ResourceError,
    load_resource_file,
    parse_duration,
)
from skupper_actors.cli import store
from skupper_actors.cli.context import CliContext
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.cli.output import OUTPUT_FORMATS, OutputFormat, emit_resources, emit_table
from skupper_actors.cli.waiting import (
    DEFAULT_TIMEOUT,
    WAIT_MODES,
    WaitMode,
    request_reload,
    wait_for_status,
)

F = TypeVar("F", bound=Callable[..., Any])

pass_cli = click.make_pass_decorator(CliContext)


class DurationType(click.ParamType):  # type: ignore[type-arg]  # generic in click 8.2+ only
    """Seconds as a plain number ("60") or a duration ("90s", "2m", "1h30m")."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> (
        float
    ):
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                seconds = parse_duration(text)
            except ValueError as error:
                self.fail(f"{text!r}: {error}", param, ctx)
        if seconds <= 0:
            self.fail(f"{text!r}: must be greater than 0", param, ctx)
        return seconds


DURATION = DurationType()


def wait_options(default: WaitMode = "configured") -> Callable[[F], F]:
    """`--wait` and `--timeout`, as Skupper's create/update commands have them."""

    def decorate(function: F) -> F:
        function = click.option(
            "--timeout",
            type=DURATION,
            default=DEFAULT_TIMEOUT,
            show_default="60s",
            help="How long to wait (seconds, or a duration like 90s or 2m).",
        )(function)
        return click.option(
            "--wait",
            type=click.Choice(WAIT_MODES),
            default=default,
            show_default=True,
            help="Wait until the resource is configured, ready, or not at all.",
        )(function)

    return decorate


def output_option(required: bool = False, help_text: str = "Print as yaml or json.") -> (
    Callable[[F], F]
):
    return click.option(
        "-o", "--output", type=click.Choice(OUTPUT_FORMATS), required=required, help=help_text
    )


def submit(
    ctx: CliContext,
    resource: Resource,
    *,
    verb: str,
    wait: WaitMode,
    timeout: float,
    done: str | None = None,
) -> Resource | None:
    """Write the resource, ask the node to reconcile, and wait as asked.

    Returns the resource as the node reported it, or None when not waiting. A node that is
    not running is a note (the file stays written), unless there is something to wait for.
    """
    namespace = ctx.namespace
    path = store.write(namespace, resource)
    label = f"{resource.kind} {resource.name!r}"
    outcome = request_reload(namespace)
    if not outcome.running:
        ctx.out(f"{label} {verb} ({path}).")
        ctx.note(
            f"note: the site in namespace {namespace.name!r} is not running; the change takes "
            f"effect when its node starts (skupper -n {namespace.name} system start)."
        )
        if wait == "none":
            return None
        raise CliError(
            ExitCode.NODE_UNREACHABLE,
            f"cannot wait for {label} to be {wait}: the node of namespace "
            f"{namespace.name!r} is not running ({outcome.problem}); use --wait none to skip",
        )
    if outcome.problem:
        ctx.note(f"note: {outcome.problem}; the node picks the file up within a second or two")
    if wait == "none":
        ctx.out(f"{label} {verb}.")
        return None
    with ctx.progress(f"Waiting for {label} to be {wait}") as progress:
        reported = wait_for_status(namespace, resource, wait, timeout, progress=progress.update)
    ctx.out(done or f"{label} {verb} and {wait}.")
    return reported


def reported_resources(namespace: Namespace, kind: str) -> dict[str, Resource]:
    """The status files of one kind, by name; files that do not load are left out."""
    found: dict[str, Resource] = {}
    for path in sorted(namespace.status_dir.glob(f"{kind}-*.yaml")):
        try:
            resources = load_resource_file(path)
        except ResourceError:
            continue
        for resource in resources:
            if resource.kind == kind:
                found[resource.name] = resource
    return found


def current_resources(ctx: CliContext, kind: str, name: str | None) -> list[Resource]:
    """The declared resources of `kind` with the node's status where it reported one.

    A status for an older spec is not shown with the new spec; resources the node made
    itself (a Link from a token) have a status but no file in input/resources.
    """
    namespace = ctx.namespace
    declared = {r.name: r for r in store.declared(namespace, kind)}
    reported = reported_resources(namespace, kind)
    merged: dict[str, Resource] = {}
    for resource_name in sorted(set(declared) | set(reported)):
        mine = declared.get(resource_name)
        theirs = reported.get(resource_name)
        if theirs is not None and (mine is None or _same_spec(mine, theirs)):
            merged[resource_name] = theirs
        elif mine is not None:
            merged[resource_name] = mine
    if name is not None:
        if name not in merged:
            raise CliError(
                ExitCode.NOT_FOUND, f"{kind} {name!r} not found in namespace {namespace.name!r}"
            )
        return [merged[name]]
    return list(merged.values())


def _same_spec(a: Resource, b: Resource) -> bool:
    return bool(getattr(a, "spec", None) == getattr(b, "spec", None))


def show_status(
    ctx: CliContext,
    kind: str,
    name: str | None,
    output: OutputFormat | None,
    columns: Sequence[tuple[str, Callable[[Resource], object]]],
) -> None:
    """`<kind> status [name]`: a table, or the resources with status as yaml/json."""
    resources = current_resources(ctx, kind, name)
    if output is not None:
        emit_resources(ctx, resources, output, include_status=True, single=name is not None)
        return
    if not resources:
        ctx.note(f"No {kind} in namespace {ctx.namespace.name!r}.")
        return
    headers = ["NAME", "STATUS", *(header for header, _ in columns), "MESSAGE"]
    rows = [
        [r.name, *status_and_message(r)[:1], *(get(r) for _, get in columns),
         status_and_message(r)[1]]
        for r in resources
    ]
    emit_table(ctx, headers, rows)


def status_and_message(resource: Resource) -> tuple[str, str]:
    if resource.status is None:
        return "Pending", "not reported by the node yet"
    return resource.status.status, resource.status.message


def delete_resource(ctx: CliContext, kind: str, name: str) -> None:
    """Remove the resource's file and ask a running node to reconcile."""
    namespace = ctx.namespace
    if not store.delete(namespace, kind, name):
        raise CliError(
            ExitCode.NOT_FOUND, f"{kind} {name!r} not found in namespace {namespace.name!r}"
        )
    outcome = request_reload(namespace)
    ctx.out(f"{kind} {name!r} deleted.")
    if not outcome.running:
        ctx.note(f"note: the site in namespace {namespace.name!r} is not running.")


def generate(ctx: CliContext, resource: Resource, output: OutputFormat | None) -> None:
    """Print the resource (validated, not written)."""
    emit_resources(ctx, [resource], output or "yaml", include_status=False, single=True)
