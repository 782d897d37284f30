"""marshmallow schemas for status blocks (read back from runtime/resources/, or from input)."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, post_load

from skupper_actors.api import fields as f
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


class EndpointSchema(f.StrictSchema):
    """An endpoint as a status reports it; a Link's endpoints are checked more strictly."""

    name = f.Str(required=True, validate=f.non_empty)
    host = f.Str(required=True, validate=f.host)
    port = f.PortString(required=True, validate=f.port(minimum=0))
    group = f.Str(validate=f.non_empty)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Endpoint:
        return Endpoint(**f.present(data))


class ConditionSchema(f.StrictSchema):
    type = f.Str(required=True, validate=f.non_empty)
    status = f.Str(required=True, validate=f.one_of(CONDITION_STATES))
    reason = f.Str()
    message = f.Str()
    last_transition_time = f.Timestamp(data_key="lastTransitionTime", required=True)
    # Kubernetes writes it; this project has no generations, so it is read and dropped.
    observed_generation = f.Integer(data_key="observedGeneration", load_only=True)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Condition:
        data.pop("observed_generation", None)
        return Condition(**f.present(data))


class StatusSchema(f.StrictSchema):
    status_class: ClassVar[type[Status]] = Status

    status = f.Str(validate=f.one_of(STATUS_VALUES))
    message = f.Str()
    conditions = f.Items(f.Item(ConditionSchema))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Status:
        return self.status_class(**f.present(data))


class LinkRecordSchema(f.StrictSchema):
    name = f.Str(required=True)
    remote_site_id = f.Str(data_key="remoteSiteId")
    remote_site_name = f.Str(data_key="remoteSiteName")
    operational = f.Bool()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> LinkRecord:
        return LinkRecord(**f.present(data))


class ServiceRecordSchema(f.StrictSchema):
    routing_key = f.Str(data_key="routingKey", required=True)
    connectors = f.Items(f.Str())
    listeners = f.Items(f.Str())

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> ServiceRecord:
        return ServiceRecord(**f.present(data))


class SiteRecordSchema(f.StrictSchema):
    id = f.Str(required=True)
    name = f.Str(required=True)
    namespace = f.Str()
    platform = f.Str()
    version = f.Str()
    links = f.Items(f.Item(LinkRecordSchema))
    services = f.Items(f.Item(ServiceRecordSchema))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> SiteRecord:
        return SiteRecord(**f.present(data))


class SiteStatusSchema(StatusSchema):
    status_class = SiteStatus
    endpoints = f.Items(f.Item(EndpointSchema))
    sites_in_network = f.Integer(data_key="sitesInNetwork", validate=f.at_least(0))
    network = f.Items(f.Item(SiteRecordSchema))
    services_omitted = f.Integer(data_key="servicesOmitted", validate=f.at_least(0))


class ListenerStatusSchema(StatusSchema):
    status_class = ListenerStatus
    has_matching_connector = f.Bool(data_key="hasMatchingConnector")


class ConnectorStatusSchema(StatusSchema):
    status_class = ConnectorStatus
    has_matching_listener = f.Bool(data_key="hasMatchingListener")


class LinkStatusSchema(StatusSchema):
    status_class = LinkStatus
    remote_site_id = f.Str(data_key="remoteSiteId")
    remote_site_name = f.Str(data_key="remoteSiteName")


class RouterAccessStatusSchema(StatusSchema):
    status_class = RouterAccessStatus
    endpoints = f.Items(f.Item(EndpointSchema))


class AccessGrantStatusSchema(StatusSchema):
    status_class = AccessGrantStatus
    url = f.Str()
    code = f.Str()
    ca = f.Str()
    redemptions = f.Integer(validate=f.at_least(0))
    expiration_time = f.Timestamp(data_key="expirationTime")


class AccessTokenStatusSchema(StatusSchema):
    status_class = AccessTokenStatus
    redeemed = f.Bool()


STATUS_SCHEMAS: dict[str, type[Schema]] = {
    "Site": SiteStatusSchema,
    "Listener": ListenerStatusSchema,
    "Connector": ConnectorStatusSchema,
    "Link": LinkStatusSchema,
    "RouterAccess": RouterAccessStatusSchema,
    "AccessGrant": AccessGrantStatusSchema,
    "AccessToken": AccessTokenStatusSchema,
}
