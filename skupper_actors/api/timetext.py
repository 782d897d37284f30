"""Durations ("15m", "1h30m") and RFC 3339 times as resources write them, to and from seconds."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation

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
