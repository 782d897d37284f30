"""Numeric Site settings (`spec.settings`, text to text in the resource): one reader for
every part of the node that a setting tunes, and one wording of what is wrong."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TypeVar

N = TypeVar("N", int, float)


class SettingInvalid(ValueError):
    """A Site setting's text that is not a value it takes: ``setting NAME: 'TEXT' PROBLEM``."""

    def __init__(self, name: str, text: str, problem: str) -> None:
        super().__init__(f"setting {name}: {text!r} {problem}")
        self.name = name
        self.text = text
        self.problem = problem


def site_setting(
    settings: Mapping[str, str],
    name: str,
    default: N,
    *,
    low: float | None = None,
    high: float | None = None,
    positive: bool = False,
) -> N:
    """One numeric Site setting, of ``default``'s type; absent, the default; text that is
    not such a number, not finite, not above 0 when ``positive``, or out of ``low`` ..
    ``high`` (give both), raises ``SettingInvalid``."""
    text = settings.get(name)
    if text is None:
        return default
    kind = type(default)
    try:
        value = kind(text)
    except ValueError:
        what = "is not a whole number" if kind is int else "is not a number"
        raise SettingInvalid(name, text, what) from None
    if not math.isfinite(value) or (positive and not value > 0):
        raise SettingInvalid(name, text, "is not greater than 0")
    if (low is not None and value < low) or (high is not None and value > high):
        raise SettingInvalid(name, text, f"is not from {low:g} to {high:g}")
    return value


def lenient_setting(
    settings: Mapping[str, str],
    name: str,
    default: N,
    problem: Callable[[str, str, str], None],
    *,
    low: float | None = None,
    high: float | None = None,
    positive: bool = False,
) -> N:
    """``site_setting`` for a setting that must not stop a running site: a bad value
    keeps the default and is told to ``problem(name, text, what is wrong)``."""
    try:
        return site_setting(settings, name, default, low=low, high=high, positive=positive)
    except SettingInvalid as error:
        problem(error.name, error.text, error.problem)
        return default
