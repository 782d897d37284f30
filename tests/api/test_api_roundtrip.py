"""Resources survive dump then load unchanged; Skupper-shaped examples load as written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skupper_actors.api import (
    DEFAULT_ROLE_PORTS,
    AccessGrant,
    AccessGrantSpec,
    AccessGrantStatus,
    AccessToken,
    AccessTokenSpec,
    AccessTokenStatus,
    Condition,
    Connector,
    ConnectorSpec,
    ConnectorStatus,
    Endpoint,
    FrozenMap,
    Link,
    LinkRecord,
    LinkSpec,
    LinkStatus,
    Listener,
    ListenerSpec,
    ListenerStatus,
    Metadata,
    Resource,
    RouterAccess,
    RouterAccessRole,
    RouterAccessSpec,
    RouterAccessStatus,
    ServiceRecord,
    Site,
    SiteRecord,
    SiteSpec,
    SiteStatus,
    dump_resources,
    format_duration,
    load_resource_file,
    load_resource_text,
    load_resources,
    parse_duration,
    resource_to_document,
)

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).parent
EXAMPLES = HERE / "examples"
CONFIG_EXAMPLES = HERE.parents[1] / "config" / "examples"

PROPERTY_SETTINGS = settings(
    max_examples=80,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- strategies ----------------------------------------------------------------------------

labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
subdomains = st.from_regex(
    r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?(\.[a-z0-9]{1,6}){0,2}", fullmatch=True
)
words = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S")), min_size=1, max_size=16
)
any_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Co", "Cn")), max_size=20)
hosts = words
ports = st.integers(1, 65535)
costs = st.integers(1, 2**31 - 1)
maps = st.builds(FrozenMap, st.dictionaries(words, any_text, max_size=3))
optional = st.none
durations = st.integers(1, 10**10).map(lambda ms: ms / 1000)
timestamps = st.integers(0, 2**33).map(float)


@st.composite
def metadata(draw: st.DrawFn) -> Metadata:
    return Metadata(
        name=draw(labels),
        namespace=draw(optional() | labels),
        labels=draw(maps),
        annotations=draw(maps),
    )


@st.composite
def conditions(draw: st.DrawFn) -> tuple[Condition, ...]:
    types = draw(
        st.lists(
            st.sampled_from(
                ["Configured", "Resolved", "Running", "Matched", "Redeemed", "Operational", "Ready"]
            ),
            unique=True,
            max_size=4,
        )
    )
    return tuple(
        Condition(
            type=t,
            status=draw(st.sampled_from(["True", "False", "Unknown"])),
            reason=draw(st.sampled_from(["Ready", "Pending", "Error", ""])),
            message=draw(any_text),
            last_transition_time=draw(timestamps),
        )
        for t in types
    )


def status_fields(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "status": draw(st.sampled_from(["Pending", "Ready", "Error"])),
        "message": draw(any_text),
        "conditions": draw(conditions()),
    }


endpoint_names = st.lists(st.sampled_from(["inter-router", "edge"]), min_size=1, unique=True)


@st.composite
def endpoints(draw: st.DrawFn, names: list[str] | None = None) -> tuple[Endpoint, ...]:
    return tuple(
        Endpoint(name=name, host=draw(hosts), port=draw(ports), group=draw(optional() | words))
        for name in (names if names is not None else draw(endpoint_names))
    )


@st.composite
def sites(draw: st.DrawFn) -> Site:
    status = None
    if draw(st.booleans()):
        network = draw(
            st.lists(
                st.builds(
                    SiteRecord,
                    id=words,
                    name=labels,
                    namespace=optional() | labels,
                    platform=optional() | words,
                    version=optional() | words,
                    links=st.lists(
                        st.builds(
                            LinkRecord,
                            name=labels,
                            remote_site_id=optional() | words,
                            remote_site_name=optional() | labels,
                            operational=st.booleans(),
                        ),
                        max_size=2,
                    ).map(tuple),
                    services=st.lists(
                        st.builds(
                            ServiceRecord,
                            routing_key=words,
                            connectors=st.lists(labels, max_size=2).map(tuple),
                            listeners=st.lists(labels, max_size=2).map(tuple),
                        ),
                        max_size=2,
                    ).map(tuple),
                ),
                max_size=2,
            )
        )
        status = SiteStatus(
            **status_fields(draw),
            endpoints=draw(endpoints()),
            sites_in_network=draw(st.integers(0, 1000)),
            network=tuple(network),
        )
    return Site(
        metadata=draw(metadata()),
        spec=SiteSpec(
            link_access=draw(st.sampled_from(["none", "default"])),
            edge=draw(st.booleans()),
            ha=draw(st.booleans()),
            default_issuer=draw(subdomains),
            settings=draw(maps),
        ),
        status=status,
    )


@st.composite
def listeners(draw: st.DrawFn) -> Listener:
    status = None
    if draw(st.booleans()):
        status = ListenerStatus(**status_fields(draw), has_matching_connector=draw(st.booleans()))
    return Listener(
        metadata=draw(metadata()),
        spec=ListenerSpec(
            routing_key=draw(words),
            port=draw(ports),
            host=draw(hosts),
            tls_credentials=draw(optional() | subdomains),
            observer=draw(st.sampled_from(["auto", "none", "http1", "http2"])),
            settings=draw(maps),
        ),
        status=status,
    )


@st.composite
def connectors(draw: st.DrawFn) -> Connector:
    status = None
    if draw(st.booleans()):
        status = ConnectorStatus(**status_fields(draw), has_matching_listener=draw(st.booleans()))
    return Connector(
        metadata=draw(metadata()),
        spec=ConnectorSpec(
            routing_key=draw(words),
            port=draw(ports),
            host=draw(hosts),
            tls_credentials=draw(optional() | subdomains),
            use_client_cert=draw(st.booleans()),
            verify_hostname=draw(st.booleans()),
            settings=draw(maps),
        ),
        status=status,
    )


@st.composite
def links(draw: st.DrawFn) -> Link:
    status = None
    if draw(st.booleans()):
        status = LinkStatus(
            **status_fields(draw),
            remote_site_id=draw(optional() | words),
            remote_site_name=draw(optional() | labels),
        )
    return Link(
        metadata=draw(metadata()),
        spec=LinkSpec(
            endpoints=draw(endpoints()),
            tls_credentials=draw(optional() | subdomains),
            cost=draw(costs),
            settings=draw(maps),
        ),
        status=status,
    )


@st.composite
def router_accesses(draw: st.DrawFn) -> RouterAccess:
    names = draw(st.lists(st.sampled_from(sorted(DEFAULT_ROLE_PORTS)), min_size=1, unique=True))
    role_ports = draw(
        st.lists(st.integers(0, 65535), min_size=len(names), max_size=len(names)).filter(
            lambda ps: len({p for p in ps if p}) == len([p for p in ps if p])
        )
    )
    status = None
    if draw(st.booleans()):
        status = RouterAccessStatus(**status_fields(draw), endpoints=draw(endpoints(names)))
    return RouterAccess(
        metadata=draw(metadata()),
        spec=RouterAccessSpec(
            roles=tuple(
                RouterAccessRole(name=n, port=p) for n, p in zip(names, role_ports, strict=True)
            ),
            tls_credentials=draw(subdomains),
            generate_tls_credentials=draw(st.booleans()),
            issuer=draw(optional() | subdomains),
            bind_host=draw(optional() | hosts),
            subject_alternative_names=tuple(draw(st.lists(hosts, max_size=3))),
            settings=draw(maps),
        ),
        status=status,
    )


@st.composite
def access_grants(draw: st.DrawFn) -> AccessGrant:
    status = None
    if draw(st.booleans()):
        status = AccessGrantStatus(
            **status_fields(draw),
            url=draw(optional() | words),
            code=draw(optional() | words),
            ca=draw(optional() | any_text),
            redemptions=draw(st.integers(0, 100)),
            expiration_time=draw(optional() | timestamps),
        )
    return AccessGrant(
        metadata=draw(metadata()),
        spec=AccessGrantSpec(
            redemptions_allowed=draw(st.integers(1, 2**31)),
            expiration_window=draw(durations),
            code=draw(optional() | words),
            issuer=draw(optional() | subdomains),
            settings=draw(maps),
        ),
        status=status,
    )


PEM = "-----BEGIN CERTIFICATE-----\nMIIBfDCCASGgAwIBAgIU\n-----END CERTIFICATE-----\n"


@st.composite
def access_tokens(draw: st.DrawFn) -> AccessToken:
    status = None
    if draw(st.booleans()):
        status = AccessTokenStatus(**status_fields(draw), redeemed=draw(st.booleans()))
    return AccessToken(
        metadata=draw(metadata()),
        spec=AccessTokenSpec(
            url="https://" + draw(words),
            code=draw(words),
            ca=draw(st.sampled_from([PEM, PEM.rstrip("\n"), "junk\n" + PEM])),
            link_cost=draw(costs),
            settings=draw(maps),
        ),
        status=status,
    )


STRATEGIES = {
    "Site": sites(),
    "Listener": listeners(),
    "Connector": connectors(),
    "Link": links(),
    "RouterAccess": router_accesses(),
    "AccessGrant": access_grants(),
    "AccessToken": access_tokens(),
}
any_resource = st.one_of(*STRATEGIES.values())


def without_status(resource: Resource) -> Resource:
    return replace(resource, status=None)


# --- properties ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_dump_then_load_is_identity_for_every_kind(kind: str) -> None:
    @PROPERTY_SETTINGS
    @given(STRATEGIES[kind])
    def check(resource: Resource) -> None:
        text = dump_resources([resource])
        assert load_resource_text(text, "generated.yaml") == (without_status(resource),)
        with_status = dump_resources([resource], include_status=True)
        assert load_resource_text(with_status, "generated.yaml") == (resource,)
        assert dump_resources(load_resource_text(with_status), include_status=True) == with_status

    check()


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(st.lists(any_resource, max_size=5, unique_by=lambda r: r.key))
def test_many_resources_in_one_file_round_trip_in_order(resources: list[Resource]) -> None:
    text = dump_resources(resources, include_status=True)
    assert load_resource_text(text, "generated.yaml") == tuple(resources)


MARSHMALLOW_DEFAULTS = ("Not a valid", "Field may not", "Missing data", "Unknown field", "Invalid")
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@PROPERTY_SETTINGS
@given(any_resource, st.data())
def test_any_change_either_loads_or_raises_resource_error(
    resource: Resource, data: st.DataObject
) -> None:
    from skupper_actors.api import ResourceError

    document = resource_to_document(resource, include_status=True)
    section = data.draw(st.sampled_from([k for k in document if isinstance(document[k], dict)]))
    key = data.draw(st.sampled_from([*document[section], "unexpected"]))
    document[section][key] = data.draw(yaml_values)
    try:
        load_resource_text(yaml.safe_dump(document), "fuzz.yaml")
    except ResourceError as error:
        assert all(line.startswith("fuzz.yaml: ") for line in str(error).splitlines())
        # Every message is ours: none of marshmallow's defaults leak through.
        assert not any(default in str(error) for default in MARSHMALLOW_DEFAULTS), str(error)


@PROPERTY_SETTINGS
@given(durations)
def test_durations_print_canonically_and_parse_back(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("15m", 900, "15m"),
        ("1h30m", 5400, "1h30m"),
        ("90s", 90, "1m30s"),
        ("1.5h", 5400, "1h30m"),
        ("2h0m5s", 7205, "2h5s"),
        ("250ms", 0.25, "250ms"),
        ("1500ms", 1.5, "1.5s"),
        ("48h", 172800, "48h"),
    ],
)
def test_durations(text: str, seconds: float, canonical: str) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == canonical


# --- hand-written Skupper v2 examples ------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_an_example_loads_unchanged(path: Path) -> None:
    """Each example is written in normal form (defaults spelled out), so dump gives it back."""
    text = path.read_text(encoding="utf-8")
    resources = load_resource_file(path)
    assert resources
    assert [resource_to_document(r) for r in resources] == list(yaml.safe_load_all(text))
    assert dump_resources(resources) == text


def test_the_examples_cover_every_kind() -> None:
    found = load_resources(EXAMPLES)
    assert found.ok, found.problems
    assert {r.kind for r in found.all_resources} == set(STRATEGIES)
    listener, connector = load_resource_file(EXAMPLES / "backend.yaml")
    assert isinstance(listener, Listener) and isinstance(connector, Connector)
    assert listener.spec.routing_key == connector.spec.routing_key == "backend"
    assert listener.spec.port == connector.spec.port == 8080
    (link,) = load_resource_file(EXAMPLES / "link.yaml")
    assert isinstance(link, Link)
    assert link.spec.endpoint("inter-router") == Endpoint(
        name="inter-router", host="west.example.com", port=55671
    )
    assert link.spec.cost == 2


def test_short_forms_get_skupper_defaults() -> None:
    text = """\
apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: west}
---
apiVersion: skupper.io/v2alpha1
kind: Connector
metadata: {name: backend}
spec: {routingKey: backend, port: 8080}
---
apiVersion: skupper.io/v2alpha1
kind: AccessGrant
metadata: {name: grant}
---
apiVersion: skupper.io/v2alpha1
kind: RouterAccess
metadata: {name: access}
spec:
  roles: [{name: inter-router}, {name: edge}, {name: normal}]
"""
    site, connector, grant, access = load_resource_text(text)
    assert site == Site(metadata=Metadata(name="west"))
    assert site.spec.link_access == "none"
    assert isinstance(connector, Connector) and connector.spec.host == "localhost"
    assert connector.spec.type == "tcp"
    assert isinstance(grant, AccessGrant)
    assert (grant.spec.redemptions_allowed, grant.spec.expiration_window) == (1, 900.0)
    assert isinstance(access, RouterAccess)
    assert [(r.name, r.port) for r in access.spec.roles] == [
        ("inter-router", 55671),
        ("edge", 45671),
        ("normal", 5671),
    ]
    assert "expirationWindow: 15m\n" in dump_resources([grant])


@pytest.mark.parametrize("folder", ["west", "east", "link"])
def test_the_config_examples_load(folder: str) -> None:
    result = load_resources(CONFIG_EXAMPLES / folder)
    assert result.ok, [str(p) for p in result.problems]
    assert result.all_resources
