"""The node's site configuration file (`skupper-node run --config site.yaml`).

One YAML file, loaded through marshmallow schemas into frozen dataclasses; internal code
sees only the dataclasses. Relative paths are resolved against the file's folder. Every
problem becomes one `SiteConfigError` whose message lines read `<file>: <field path>: <what>`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError, post_load, validates_schema
from marshmallow.validate import OneOf, Range

from skupper_actors.api import fields as f
from skupper_actors.protocol.routing import RoutingSettings
from skupper_actors.protocol.tcp.budget import DEFAULT_BUFFER_BUDGET
from skupper_actors.protocol.tcp.window import DEFAULT_WINDOW

DEFAULT_INTER_ROUTER_PORT = 55671
MAX_LINK_COST = 2**31 - 1
DISTRIBUTIONS = ("balanced", "closest")
#: how AMQP clients authenticate (docs/messaging.md): SASL ANONYMOUS, or SASL EXTERNAL
#: with a client certificate (then required, and its subject CN is the client's identity)
AMQP_AUTH = ("anonymous", "external")
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
class AmqpConfig:
    """The AMQP client endpoint (off unless the file has an ``amqp:`` entry).

    ``auth``: ``anonymous`` (SASL ANONYMOUS; with TLS a client certificate is optional)
    or ``external`` (TLS only: a client certificate from ``client_ca``, else the site's
    CA, is required, and SASL EXTERNAL makes its subject CN the client's identity).
    """

    host: str = "127.0.0.1"
    port: int
    tls: bool = False
    auth: str = "anonymous"
    client_ca: Path | None = None  # absolute once loaded


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsConfig:
    """What a peer router may send this one (docs/limits-links.md)."""

    max_addresses_per_router: int = _ROUTING.max_addresses_per_router
    max_addresses_per_update: int = _ROUTING.max_addresses_per_update
    max_links_per_connection: int = 32768
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
    amqp: AmqpConfig | None = None
    #: node-wide bytes buffered for slow local sockets before reads pause (docs/limits.md)
    tcp_buffer_budget: int = DEFAULT_BUFFER_BUDGET
    #: bytes a TCP stream may have unacknowledged per direction
    tcp_window: int = DEFAULT_WINDOW


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
        document = yaml.load(text, Loader=f.StrictLoader)
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
        raise SiteConfigError(source, f.problems(error.messages)) from None
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


# --- schemas (the toolkit is skupper_actors.api.fields) ----------------------------------


class _TlsSchema(f.StrictSchema):
    cert = f.PathStr()
    key = f.PathStr()
    ca = f.PathStr()
    credentials = f.PathStr(load_only=True)

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


class _InterRouterSchema(f.StrictSchema):
    host = f.Str(validate=f.host)
    port = f.Int(validate=f.port(minimum=0))
    tls = f.Section(_TlsSchema)
    plaintext = f.Bool()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> InterRouterConfig:
        return InterRouterConfig(**f.present(data))


class _LinkSchema(f.StrictSchema):
    name = f.Str(required=True, validate=f.site_name)
    host = f.Str(required=True, validate=f.host)
    port = f.Int(required=True, validate=f.port())
    cost = f.Int(validate=f.at_least(1, MAX_LINK_COST))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> LinkConfig:
        return LinkConfig(**data)


class _RoutingSchema(f.StrictSchema):
    hello_interval = f.Float(validate=f.POSITIVE)
    hello_max_age = f.Float(validate=f.POSITIVE)
    ra_interval = f.Float(validate=f.POSITIVE)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> RoutingConfig:
        routing = RoutingConfig(**data)
        if routing.hello_max_age <= routing.hello_interval:
            raise ValidationError({"hello_max_age": ["must be greater than hello_interval"]})
        return routing


class _LimitsSchema(f.StrictSchema):
    max_addresses_per_router = f.Int(validate=f.at_least(1))
    max_addresses_per_update = f.Int(validate=f.at_least(1))
    max_links_per_connection = f.Int(validate=f.at_least(4))
    max_frame_size = f.Int(
        validate=Range(min=512, max=1 << 24, error="must be between 512 and 16777216")
    )
    max_control_entries = f.Int(validate=f.at_least(1))
    max_message_size = f.Int(validate=f.at_least(1024))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> LimitsConfig:
        return LimitsConfig(**data)


class _ServiceSchema(f.StrictSchema):
    name = f.Str(required=True, validate=f.site_name)
    routing_key = f.Str(required=True, validate=f.non_empty)
    host = f.Str(validate=f.host)
    port = f.Int(required=True, validate=f.port())


class _ListenerSchema(_ServiceSchema):
    distribution = f.Str(validate=OneOf(DISTRIBUTIONS, error="must be one of: balanced, closest"))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ListenerConfig:
        return ListenerConfig(**data)


class _ConnectorSchema(_ServiceSchema):
    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ConnectorConfig:
        return ConnectorConfig(**data)


class _AmqpSchema(f.StrictSchema):
    host = f.Str(validate=f.host)
    port = f.Int(required=True, validate=f.port())
    tls = f.Bool()
    auth = f.Str(validate=OneOf(AMQP_AUTH, error="must be one of: anonymous, external"))
    client_ca = f.PathStr()

    @validates_schema
    def _needs_tls(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("tls"):
            return
        if data.get("auth") == "external":
            raise ValidationError(
                {"auth": ["external needs tls: true (the client certificate is the identity)"]}
            )
        if data.get("client_ca") is not None:
            raise ValidationError({"client_ca": ["needs tls: true"]})

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> AmqpConfig:
        return AmqpConfig(**f.present(data))


class _SiteSchema(f.StrictSchema):
    site = f.Str(required=True, validate=f.site_name)
    runtime_dir = f.PathStr()
    inter_router = f.Section(_InterRouterSchema)
    links = f.SchemaList(_LinkSchema)
    routing = f.Section(_RoutingSchema)
    limits = f.Section(_LimitsSchema)
    listeners = f.SchemaList(_ListenerSchema)
    connectors = f.SchemaList(_ConnectorSchema)
    amqp = f.Section(_AmqpSchema)
    tcp_buffer_budget = f.Int(validate=f.POSITIVE)
    tcp_window = f.Int(validate=Range(min=64 << 10, max=1 << 30, error="must be 65536 to 1 GiB"))

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
        amqp: AmqpConfig | None = data.get("amqp")
        if amqp is not None and amqp.tls and inter_router.tls is None:
            # the endpoint presents the site's certificate: without one it cannot do TLS
            errors["amqp"] = {"tls": ["needs the site's certificate (inter_router.tls)"]}
        for key in ("links", "listeners", "connectors"):
            items = enumerate(data.get(key) or ())
            duplicates = f.duplicates(((i, item.name) for i, item in items), f"{key[:-1]} name")
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
            amqp=self._resolve_amqp(data.get("amqp")),
            tcp_buffer_budget=data.get("tcp_buffer_budget", DEFAULT_BUFFER_BUDGET),
            tcp_window=data.get("tcp_window", DEFAULT_WINDOW),
        )

    def _resolve_amqp(self, amqp: AmqpConfig | None) -> AmqpConfig | None:
        if amqp is None or amqp.client_ca is None:
            return amqp
        return replace(amqp, client_ca=self._resolve(amqp.client_ca))

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self._base_dir / path
