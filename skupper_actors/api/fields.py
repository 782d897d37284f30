"""The marshmallow toolkit of every YAML boundary: site files, resources and chaos scenarios.

A strict YAML loader, marshmallow's error tree as `(field path, message)` lines, fields that
refuse what YAML would coerce (`"yes"` for a bool, `1.0` for an int), the validators and the
strict schema base. One module, so a site file, a resource and a scenario word a mistake alike.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, post_dump
from marshmallow.validate import OneOf, Range

from skupper_actors.api.meta import FrozenMap
from skupper_actors.api.timetext import (
    format_duration,
    format_timestamp,
    parse_duration,
    parse_timestamp,
)

#: A site's name (and a scenario's site and service names): a DNS-1123 subdomain label set.
SITE_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
MAX_NAME_LENGTH = 63
# Kubernetes' DNS-1123 label (resource names) and subdomain (secret and issuer names).
_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_LABEL_LENGTH = 63
MAX_SUBDOMAIN_LENGTH = 253


# --- YAML -----------------------------------------------------------------------------------


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and non-string keys instead of guessing."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, f"keys must be strings, not {key!r}", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# --- errors and fields -----------------------------------------------------------------


def problems(messages: Any) -> list[tuple[str, str]]:
    """marshmallow's nested error dict as (field path, message), ordered by path."""
    flat = sorted(flatten(messages, ()), key=lambda item: [_sort_key(p) for p in item[0]])
    return [("".join(_render(i, part) for i, part in enumerate(path)), what) for path, what in flat]


FieldPath = tuple[str | int, ...]


