"""The node's site configuration file (`skupper-node run --config site.yaml`).

One YAML file, loaded through marshmallow schemas into frozen dataclasses; internal code
sees only the dataclasses. Relative paths are resolved against the file's folder. Every
problem becomes one `SiteConfigError` whose message lines read `<file>: <field path>: <what>`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, post_dump, post_load, validates_schema
from marshmallow.validate import OneOf, Range

from skupper_actors.protocol.routing import RoutingSettings

SITE_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
MAX_NAME_LENGTH = 63
DEFAULT_INTER_ROUTER_PORT = 55671
MAX_LINK_COST = 2**31 - 1
DISTRIBUTIONS = ("balanced", "closest")
#: the routing defaults are RoutingSettings' own; this file only reads them
_ROUTING = RoutingSettings()


class SiteConfigError(ValueError):
    """A site configuration file that cannot be used; one line per problem."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        #: (field path, message) pairs; the path is "" for problems of the whole file.
        self.problems = tuple(problems)
        super().__init__(
            "\n".join(
                f"{source}: {path}: {what}" if path else f"{source}: {what}"
                for path, what in self.problems
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """Where the inter-router certificate, its key and the trusted CA are (absolute paths)."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class InterRouterConfig:
    """Where this site accepts links; `port` 0 means any free port (the node reports it)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_INTER_ROUTER_PORT
    tls: TlsConfig | None = None
    plaintext: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConfig:
    """An outgoing link to another site's inter-router port."""

    name: str
    host: str
    port: int
    cost: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingConfig:
    """Link-state timers in seconds (defaults: `RoutingSettings`, after skupper-router)."""

    hello_interval: float = _ROUTING.hello_interval
    hello_max_age: float = _ROUTING.hello_max_age
    ra_interval: float = _ROUTING.ra_interval


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerConfig:
    """A local TCP port that reaches the service behind `routing_key`."""

    name: str
    routing_key: str
    host: str = "127.0.0.1"
    port: int
    distribution: str = "balanced"  # or "closest": how a destination is chosen


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorConfig:
    """A local server that receives the connections for `routing_key`."""

    name: str
    routing_key: str
    host: str = "localhost"
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsConfig:
    """What a peer router may send this one (docs/limits-links.md)."""

    max_addresses_per_router: int = _ROUTING.max_addresses_per_router
    max_addresses_per_update: int = _ROUTING.max_addresses_per_update
    max_links_per_connection: int = 4096
    max_frame_size: int = 1 << 20
    max_control_entries: int = 50_000
    max_message_size: int = 16 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteConfig:
    """One site's configuration, fully resolved (no relative paths, no missing defaults)."""

    site: str
    runtime_dir: Path
    inter_router: InterRouterConfig = field(default_factory=InterRouterConfig)
    links: tuple[LinkConfig, ...] = ()
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    listeners: tuple[ListenerConfig, ...] = ()
    connectors: tuple[ConnectorConfig, ...] = ()


def load_site_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> SiteConfig:
    """Read and check the YAML file at `path`; `environ` (default os.environ) picks runtime_dir."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SiteConfigError(source, [("", f"cannot read ({error.strerror or error})")]) from None
    except UnicodeDecodeError:
        raise SiteConfigError(source, [("", "not UTF-8 text")]) from None
    return parse_site_config(
        text, source=source, base_dir=Path(path).absolute().parent, environ=environ
    )


def parse_site_config(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> SiteConfig:
    """Check YAML `text` as if it came from file `source` in `base_dir` (default: cwd)."""
    try:
        document = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SiteConfigError(source, [("", f"{where}invalid YAML: {error.problem}")]) from None
    except yaml.YAMLError as error:
        raise SiteConfigError(source, [("", f"invalid YAML: {error}")]) from None
    except RecursionError:
        raise SiteConfigError(source, [("", "nested too deeply to be a configuration")]) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise SiteConfigError(source, [("", "top level: must be a mapping")])
    schema = _SiteSchema(
        base_dir=(base_dir or Path.cwd()).absolute(),
        environ=os.environ if environ is None else environ,
    )
    try:
        config: SiteConfig = schema.load(document)
    except ValidationError as error:
        raise SiteConfigError(source, _problems(error.messages)) from None
    return config


def dump_site_config(config: SiteConfig) -> str:
    """The YAML text that `parse_site_config` reads back into an equal `SiteConfig`."""
    data = _SiteSchema(base_dir=Path("/"), environ={}).dump(config)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def default_runtime_dir(site: str, environ: Mapping[str, str]) -> Path:
    """$XDG_RUNTIME_DIR/skupper-actors/<site>, or /tmp/skupper-actors-<uid>/<site>."""
    xdg = environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "skupper-actors" / site
    # /tmp, not $TMPDIR: a CLI run from another shell must find the same socket.
    return Path("/tmp") / f"skupper-actors-{os.getuid()}" / site


# --- YAML ---------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
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


# --- marshmallow at the boundary ---------------------------------------------------------


def _problems(messages: Any) -> list[tuple[str, str]]:
    """marshmallow's nested error dict as (field path, message), ordered by path."""
    flat = sorted(_flatten(messages, ()), key=lambda item: [_sort_key(p) for p in item[0]])
    return [("".join(_render(i, part) for i, part in enumerate(path)), what) for path, what in flat]


_FieldPath = tuple[str | int, ...]


def _flatten(messages: Any, path: _FieldPath) -> Iterable[tuple[_FieldPath, str]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _flatten(value, path if key == "_schema" else (*path, key))
    elif isinstance(messages, list):
        for message in messages:
            yield from _flatten(message, path)
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


_COMMON_MESSAGES = {"required": "missing required field", "null": "must not be null"}


class _Str(fields.String):
    default_error_messages = {**_COMMON_MESSAGES, "invalid": "must be a string"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):  # String alone would also take bytes (YAML !!binary)
            raise self.make_error("invalid")
        return value


class _Int(fields.Integer):
    default_error_messages = {**_COMMON_MESSAGES, "invalid": "must be an integer"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class _Float(fields.Float):
    default_error_messages = {
        **_COMMON_MESSAGES,
        "invalid": "must be a number",
        "special": "must be a finite number",
    }

    def _validated(self, value: Any) -> float:
        if not isinstance(value, int | float):  # Float alone would also parse strings
            raise self.make_error("invalid")
        return super()._validated(value)


class _Bool(fields.Boolean):
    default_error_messages = {**_COMMON_MESSAGES, "invalid": "must be true or false"}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):  # Boolean alone would also take "yes", 1, "on"...
            raise self.make_error("invalid")
        return value


class _PathStr(_Str):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Path:  # type: ignore[override]
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text or "\0" in text:
            raise ValidationError("must be a path")
        return Path(text)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)


class _Section(fields.Nested):
    """A nested mapping; `key:` with nothing after it counts as absent."""

    default_error_messages = {**_COMMON_MESSAGES}

    def __init__(self, schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(schema, allow_none=True, **kwargs)


class _Items(fields.List):  # type: ignore[type-arg]
    """A list of mappings; `key:` with nothing after it counts as an empty list."""

    default_error_messages = {**_COMMON_MESSAGES, "invalid": "must be a list"}

    def __init__(self, schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(fields.Nested(schema), allow_none=True, **kwargs)


def _non_empty(value: str) -> None:
    if not value:
        raise ValidationError("must not be empty")


def _host(value: str) -> None:
    _non_empty(value)
    if any(char.isspace() for char in value):
        raise ValidationError("must not contain spaces")


def _name(value: str) -> None:
    _non_empty(value)
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(f"must be at most {MAX_NAME_LENGTH} characters")
    if not SITE_NAME_RE.fullmatch(value):
        raise ValidationError(
            "must be lowercase letters, digits, '-' or '.', "
            "starting and ending with a letter or digit"
        )


def _port(minimum: int = 1) -> Range:
    return Range(min=minimum, max=65535, error="must be between {min} and {max}")


_POSITIVE = Range(min=0, min_inclusive=False, error="must be greater than 0")


def _present(data: Mapping[str, Any]) -> dict[str, Any]:
    """The loaded fields minus explicit nulls, so the dataclass defaults apply."""
    return {key: value for key, value in data.items() if value is not None}


class _StrictSchema(Schema):
    error_messages = {"unknown": "unknown field", "type": "must be a mapping"}

    @post_dump
    def _drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return _present(data)


class _TlsSchema(_StrictSchema):
    cert = _PathStr()
    key = _PathStr()
    ca = _PathStr()
    credentials = _PathStr(load_only=True)

    @validates_schema
    def _one_form(self, data: dict[str, Any], **kwargs: Any) -> None:
        files = [name for name in ("cert", "key", "ca") if data.get(name) is not None]
        if data.get("credentials") is not None:
            if files:
                raise ValidationError("give either credentials or cert, key and ca, not both")
            return
        missing = {name: ["missing required field"] for name in ("cert", "key", "ca")}
        for name in files:
            del missing[name]
        if missing:
            raise ValidationError(missing)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> TlsConfig:
        folder = data.get("credentials")
        if folder is not None:
            return TlsConfig(cert=folder / "tls.crt", key=folder / "tls.key", ca=folder / "ca.crt")
        return TlsConfig(cert=data["cert"], key=data["key"], ca=data["ca"])


class _InterRouterSchema(_StrictSchema):
    host = _Str(validate=_host)
    port = _Int(validate=_port(minimum=0))
    tls = _Section(_TlsSchema)
    plaintext = _Bool()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> InterRouterConfig:
        return InterRouterConfig(**_present(data))


class _LinkSchema(_StrictSchema):
    name = _Str(required=True, validate=_name)
    host = _Str(required=True, validate=_host)
    port = _Int(required=True, validate=_port())
    cost = _Int(
        validate=[
            Range(min=1, error="must be at least 1"),
            Range(max=MAX_LINK_COST, error="must be at most {max}"),
        ]
    )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> LinkConfig:
        return LinkConfig(**data)


class _RoutingSchema(_StrictSchema):
    hello_interval = _Float(validate=_POSITIVE)
    hello_max_age = _Float(validate=_POSITIVE)
    ra_interval = _Float(validate=_POSITIVE)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> RoutingConfig:
        routing = RoutingConfig(**data)
        if routing.hello_max_age <= routing.hello_interval:
            raise ValidationError({"hello_max_age": ["must be greater than hello_interval"]})
        return routing


class _LimitsSchema(_StrictSchema):
    max_addresses_per_router = _Int(validate=Range(min=1, error="must be at least 1"))
    max_addresses_per_update = _Int(validate=Range(min=1, error="must be at least 1"))
    max_links_per_connection = _Int(validate=Range(min=4, error="must be at least 4"))
    max_frame_size = _Int(
        validate=Range(min=512, max=1 << 24, error="must be between 512 and 16777216")
    )
    max_control_entries = _Int(validate=Range(min=1, error="must be at least 1"))
    max_message_size = _Int(validate=Range(min=1024, error="must be at least 1024"))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> LimitsConfig:
        return LimitsConfig(**data)


class _ServiceSchema(_StrictSchema):
    name = _Str(required=True, validate=_name)
    routing_key = _Str(required=True, validate=_non_empty)
    host = _Str(validate=_host)
    port = _Int(required=True, validate=_port())


class _ListenerSchema(_ServiceSchema):
    distribution = _Str(validate=OneOf(DISTRIBUTIONS, error="must be one of: balanced, closest"))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ListenerConfig:
        return ListenerConfig(**data)


class _ConnectorSchema(_ServiceSchema):
    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ConnectorConfig:
        return ConnectorConfig(**data)


class _SiteSchema(_StrictSchema):
    site = _Str(required=True, validate=_name)
    runtime_dir = _PathStr()
    inter_router = _Section(_InterRouterSchema)
    links = _Items(_LinkSchema)
    routing = _Section(_RoutingSchema)
    limits = _Section(_LimitsSchema)
    listeners = _Items(_ListenerSchema)
    connectors = _Items(_ConnectorSchema)

    def __init__(self, *, base_dir: Path, environ: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_dir = base_dir
        self._environ = environ

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        inter_router = data.get("inter_router") or InterRouterConfig()
        if inter_router.tls is None and not inter_router.plaintext:
            errors["inter_router"] = {"tls": ["required unless plaintext is true"]}
        elif inter_router.tls is not None and inter_router.plaintext:
            errors["inter_router"] = {"plaintext": ["cannot be true while tls is set"]}
        for key in ("links", "listeners", "connectors"):
            duplicates = _duplicate_names(data.get(key) or (), kind=key[:-1])
            if duplicates:
                errors[key] = duplicates
        if errors:
            raise ValidationError(errors)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> SiteConfig:
        site: str = data["site"]
        runtime_dir = data.get("runtime_dir") or default_runtime_dir(site, self._environ)
        inter_router: InterRouterConfig = data.get("inter_router") or InterRouterConfig()
        if inter_router.tls is not None:
            tls = TlsConfig(
                cert=self._resolve(inter_router.tls.cert),
                key=self._resolve(inter_router.tls.key),
                ca=self._resolve(inter_router.tls.ca),
            )
            inter_router = replace(inter_router, tls=tls)
        return SiteConfig(
            site=site,
            runtime_dir=self._resolve(runtime_dir),
            inter_router=inter_router,
            links=tuple(data.get("links") or ()),
            routing=data.get("routing") or RoutingConfig(),
            limits=data.get("limits") or LimitsConfig(),
            listeners=tuple(data.get("listeners") or ()),
            connectors=tuple(data.get("connectors") or ()),
        )

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self._base_dir / path


def _duplicate_names(
    items: Iterable[LinkConfig | ListenerConfig | ConnectorConfig], kind: str
) -> dict[int, dict[str, list[str]]]:
    seen: set[str] = set()
    duplicates: dict[int, dict[str, list[str]]] = {}
    for index, item in enumerate(items):
        if item.name in seen:
            duplicates[index] = {"name": [f"duplicate {kind} name {item.name!r}"]}
        seen.add(item.name)
    return duplicates
