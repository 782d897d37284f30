"""marshmallow schemas: YAML documents in, frozen resources out, and back to Skupper's shape."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validates_schema
from marshmallow.validate import Length, OneOf

from skupper_actors.api import fields as f
from skupper_actors.api._status_schemas import STATUS_SCHEMAS, EndpointSchema
from skupper_actors.api.meta import Endpoint, Metadata
from skupper_actors.api.resources import (
    API_VERSION,
    DEFAULT_ROLE_PORTS,
    LINK_ACCESS_VALUES,
    LINK_ROLES,
    MAX_LINK_COST,
    OBSERVERS,
    ROUTER_ACCESS_ROLES,
    SERVICE_TYPES,
    AccessGrant,
    AccessGrantSpec,
    AccessToken,
    AccessTokenSpec,
    Connector,
    ConnectorSpec,
    Link,
    LinkSpec,
    Listener,
    ListenerSpec,
    Resource,
    RouterAccess,
    RouterAccessRole,
    RouterAccessSpec,
    Site,
    SiteSpec,
)

_COST = f.at_least(1, MAX_LINK_COST)

_T = TypeVar("_T")


def _url(value: str) -> None:
    if not value.startswith("https://") or len(value) <= len("https://"):
        raise ValidationError("must be an https:// URL")
    if any(char.isspace() for char in value):
        raise ValidationError("must not contain spaces")


def _pem(value: str) -> None:
    if "-----BEGIN CERTIFICATE-----" not in value:
        raise ValidationError("must be a PEM certificate")


def _loaded(items: Any, cls: type[_T]) -> list[tuple[int, _T]]:
    """The items of a list field that loaded, with their index (others failed already)."""
    return [(i, item) for i, item in enumerate(items or ()) if isinstance(item, cls)]


class MetadataSchema(f.StrictSchema):
    name = f.Str(required=True, validate=f.dns_label)
    namespace = f.Str(validate=f.dns_label)
    labels = f.StringMap()
    annotations = f.StringMap()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Metadata:
        return Metadata(**f.present(data))


class LinkEndpointSchema(EndpointSchema):
    name = f.Str(required=True, validate=f.one_of(LINK_ROLES))
    port = f.PortString(required=True, validate=f.port())

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Endpoint:
        return Endpoint(**f.present(data))


class SiteSpecSchema(f.StrictSchema):
    link_access = f.Str(data_key="linkAccess", validate=f.one_of(LINK_ACCESS_VALUES))
    edge = f.Bool()
    ha = f.Bool()
    default_issuer = f.Str(data_key="defaultIssuer", validate=f.dns_subdomain)
    settings = f.StringMap()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> SiteSpec:
        return SiteSpec(**f.present(data))


class ListenerSpecSchema(f.StrictSchema):
    routing_key = f.Str(data_key="routingKey", required=True, validate=f.routing_key)
    host = f.Str(validate=f.host)
    port = f.Integer(required=True, validate=f.port())
    tls_credentials = f.Str(data_key="tlsCredentials", validate=f.dns_subdomain)
    type = f.Str(validate=f.one_of(SERVICE_TYPES))
    observer = f.Str(validate=f.one_of(OBSERVERS))
    settings = f.StringMap()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ListenerSpec:
        return ListenerSpec(**f.present(data))


class ConnectorSpecSchema(f.StrictSchema):
    routing_key = f.Str(data_key="routingKey", required=True, validate=f.routing_key)
    host = f.Str(validate=f.host)
    port = f.Integer(required=True, validate=f.port())
    tls_credentials = f.Str(data_key="tlsCredentials", validate=f.dns_subdomain)
    use_client_cert = f.Bool(data_key="useClientCert")
    verify_hostname = f.Bool(data_key="verifyHostname")
    type = f.Str(validate=f.one_of(SERVICE_TYPES))
    settings = f.StringMap()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ConnectorSpec:
        return ConnectorSpec(**f.present(data))


class LinkSpecSchema(f.StrictSchema):
    endpoints = f.Items(
        f.Item(LinkEndpointSchema),
        required=True,
        validate=Length(min=1, error="must not be empty"),
    )
    tls_credentials = f.Str(data_key="tlsCredentials", validate=f.dns_subdomain)
    cost = f.Integer(validate=_COST)
    settings = f.StringMap()

    @validates_schema(skip_on_field_errors=False)
    def _one_endpoint_per_role(self, data: dict[str, Any], **kwargs: Any) -> None:
        endpoints = _loaded(data.get("endpoints"), Endpoint)
        duplicates = f.duplicates(((i, e.name) for i, e in endpoints), "endpoint name")
        if duplicates:
            raise ValidationError({"endpoints": duplicates})

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> LinkSpec:
        if data.get("endpoints") is None:  # `endpoints:` with nothing after it
            raise ValidationError({"endpoints": ["must not be empty"]})
        return LinkSpec(**f.present(data))


class RouterAccessRoleSchema(f.StrictSchema):
    name = f.Str(required=True, validate=f.one_of(ROUTER_ACCESS_ROLES))
    port = f.Integer(validate=f.port(minimum=0))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> RouterAccessRole:
        port = data.get("port")
        name: str = data["name"]
        return RouterAccessRole(name=name, port=DEFAULT_ROLE_PORTS[name] if port is None else port)


class RouterAccessSpecSchema(f.StrictSchema):
    roles = f.Items(
        f.Item(RouterAccessRoleSchema),
        required=True,
        validate=Length(min=1, error="must not be empty"),
    )
    tls_credentials = f.Str(data_key="tlsCredentials", validate=f.dns_subdomain)
    generate_tls_credentials = f.Bool(data_key="generateTlsCredentials")
    issuer = f.Str(validate=f.dns_subdomain)
    bind_host = f.Str(data_key="bindHost", validate=f.host)
    subject_alternative_names = f.Items(f.Str(validate=f.host), data_key="subjectAlternativeNames")
    settings = f.StringMap()

    @validates_schema(skip_on_field_errors=False)
    def _distinct_roles(self, data: dict[str, Any], **kwargs: Any) -> None:
        roles = _loaded(data.get("roles"), RouterAccessRole)
        errors = f.duplicates(((i, role.name) for i, role in roles), "role")
        ports: set[int] = set()
        for index, role in roles:
            if role.port in ports and index not in errors:  # port 0 is never in `ports`
                errors.setdefault(index, {})["port"] = [f"port {role.port} is used twice"]
            if role.port:
                ports.add(role.port)
        if errors:
            raise ValidationError({"roles": errors})

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> RouterAccessSpec:
        if data.get("roles") is None:
            raise ValidationError({"roles": ["must not be empty"]})
        return RouterAccessSpec(**f.present(data))


class AccessGrantSpecSchema(f.StrictSchema):
    redemptions_allowed = f.Integer(data_key="redemptionsAllowed", validate=f.at_least(1))
    expiration_window = f.Duration(data_key="expirationWindow")
    code = f.Str(validate=f.routing_key)
    issuer = f.Str(validate=f.dns_subdomain)
    settings = f.StringMap()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> AccessGrantSpec:
        return AccessGrantSpec(**f.present(data))


class AccessTokenSpecSchema(f.StrictSchema):
    url = f.Str(required=True, validate=_url)
    code = f.Str(required=True, validate=f.routing_key)
    ca = f.Str(required=True, validate=_pem)
    link_cost = f.Integer(data_key="linkCost", validate=_COST)
    settings = f.StringMap()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> AccessTokenSpec:
        return AccessTokenSpec(**f.present(data))


# --- whole resources -----------------------------------------------------------------------


class ResourceSchema(f.StrictSchema):
    """apiVersion, kind, metadata, spec and (optionally) status of one kind."""

    resource_class: ClassVar[type[Any]]

    api_version = f.Str(
        data_key="apiVersion",
        required=True,
        validate=OneOf([API_VERSION], error=f"must be {API_VERSION}"),
    )
    kind = f.Str(required=True)
    metadata = f.Section(MetadataSchema, required=True)

    @pre_load
    def _empty_sections(self, data: Any, **kwargs: Any) -> Any:
        # `spec:` alone, or no spec, still checks the spec's required fields one by one.
        if isinstance(data, dict):
            data = dict(data)
            for key in ("metadata", "spec"):
                if data.get(key) is None:
                    data[key] = {}
            if "status" in data and data["status"] is None:
                del data["status"]
        return data

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.resource_class(
            metadata=data["metadata"], spec=data["spec"], status=data.get("status")
        )


def _resource_schema(resource_class: type[Any], spec_schema: type[Schema]) -> type[ResourceSchema]:
    kind = resource_class.__name__
    attributes: dict[str, Any] = {
        "resource_class": resource_class,
        "spec": f.Section(spec_schema, required=True),
        "status": f.Section(STATUS_SCHEMAS[kind]),
    }
    return type(f"{kind}Schema", (ResourceSchema,), attributes)


SPEC_SCHEMAS: dict[str, type[Schema]] = {
    "Site": SiteSpecSchema,
    "Listener": ListenerSpecSchema,
    "Connector": ConnectorSpecSchema,
    "Link": LinkSpecSchema,
    "RouterAccess": RouterAccessSpecSchema,
    "AccessGrant": AccessGrantSpecSchema,
    "AccessToken": AccessTokenSpecSchema,
}
_CLASSES = (Site, Listener, Connector, Link, RouterAccess, AccessGrant, AccessToken)
RESOURCE_SCHEMAS: dict[str, type[ResourceSchema]] = {
    cls.__name__: _resource_schema(cls, SPEC_SCHEMAS[cls.__name__]) for cls in _CLASSES
}


class UnknownKindSchema(ResourceSchema):
    """Checks what it can of a document whose kind is missing or unknown."""

    spec = fields.Raw()
    status = fields.Raw()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return None


# Schemas keep no state between calls; building one is the slow part, so build each once.
_LOADERS: dict[str, Schema] = {kind: schema() for kind, schema in RESOURCE_SCHEMAS.items()}
_UNKNOWN_KIND_LOADER = UnknownKindSchema()
_METADATA_DUMPER = MetadataSchema()
_SPEC_DUMPERS: dict[str, Schema] = {kind: schema() for kind, schema in SPEC_SCHEMAS.items()}
_STATUS_DUMPERS: dict[str, Schema] = {kind: schema() for kind, schema in STATUS_SCHEMAS.items()}


def load_document(document: dict[str, Any]) -> Resource | None:
    """The document as a resource, or None if its kind is unknown (then it only checks).

    Raises marshmallow's ValidationError with every problem found.
    """
    kind = document.get("kind")
    loader = _LOADERS.get(kind) if isinstance(kind, str) else None
    result: Resource | None = (loader or _UNKNOWN_KIND_LOADER).load(document)
    return result


def resource_to_document(resource: Resource, *, include_status: bool = False) -> dict[str, Any]:
    """The resource in Skupper's YAML/JSON shape, defaults included."""
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": resource.kind,
        "metadata": _METADATA_DUMPER.dump(resource.metadata),
        "spec": _SPEC_DUMPERS[resource.kind].dump(resource.spec),
    }
    if include_status and resource.status is not None:
        document["status"] = _STATUS_DUMPERS[resource.kind].dump(resource.status)
    return document
