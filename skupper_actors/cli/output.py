"""Printing: resources as YAML/JSON (parsable, for scripts) and tables (for people).

Tables are drawn with rich on a terminal and as plain space-aligned columns otherwise, so
a pipe gets text that `awk` and tests can read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import yaml

from skupper_actors.api import Resource, dump_resources, resource_to_document
from skupper_actors.cli.context import CliContext

OutputFormat = Literal["yaml", "json"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("yaml", "json")


def resource_documents(resources: Iterable[Resource], *, include_status: bool) -> list[Any]:
    return [resource_to_document(r, include_status=include_status) for r in resources]


def emit_resources(
    ctx: CliContext,
    resources: Sequence[Resource],
    fmt: OutputFormat,
    *,
    include_status: bool,
    single: bool,
) -> None:
    """YAML: multi-document stream; JSON: one object if `single`, else an array."""
    if fmt == "yaml":
        ctx.out(dump_resources(resources, include_status=include_status), end="")
        return
    documents = resource_documents(resources, include_status=include_status)
    ctx.out(json.dumps(documents[0] if single else documents, indent=2, default=str))


def camel(name: str) -> str:
    """`inter_router_port` -> `interRouterPort` (Skupper's key style)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_keys(data: Any) -> Any:
    """The same data with every dict key in camelCase, at every depth."""
    if isinstance(data, Mapping):
        return {camel(str(key)): camel_keys(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [camel_keys(value) for value in data]
    return data


def emit_data(ctx: CliContext, data: Mapping[str, Any] | list[Any], fmt: OutputFormat) -> None:
    """Plain data (already made of dicts, lists, strings and numbers) as YAML or JSON."""
    if fmt == "json":
        ctx.out(json.dumps(data, indent=2, default=str))
    else:
        ctx.out(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")


def emit_table(
    ctx: CliContext,
    headers: Sequence[str] | None,
    rows: Sequence[Sequence[object]],
    *,
    title: str | None = None,
) -> None:
    """A table: rich on a terminal, aligned plain text otherwise; no header row if None."""
    cells = [[_cell(value) for value in row] for row in rows]
    columns = len(headers) if headers is not None else len(cells[0]) if cells else 0
    if ctx.env.stdout_isatty:
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title=title, title_justify="left", header_style="bold",
            show_header=headers is not None,
        )
        for header in headers or [""] * columns:
            table.add_column(header)
        for row in cells:
            table.add_row(*row)
        Console(file=ctx.env.stdout).print(table)
        return
    if title:
        ctx.out(title)
    widths = [len(h) for h in headers] if headers is not None else [0] * columns
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    for row in [list(headers), *cells] if headers is not None else cells:
        ctx.out("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "-"
    text = str(value)
    return text if text else "-"
