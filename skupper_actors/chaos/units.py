"""Durations, sizes and rates as people write them in scenarios: ``500ms``, ``4MiB``, ``1MiB/s``."""

from __future__ import annotations

import math
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMG]i?B|[kKMG]|B)?")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "k": 1000,
    "K": 1024,
    "KB": 1000,
    "KiB": 1 << 10,
    "M": 1 << 20,
    "MB": 1000**2,
    "MiB": 1 << 20,
    "G": 1 << 30,
    "GB": 1000**3,
    "GiB": 1 << 30,
}


def parse_duration(value: object) -> float:
    """Seconds from a number or text such as ``250ms``, ``3s``, ``2m``, ``1m30s``, ``1h``."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 500ms, 3s or 2m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError("must be a duration such as 500ms, 3s or 2m")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise ValueError("must be a duration such as 500ms, 3s or 2m")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("must be a duration of 0 or more")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from an integer or text such as ``64KiB``, ``4MiB``, ``10MB``, ``1G``."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 4096, 64KiB or 4MiB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError("must be a size such as 4096, 64KiB or 4MiB")
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    else:
        raise ValueError("must be a size such as 4096, 64KiB or 4MiB")
    if size < 0:
        raise ValueError("must be a size of 0 or more")
    return size


def parse_rate(value: object) -> int:
    """Bytes per second from an integer or text such as ``512KiB/s`` or ``1MiB``."""
    if isinstance(value, str) and value.strip().endswith("/s"):
        value = value.strip()[:-2]
    try:
        return parse_size(value)
    except ValueError:
        raise ValueError("must be a rate such as 512KiB/s or 1MiB/s") from None


def format_bytes(count: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(count) >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"
