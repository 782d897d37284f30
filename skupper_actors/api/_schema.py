"""marshmallow fields and validators for resources, beyond those `siteconfig` already has."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import ValidationError, fields
from marshmallow.validate import OneOf, Range

from skupper_actors.api.meta import FrozenMap
from skupper_actors.siteconfig import _COMMON_MESSAGES, _Int

# Kubernetes' DNS-1123 label (resource names) and subdomain (secret and issuer names).
_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_LABEL_LENGTH = 63
MAX_SUBDOMAIN_LENGTH = 253


class Integer(_Int):
    """A strict integer that also refuses booleans (YAML `true` is an int in Python)."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        result: int = super()._validated(value)
        return result


class StringMap(fields.Field):  # type: ignore[type-arg]
    """A mapping of strings to strings, loaded as a `FrozenMap`; errors name the key."""

    default_error_messages = {**_COMMON_MESSAGES, "invalid": "must be a mapping"}

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

    default_error_messages = {**_COMMON_MESSAGES, "invalid": "must be a port number"}

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
        **_COMMON_MESSAGES,
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
        **_COMMON_MESSAGES,
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


# --- durations and timestamps --------------------------------------------------------------

_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(h|ms|m|s)")
_UNIT_SECONDS = {"h": Decimal(3600), "m": Decimal(60), "s": Decimal(1), "ms": Decimal("0.001")}


def parse_duration(text: str) -> float:
    """Seconds in a duration like "15m", "1h30m", "90s", "1.5h" or "250ms" (whole ms only)."""
    position = 0
    total = Decimal(0)
    if not text:
        raise ValueError("must be a duration like 15m, 1h30m or 90s")
    while position < len(text):
        match = _DURATION_PART_RE.match(text, position)
        if match is None:
            raise ValueError("must be a duration like 15m, 1h30m or 90s")
        try:
            total += Decimal(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        except InvalidOperation:
            raise ValueError("must be a duration like 15m, 1h30m or 90s") from None
        position = match.end()
    milliseconds = total * 1000
    if milliseconds != milliseconds.to_integral_value():
        raise ValueError("must be a whole number of milliseconds")
    if total <= 0:
        raise ValueError("must be longer than 0s")
    return int(milliseconds) / 1000


def format_duration(seconds: float) -> str:
    """The canonical text of a duration: "15m", "1h30m", "1m30s", "2.5s", "250ms"."""
    milliseconds = round(seconds * 1000)
    if milliseconds <= 0:
        raise ValueError(f"a duration must be positive, not {seconds!r}")
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if fraction:
        parts.append(f"{whole}.{fraction:03d}".rstrip("0") + "s")
    elif whole:
        parts.append(f"{whole}s")
    return "".join(parts)


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with a zone ("Z" or an offset)."""
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a time needs a zone")
    return moment.timestamp()


def format_timestamp(seconds: float) -> str:
    """RFC 3339 in UTC, whole seconds unless `seconds` has a fraction."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    spec = "seconds" if seconds == int(seconds) else "microseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


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

    default_error_messages = {**_COMMON_MESSAGES}


class Items(fields.List):  # type: ignore[type-arg]
    """A list loaded as a tuple; `key:` with nothing after it is an empty list.

    Empty lists are left out of dumps, as Skupper's omitempty does.
    """

    default_error_messages = {**_COMMON_MESSAGES, "invalid": "must be a list"}

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