def flatten(messages: Any, path: FieldPath) -> Iterable[tuple[FieldPath, str]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from flatten(value, path if key == "_schema" else (*path, key))
    elif isinstance(messages, list):
        for message in messages:
            yield from flatten(message, path)
    else:
        yield path, str(messages)


def _sort_key(part: str | int) -> tuple[int, int, str]:
    return (0, part, "") if isinstance(part, int) else (1, 0, part)


def _render(position: int, part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    if not _PLAIN_KEY_RE.fullmatch(part):  # an unknown key can hold anything, even newlines
        return f"[{part!r}]"
    return part if position == 0 else f".{part}"


_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


COMMON_MESSAGES = {"required": "missing required field", "null": "must not be null"}


class Str(fields.String):
    default_error_messages = {**COMMON_MESSAGES, "invalid": "must be a string"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):  # String alone would also take bytes (YAML !!binary)
            raise self.make_error("invalid")
        return value


class Int(fields.Integer):
    default_error_messages = {**COMMON_MESSAGES, "invalid": "must be an integer"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class Float(fields.Float):
    default_error_messages = {
        **COMMON_MESSAGES,
        "invalid": "must be a number",
        "special": "must be a finite number",
    }

    def _validated(self, value: Any) -> float:
        if not isinstance(value, int | float):  # Float alone would also parse strings
            raise self.make_error("invalid")
        return super()._validated(value)


class Bool(fields.Boolean):
    default_error_messages = {**COMMON_MESSAGES, "invalid": "must be true or false"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):  # Boolean alone would also take "yes", 1, "on"...
            raise self.make_error("invalid")
        return value


class PathStr(Str):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Path:  # type: ignore[override]
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text or "\0" in text:
            raise ValidationError("must be a path")
        return Path(text)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)


class Section(fields.Nested):
    """A nested mapping; `key:` with nothing after it counts as absent."""

    default_error_messages = {**COMMON_MESSAGES}

    def __init__(self, schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(schema, allow_none=True, **kwargs)


class SchemaList(fields.List):  # type: ignore[type-arg]
    """A list of mappings; `key:` with nothing after it counts as an empty list."""

    default_error_messages = {**COMMON_MESSAGES, "invalid": "must be a list"}

    def __init__(self, schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(fields.Nested(schema), allow_none=True, **kwargs)


def non_empty(value: str) -> None:
    if not value:
        raise ValidationError("must not be empty")


def host(value: str) -> None:
    non_empty(value)
    if any(char.isspace() for char in value):
        raise ValidationError("must not contain spaces")


def site_name(value: str) -> None:
    non_empty(value)
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(f"must be at most {MAX_NAME_LENGTH} characters")
    if not SITE_NAME_RE.fullmatch(value):
        raise ValidationError(
            "must be lowercase letters, digits, '-' or '.', "
            "starting and ending with a letter or digit"
        )


def port(minimum: int = 1) -> Range:
    return Range(min=minimum, max=65535, error="must be between {min} and {max}")


POSITIVE = Range(min=0, min_inclusive=False, error="must be greater than 0")


def present(data: Mapping[str, Any]) -> dict[str, Any]:
    """The loaded fields minus explicit nulls, so the dataclass defaults apply."""
    return {key: value for key, value in data.items() if value is not None}


def duplicates(names: Iterable[tuple[int, str]], what: str) -> dict[int, dict[str, list[str]]]:
    """Errors at the `name` of each item whose name an earlier item already has."""
    seen: set[str] = set()
    duplicates: dict[int, dict[str, list[str]]] = {}
    for index, name in names:
        if name in seen:
            duplicates[index] = {"name": [f"duplicate {what} {name!r}"]}
        seen.add(name)
    return duplicates


class StrictSchema(Schema):
    error_messages = {"unknown": "unknown field", "type": "must be a mapping"}

    @post_dump
    def _drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return present(data)


# --- resource fields ---------------------------------------------------------------------


class Integer(Int):
    """A strict integer that also refuses booleans (YAML `true` is an int in Python)."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        result: int = super()._validated(value)
        return result


class StringMap(fields.Field):  # type: ignore[type-arg]
    """A mapping of strings to strings, loaded as a `FrozenMap`; errors name the key."""

    default_error_messages = {**COMMON_MESSAGES, "invalid": "must be a mapping"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> FrozenMap:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        errors: dict[str, list[str]] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                errors[str(key)] = ["keys must be non-empty strings"]
            elif not isinstance(item, str):
                errors[key] = ["must be a string"]
        if errors:
            raise ValidationError(errors)
        return FrozenMap(value)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> dict[str, str] | None:
        # Empty maps are left out of dumps, as Skupper's omitempty does.
        return dict(value) if value else None


class PortString(fields.Field):  # type: ignore[type-arg]
    """An endpoint port: Skupper writes it as a string ("55671"); an integer is accepted too."""

    default_error_messages = {**COMMON_MESSAGES, "invalid": "must be a port number"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return int(value)
        raise self.make_error("invalid")

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)


class Duration(fields.Field):  # type: ignore[type-arg]
    """A Go-style duration string ("15m", "1h30m", "90s", "500ms") loaded as seconds."""

    default_error_messages = {
        **COMMON_MESSAGES,
        "invalid": "must be a duration like 15m, 1h30m or 90s",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return parse_duration(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_duration(value)


class Timestamp(fields.Field):  # type: ignore[type-arg]
    """An RFC 3339 UTC time ("2025-01-31T12:00:00Z") loaded as seconds since the epoch."""

    default_error_messages = {
        **COMMON_MESSAGES,
        "invalid": "must be a time like 2025-01-31T12:00:00Z",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float:
        # YAML reads an unquoted 2025-01-31T12:00:00Z as a datetime already.
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            return value.timestamp()
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return parse_timestamp(value)
        except ValueError:
            raise self.make_error("invalid") from None

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_timestamp(value)


# --- validators ----------------------------------------------------------------------------


def dns_label(value: str) -> None:
    """A Kubernetes resource name: lowercase letters, digits, '-', at most 63 characters."""
    if not value:
        raise ValidationError("must not be empty")
    if len(value) > MAX_LABEL_LENGTH:
        raise ValidationError(f"must be at most {MAX_LABEL_LENGTH} characters")
    if not _LABEL_RE.fullmatch(value):
        raise ValidationError(
            "must be lowercase letters, digits or '-', starting and ending with a letter or digit"
        )


def dns_subdomain(value: str) -> None:
    """A secret or issuer name; also a folder name under input/certs, so no '/' or '..'."""
    if not value:
        raise ValidationError("must not be empty")
    if len(value) > MAX_SUBDOMAIN_LENGTH:
        raise ValidationError(f"must be at most {MAX_SUBDOMAIN_LENGTH} characters")
    if not _SUBDOMAIN_RE.fullmatch(value):
        raise ValidationError(
            "must be lowercase letters, digits, '-' or '.', "
            "starting and ending with a letter or digit"
        )


def routing_key(value: str) -> None:
    """An address: anything printable without spaces."""
    if not value:
        raise ValidationError("must not be empty")
    if not value.isprintable() or any(char.isspace() for char in value):
        raise ValidationError("must be printable characters without spaces")


def one_of(choices: tuple[str, ...]) -> OneOf:
    return OneOf(choices, error="must be one of: {choices}")


def at_least(minimum: int, maximum: int | None = None) -> list[Range]:
    ranges = [Range(min=minimum, error="must be at least {min}")]
    if maximum is not None:
        ranges.append(Range(max=maximum, error="must be at most {max}"))
    return ranges


class Item(fields.Nested):
    """A mapping inside a list (a list item may not be null)."""

    default_error_messages = {**COMMON_MESSAGES}


class Items(fields.List):  # type: ignore[type-arg]
    """A list loaded as a tuple; `key:` with nothing after it is an empty list.

    Empty lists are left out of dumps, as Skupper's omitempty does.
    """

    default_error_messages = {**COMMON_MESSAGES, "invalid": "must be a list"}

    def __init__(self, inner: fields.Field, **kwargs: Any) -> None:  # type: ignore[type-arg]
        super().__init__(inner, allow_none=True, **kwargs)

    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> tuple[Any, ...]:
        return tuple(super()._deserialize(value, attr, data, **kwargs))

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> list[Any] | None:
        if not value:
            return None
        return super()._serialize(value, attr, obj, **kwargs)
