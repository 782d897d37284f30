"""A list request's query string, as Skupper's observer reads it, applied to items.

``offset``, ``limit``, ``sortBy=<field>.asc|desc`` (default ``identity``),
``timeRangeStart`` / ``timeRangeEnd`` (µs; default the last 15 minutes),
``timeRangeOperation=intersects|contains|within``, ``state=all|active|terminated``; any
other parameter filters on the item field of that name (compared as text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_WINDOW_US = 15 * 60 * 1_000_000
OPERATIONS = ("intersects", "contains", "within")
STATES = ("all", "active", "terminated")
_RESERVED = {
    "offset",
    "limit",
    "sortBy",
    "timeRangeStart",
    "timeRangeEnd",
    "timeRangeOperation",
    "state",
}


class QueryError(ValueError):
    """A parameter the API cannot use (answered with 400 and this message)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    offset: int = 0
    limit: int | None = None
    sort_field: str = "identity"
    descending: bool = False
    start: int = 0
    end: int = 0
    operation: str = "intersects"
    state: str = "all"
    filters: tuple[tuple[str, str], ...] = ()


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise QueryError(f"{name} must be a whole number, not {text!r}") from None
    if value < 0:
        raise QueryError(f"{name} must not be negative")
    return value


def parse(params: Mapping[str, str], *, now_us: int) -> ListQuery:
    sort = params.get("sortBy", "identity") or "identity"
    field, _, direction = sort.partition(".")
    if direction not in ("", "asc", "desc"):
        raise QueryError(f"sortBy direction must be asc or desc, not {direction!r}")
    operation = params.get("timeRangeOperation", "intersects")
    if operation not in OPERATIONS:
        raise QueryError(f"timeRangeOperation must be one of {', '.join(OPERATIONS)}")
    state = params.get("state", "all")
    if state not in STATES:
        raise QueryError(f"state must be one of {', '.join(STATES)}")
    end = _int(params, "timeRangeEnd", now_us)
    start = _int(params, "timeRangeStart", max(0, end - DEFAULT_WINDOW_US))
    if start > end:
        raise QueryError("timeRangeStart is after timeRangeEnd")
    limit = params.get("limit")
    return ListQuery(
        offset=_int(params, "offset", 0),
        limit=None if limit in (None, "") else _int(params, "limit", 0),
        sort_field=field,
        descending=direction == "desc",
        start=start,
        end=end,
        operation=operation,
        state=state,
        filters=tuple(sorted((k, v) for k, v in params.items() if k not in _RESERVED)),
    )


def _in_range(item: Mapping[str, Any], query: ListQuery) -> bool:
    start = item.get("startTime") or 0
    end = item.get("endTime") or 0
    if query.operation == "intersects":
        return start <= query.end and (end == 0 or end >= query.start)
    if query.operation == "contains":  # the item's lifetime holds the whole range
        return start <= query.start and (end == 0 or end >= query.end)
    return start >= query.start and end != 0 and end <= query.end  # within


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def apply(items: list[dict[str, Any]], query: ListQuery) -> tuple[list[dict[str, Any]], int]:
    """The page of ``items`` the query asks for, and how many matched before paging."""
    if items:
        fields = set().union(*(item.keys() for item in items))
        for name, _ in query.filters:
            if name not in fields:
                raise QueryError(f"unknown filter field {name!r}")
        if query.sort_field not in fields:
            raise QueryError(f"cannot sort by unknown field {query.sort_field!r}")
    matched = []
    for item in items:
        end = item.get("endTime") or 0
        if query.state == "active" and end != 0:
            continue
        if query.state == "terminated" and end == 0:
            continue
        if not _in_range(item, query):
            continue
        if all(_as_text(item.get(name)) == value for name, value in query.filters):
            matched.append(item)
    field = query.sort_field
    present = [item for item in matched if item.get(field) is not None]
    missing = [item for item in matched if item.get(field) is None]
    try:
        present.sort(key=lambda item: item[field], reverse=query.descending)
    except TypeError:
        present.sort(key=lambda item: _as_text(item[field]), reverse=query.descending)
    ordered = present + missing
    total = len(ordered)
    page = ordered[query.offset :]
    if query.limit is not None:
        page = page[: query.limit]
    return page, total
