"""marshmallow schemas for status blocks (read back from runtime/resources/, or from input)."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, post_load

from skupper_actors.api import _schema as f
from skupper_actors.api.meta import Endpoint
from skupper_actors.api.status import (
    CONDITION_STATES,
    STATUS_VALUES,
    AccessGrantStatus,
    AccessTokenStatus,
    Condition,
    ConnectorStatus,
    LinkRecord,
    LinkStatus,
    ListenerStatus,
    RouterAccessStatus,
    ServiceRecord,
    SiteRecord,
    SiteStatus,
    Status,
)
from skupper_actors.siteconfig import _Bool, _host, _port, _present, _Str, _StrictSchema


def _non_empty(value: str) -> None:
    if not value:
        raise ValidationError("must not be empty")


class EndpointSchema(_StrictSchema):
    """An endpoint as a status reports it; a Link's endpoints are checked more strictly."""

    name = _Str(required=True, validate=_non_empty)
    host = _Str(required=True, validate=_host)
    port = f.PortString(required=True, validate=_port(minimum=0))
    group = _Str(validate=_non_empty)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Endpoint:
        return Endpoint(**_present(data))


class ConditionSchema(_StrictSchema):
    type = _Str(required=True, validate=_non_empty)
    status = _Str(required=True, validate=f.one_of(CONDITION_STATES))
    reason = _Str()
    message = _Str()
    last_transition_time = f.Timestamp(data_key="lastTransitionTime", required=True)
    # Kubernetes writes it; this project has no generations, so it is read and dropped.
    observed_generation = f.Integer(data_key="observedGeneration", load_only=True)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Condition:
        data.pop("observed_generation", None)
        return Condition(**_present(data))


class StatusSchema(_StrictSchema):
    status_class: ClassVar[type[Status]] = Status

    status = _Str(validate=f.one_of(STATUS_VALUES))
    message = _Str()
    conditions = f.Items(f.Item(ConditionSchema))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Status:
        return self.status_class(**_present(data))


class LinkRecordSchema(_StrictSchema):
    name = _Str(required=True)
    remote_site_id = _Str(data_key="remoteSiteId")
    remote_site_name = _Str(data_key="remoteSiteName")
    operational = _Bool()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> LinkRecord:
        return LinkRecord(**_present(data))


class ServiceRecordSchema(_StrictSchema):
    routing_key = _Str(data_key="routingKey", required=True)
    connectors = f.Items(_Str())
    listeners = f.Items(_Str())

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ServiceRecord:
        return ServiceRecord(**_present(data))


class SiteRecordSchema(_StrictSchema):
    id = _Str(required=True)
    name = _Str(required=True)
    namespace = _Str()
    platform = _Str()
    version = _Str()
    links = f.Items(f.Item(LinkRecordSchema))
    services = f.Items(f.Item(ServiceRecordSchema))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> SiteRecord:
        return SiteRecord(**_present(data))


class SiteStatusSchema(StatusSchema):
    status_class = SiteStatus
    endpoints = f.Items(f.Item(EndpointSchema))
    sites_in_network = f.Integer(data_key="sitesInNetwork", validate=f.at_least(0))
    network = f.Items(f.Item(SiteRecordSchema))
    services_omitted = f.Integer(data_key="servicesOmitted", validate=f.at_least(0))


class ListenerStatusSchema(StatusSchema):
    status_class = ListenerStatus
    has_matching_connector = _Bool(data_key="hasMatchingConnector")


class ConnectorStatusSchema(StatusSchema):
    status_class = ConnectorStatus
    has_matching_listener = _Bool(data_key="hasMatchingListener")


class LinkStatusSchema(StatusSchema):
    status_class = LinkStatus
    remote_site_id = _Str(data_key="remoteSiteId")
    remote_site_name = _Str(data_key="remoteSiteName")


class RouterAccessStatusSchema(StatusSchema):
    status_class = RouterAccessStatus
    endpoints = f.Items(f.Item(EndpointSchema))


class AccessGrantStatusSchema(StatusSchema):
    status_class = AccessGrantStatus
    url = _Str()
    code = _Str()
    ca = _Str()
    redemptions = f.Integer(validate=f.at_least(0))
    expiration_time = f.Timestamp(data_key="expirationTime")


class AccessTokenStatusSchema(StatusSchema):
    status_class = AccessTokenStatus
    redeemed = _Bool()


STATUS_SCHEMAS: dict[str, type[Schema]] = {
    "Site": SiteStatusSchema,
    "Listener": ListenerStatusSchema,
    "Connector": ConnectorStatusSchema,
    "Link": LinkStatusSchema,
    "RouterAccess": RouterAccessStatusSchema,
    "AccessGrant": AccessGrantStatusSchema,
    "AccessToken": AccessTokenStatusSchema,
}
