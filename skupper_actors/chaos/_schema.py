"""Scenario YAML -> frozen dataclasses, through marshmallow; every mistake names its field."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError, fields, post_load
from marshmallow.validate import OneOf, Range

from skupper_actors.api import fields as f

from . import units
from ._checks import check_scenario
from .scenario import (
    NODE_FAULTS,
    ConnectionTraffic,
    FaultKind,
    FaultSpec,
    InvariantSpec,
    LinkSpec,
    Mode,
    RandomFaults,
    RequestTraffic,
    RoutingSpec,
    Scenario,
    ScenarioError,
    ServiceSpec,
    Setup,
    SiteSpec,
    SizeRange,
    StreamTraffic,
    TrafficSpec,
)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and check the scenario file at ``path`` (raises :class:`ScenarioError`)."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(source, [("", f"cannot read ({error.strerror or error})")]) from None
    return parse_scenario(text, source=source)


def parse_scenario(text: str, *, source: str = "<string>") -> Scenario:
    """Check the YAML ``text`` of a scenario (raises :class:`ScenarioError`)."""
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(source, [("", f"{where}invalid YAML: {error.problem}")]) from None
    except yaml.YAMLError as error:
        raise ScenarioError(source, [("", f"invalid YAML: {error}")]) from None
    if not isinstance(document, dict):
        raise ScenarioError(source, [("", "top level: must be a mapping")])
    try:
        scenario: Scenario = _ScenarioSchema().load(document)
    except ValidationError as error:
        raise ScenarioError(source, _problems(error.messages)) from None
    problems = check_scenario(scenario)
    if problems:
        raise ScenarioError(source, problems)
    return scenario


# --- errors as (field path, message) ----------------------------------------------------


def _problems(messages: Any) -> list[tuple[str, str]]:
    flat = list(f.flatten(messages, ()))
    return [(_render(path), what) for path, what in flat]


_Path = tuple[str | int, ...]


def _render(path: _Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- fields ---------------------------------------------------------------------------------


class _Parsed(fields.Field):  # type: ignore[type-arg]
    """A value run through one of the ``units`` parsers; its ValueError is the message."""

    parse: Callable[[object], Any] = staticmethod(lambda value: value)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        try:
            return type(self).parse(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None


class _Duration(_Parsed):
    parse = staticmethod(units.parse_duration)


class _Size(_Parsed):
    parse = staticmethod(units.parse_size)


class _Rate(_Parsed):
    parse = staticmethod(units.parse_rate)


class _Range(fields.Field):  # type: ignore[type-arg]
    """One value (low = high) or a ``[low, high]`` pair, each parsed by ``parse``."""

    def __init__(self, parse: Callable[[object], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._parse = parse

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> tuple[Any, Any]:
        try:
            if isinstance(value, list):
                if len(value) != 2:
                    raise ValueError("must be one value or a [low, high] pair")
                low, high = self._parse(value[0]), self._parse(value[1])
            else:
                low = high = self._parse(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None
        if low > high:
            raise ValidationError("low must not be greater than high")
        return low, high


def _size_range(**kwargs: Any) -> _Range:
    return _Range(units.parse_size, **kwargs)


class _Name(fields.String):
    default_error_messages = {"invalid": "must be a string"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.make_error("invalid")
        return value


class _Names(fields.List):  # type: ignore[type-arg]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_Name(), **kwargs)


class _StrictInt(fields.Integer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class _Number(fields.Float):
    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._validated(value)




class _Strict(f.StrictSchema):
    """Unknown keys are refused (marshmallow's default), worded as in site files."""


# --- schemas --------------------------------------------------------------------------------


class _SiteField(fields.Field):  # type: ignore[type-arg]
    """A site as its bare name or as ``{name: ...}``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> SiteSpec:
        if isinstance(value, dict):
            if set(value) != {"name"}:
                raise ValidationError("a site is its name, or a mapping with only 'name'")
            value = value["name"]
        if not isinstance(value, str) or not value:
            raise ValidationError("must be a site name")
        return SiteSpec(name=value)


class _LinkSchema(_Strict):
    source = _Name(required=True, data_key="from")
    target = _Name(required=True, data_key="to")
    cost = _StrictInt(validate=f.at_least(1))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> LinkSpec:
        return LinkSpec(**data)


class _ServiceSchema(_Strict):
    name = _Name(required=True)
    connectors = _Names(required=True)
    listeners = _Names(required=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> ServiceSpec:
        return ServiceSpec(
            name=data["name"],
            connectors=tuple(data["connectors"]),
            listeners=tuple(data["listeners"]),
        )


def _sizes(pair: tuple[int, int]) -> SizeRange:
    return SizeRange(low=pair[0], high=pair[1])


class _StreamsSchema(_Strict):
    service = _Name(required=True)
    concurrency = _StrictInt(required=True, validate=f.at_least(1))
    up = _size_range(required=True)
    down = _size_range(required=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> StreamTraffic:
        return StreamTraffic(
            service=data["service"],
            concurrency=data["concurrency"],
            up=_sizes(data["up"]),
            down=_sizes(data["down"]),
        )


class _RequestsSchema(_Strict):
    service = _Name(required=True)
    rate = _Number(required=True, validate=f.POSITIVE)
    connections = _StrictInt(validate=f.at_least(1))
    request = _size_range()
    response = _size_range()

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> RequestTraffic:
        for key in ("request", "response"):
            if key in data:
                data[key] = _sizes(data[key])
        return RequestTraffic(**data)


class _ConnectionsSchema(_Strict):
    service = _Name(required=True)
    rate = _Number(required=True, validate=f.POSITIVE)
    size = _Size()

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> ConnectionTraffic:
        return ConnectionTraffic(**data)


class _TrafficSchema(_Strict):
    streams = fields.List(fields.Nested(_StreamsSchema))
    requests = fields.List(fields.Nested(_RequestsSchema))
    connections = fields.List(fields.Nested(_ConnectionsSchema))
    idle_timeout = _Duration()
    connect_timeout = _Duration()

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> TrafficSpec:
        values: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        return TrafficSpec(**values)


_KINDS = [kind.value for kind in FaultKind]


class _FaultSchema(_Strict):
    at = _Duration(required=True)
    kind = fields.String(
        required=True, validate=OneOf(_KINDS, error="must be one of: " + ", ".join(_KINDS))
    )
    site = _Name()
    link = _Name()
    duration = _Duration()
    latency = _Duration()
    rate = _Rate()
    period = _Duration()
    every = _Size()

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> FaultSpec:
        kind = FaultKind(data.pop("kind"))
        wanted, other = ("site", "link") if kind in NODE_FAULTS else ("link", "site")
        if other in data:
            raise ValidationError(
                {other: [f"{kind.value} is a {wanted} fault: give '{wanted}', not '{other}'"]}
            )
        if wanted not in data:
            raise ValidationError({wanted: [f"required for {kind.value} faults"]})
        return FaultSpec(kind=kind, target=data.pop(wanted), **data)


class _RandomFaultsSchema(_Strict):
    kinds = fields.List(
        fields.String(validate=OneOf(_KINDS, error="must be one of: " + ", ".join(_KINDS))),
        required=True,
    )
    start = _Duration()
    gap = _Range(units.parse_duration)
    duration = _Range(units.parse_duration)
    sites = _Names()
    links = _Names()
    latency = _Range(units.parse_duration)
    rate = _Range(units.parse_rate)
    period = _Range(units.parse_duration)
    every = _Range(units.parse_size)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> RandomFaults:
        data["kinds"] = tuple(FaultKind(kind) for kind in data["kinds"])
        for key in ("sites", "links"):
            if key in data:
                data[key] = tuple(data[key])
        return RandomFaults(**data)


class _RoutingSchema(_Strict):
    hello_interval = _Duration()
    hello_max_age = _Duration()

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> RoutingSpec:
        return RoutingSpec(**data)


class _InvariantsSchema(_Strict):
    recovery_within = _Duration()
    memory_limit = _Size()
    memory_growth = _Size()
    min_intact_streams = _StrictInt(validate=Range(min=0, error="must be 0 or more"))

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> InvariantSpec:
        if "memory_limit" in data:
            data["memory_limit_mib"] = max(1, data.pop("memory_limit") >> 20)
        if "memory_growth" in data:
            data["memory_growth_mib"] = max(1, data.pop("memory_growth") >> 20)
        return InvariantSpec(**data)


_MODES = [mode.value for mode in Mode]
_SETUPS = [setup.value for setup in Setup]


class _ScenarioSchema(_Strict):
    name = _Name(required=True)
    description = fields.String()
    duration = _Duration()
    seed = _StrictInt()
    mode = fields.String(validate=OneOf(_MODES, error="must be one of: " + ", ".join(_MODES)))
    setup = fields.String(validate=OneOf(_SETUPS, error="must be one of: " + ", ".join(_SETUPS)))
    plaintext = f.Bool()
    drain = _Duration()
    routing = fields.Nested(_RoutingSchema)
    sites = fields.List(_SiteField(), required=True)
    links = fields.List(fields.Nested(_LinkSchema))
    services = fields.List(fields.Nested(_ServiceSchema))
    traffic = fields.Nested(_TrafficSchema)
    faults = fields.List(fields.Nested(_FaultSchema))
    random_faults = fields.Nested(_RandomFaultsSchema)
    invariants = fields.Nested(_InvariantsSchema)

    @post_load
    def _make(self, data: Mapping[str, Any], **_: Any) -> Scenario:
        values = dict(data)
        if "mode" in values:
            values["mode"] = Mode(values["mode"])
        if "setup" in values:
            values["setup"] = Setup(values["setup"])
        for key in ("sites", "links", "services", "faults"):
            if key in values:
                values[key] = tuple(values[key])
        return Scenario(**values)
