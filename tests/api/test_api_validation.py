"""Bad resources: each problem names the file, the resource and the field path, exactly."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from skupper_actors.api import (
    ResourceError,
    load_resource_json,
    load_resource_text,
    resource_from_document,
)

pytestmark = pytest.mark.timeout(30)

SOURCE = "resources/app.yaml"
API = "skupper.io/v2alpha1"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
DELETE = object()

GOOD: dict[str, dict[str, Any]] = {
    "Site": {"metadata": {"name": "west"}, "spec": {"linkAccess": "default"}},
    "Listener": {"metadata": {"name": "backend"}, "spec": {"routingKey": "backend", "port": 8080}},
    "Connector": {"metadata": {"name": "backend"}, "spec": {"routingKey": "backend", "port": 8080}},
    "Link": {
        "metadata": {"name": "to-west"},
        "spec": {
            "endpoints": [{"name": "inter-router", "host": "west.example", "port": "55671"}],
            "cost": 1,
        },
    },
    "RouterAccess": {
        "metadata": {"name": "access"},
        "spec": {"roles": [{"name": "inter-router", "port": 55671}]},
    },
    "AccessGrant": {"metadata": {"name": "grant"}, "spec": {}},
    "AccessToken": {
        "metadata": {"name": "token"},
        "spec": {"url": "https://west.example:9090/abc", "code": "secret", "ca": CA},
    },
}

MUST_BE_NAME = (
    "must be lowercase letters, digits or '-', starting and ending with a letter or digit"
)
MUST_BE_SUBDOMAIN = (
    "must be lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
)
KINDS = "AccessGrant, AccessToken, Connector, Link, Listener, RouterAccess, Site"
DURATION = "must be a duration like 15m, 1h30m or 90s"

# (kind, field path to change, new value or DELETE, the one expected problem line after SOURCE)
CASES: list[tuple[str, str, Any, str]] = [
    # ports
    ("Listener", "spec.port", 70000, "Listener/backend: spec.port: must be between 1 and 65535"),
    ("Listener", "spec.port", 0, "Listener/backend: spec.port: must be between 1 and 65535"),
    ("Connector", "spec.port", -1, "Connector/backend: spec.port: must be between 1 and 65535"),
    (
        "Link",
        "spec.endpoints.0.port",
        "70000",
        "Link/to-west: spec.endpoints[0].port: must be between 1 and 65535",
    ),
    (
        "Link",
        "spec.endpoints.0.port",
        "0",
        "Link/to-west: spec.endpoints[0].port: must be between 1 and 65535",
    ),
    (
        "RouterAccess",
        "spec.roles.0.port",
        65536,
        "RouterAccess/access: spec.roles[0].port: must be between 0 and 65535",
    ),
    # wrong types
    ("Listener", "spec.port", "8080", "Listener/backend: spec.port: must be an integer"),
    ("Listener", "spec.port", True, "Listener/backend: spec.port: must be an integer"),
    ("Listener", "spec.port", 80.5, "Listener/backend: spec.port: must be an integer"),
    ("Connector", "spec.routingKey", 5, "Connector/backend: spec.routingKey: must be a string"),
    (
        "Connector",
        "spec.useClientCert",
        "yes",
        "Connector/backend: spec.useClientCert: must be true or false",
    ),
    ("Site", "spec.edge", "no", "Site/west: spec.edge: must be true or false"),
    ("Site", "spec", "everything", "Site/west: spec: must be a mapping"),
    ("Site", "spec.settings", ["a"], "Site/west: spec.settings: must be a mapping"),
    (
        "Site",
        "spec.settings",
        {"router-logging": 1},
        "Site/west: spec.settings.router-logging: must be a string",
    ),
    ("Link", "spec.endpoints", {"name": "edge"}, "Link/to-west: spec.endpoints: must be a list"),
    (
        "Link",
        "spec.endpoints.0.port",
        "http",
        "Link/to-west: spec.endpoints[0].port: must be a port number",
    ),
    (
        "RouterAccess",
        "spec.subjectAlternativeNames",
        "west.example",
        "RouterAccess/access: spec.subjectAlternativeNames: must be a list",
    ),
    (
        "AccessGrant",
        "spec.redemptionsAllowed",
        "3",
        "AccessGrant/grant: spec.redemptionsAllowed: must be an integer",
    ),
    (
        "AccessGrant",
        "spec.expirationWindow",
        900,
        f"AccessGrant/grant: spec.expirationWindow: {DURATION}",
    ),
    ("Site", "metadata.labels", {"tier": 2}, "Site/west: metadata.labels.tier: must be a string"),
    (
        "Listener",
        "status.hasMatchingConnector",
        "yes",
        "Listener/backend: status.hasMatchingConnector: must be true or false",
    ),
    # missing required fields
    ("Listener", "spec.port", DELETE, "Listener/backend: spec.port: missing required field"),
    (
        "Listener",
        "spec.routingKey",
        DELETE,
        "Listener/backend: spec.routingKey: missing required field",
    ),
    (
        "Connector",
        "spec",
        DELETE,
        "Connector/backend: spec.port: missing required field\n"
        f"{SOURCE}: Connector/backend: spec.routingKey: missing required field",
    ),
    ("Link", "spec.endpoints", DELETE, "Link/to-west: spec.endpoints: missing required field"),
    (
        "Link",
        "spec.endpoints.0.host",
        DELETE,
        "Link/to-west: spec.endpoints[0].host: missing required field",
    ),
    (
        "RouterAccess",
        "spec.roles",
        DELETE,
        "RouterAccess/access: spec.roles: missing required field",
    ),
    ("AccessToken", "spec.code", DELETE, "AccessToken/token: spec.code: missing required field"),
    ("Site", "metadata.name", DELETE, "document 1 (Site): metadata.name: missing required field"),
    ("Site", "metadata", DELETE, "document 1 (Site): metadata.name: missing required field"),
    ("Site", "apiVersion", DELETE, "Site/west: apiVersion: missing required field"),
    ("Site", "kind", DELETE, "document 1: kind: missing required field"),
    # impossible values
    ("Listener", "spec.routingKey", "", "Listener/backend: spec.routingKey: must not be empty"),
    (
        "Listener",
        "spec.routingKey",
        "back end",
        "Listener/backend: spec.routingKey: must be printable characters without spaces",
    ),
    ("Listener", "spec.type", "udp", "Listener/backend: spec.type: must be one of: tcp"),
    (
        "Listener",
        "spec.observer",
        "http3",
        "Listener/backend: spec.observer: must be one of: auto, none, http1, http2",
    ),
    ("Listener", "spec.host", "local host", "Listener/backend: spec.host: must not contain spaces"),
    (
        "Listener",
        "spec.tlsCredentials",
        "../../etc",
        f"Listener/backend: spec.tlsCredentials: {MUST_BE_SUBDOMAIN}",
    ),
    ("Connector", "spec.host", "", "Connector/backend: spec.host: must not be empty"),
    (
        "Site",
        "spec.linkAccess",
        "route",
        "Site/west: spec.linkAccess: must be one of: none, default",
    ),
    ("Site", "metadata.name", "West", f"Site/West: metadata.name: {MUST_BE_NAME}"),
    (
        "Site",
        "metadata.name",
        "a" * 64,
        f"Site/{'a' * 64}: metadata.name: must be at most 63 characters",
    ),
    ("Site", "metadata.namespace", "my_ns", f"Site/west: metadata.namespace: {MUST_BE_NAME}"),
    ("Link", "spec.cost", 0, "Link/to-west: spec.cost: must be at least 1"),
    ("Link", "spec.cost", -3, "Link/to-west: spec.cost: must be at least 1"),
    ("Link", "spec.cost", 2**31, "Link/to-west: spec.cost: must be at most 2147483647"),
    ("Link", "spec.endpoints", [], "Link/to-west: spec.endpoints: must not be empty"),
    (
        "Link",
        "spec.endpoints.0.name",
        "normal",
        "Link/to-west: spec.endpoints[0].name: must be one of: inter-router, edge",
    ),
    (
        "RouterAccess",
        "spec.roles.0.name",
        "admin",
        "RouterAccess/access: spec.roles[0].name: must be one of: inter-router, edge, normal",
    ),
    (
        "AccessGrant",
        "spec.redemptionsAllowed",
        0,
        "AccessGrant/grant: spec.redemptionsAllowed: must be at least 1",
    ),
    (
        "AccessGrant",
        "spec.expirationWindow",
        "15 minutes",
        f"AccessGrant/grant: spec.expirationWindow: {DURATION}",
    ),
    (
        "AccessGrant",
        "spec.expirationWindow",
        "0s",
        "AccessGrant/grant: spec.expirationWindow: must be longer than 0s",
    ),
    (
        "AccessGrant",
        "spec.expirationWindow",
        "-5m",
        f"AccessGrant/grant: spec.expirationWindow: {DURATION}",
    ),
    (
        "AccessGrant",
        "spec.expirationWindow",
        "1.0005s",
        "AccessGrant/grant: spec.expirationWindow: must be a whole number of milliseconds",
    ),
    (
        "AccessToken",
        "spec.url",
        "http://west.example/abc",
        "AccessToken/token: spec.url: must be an https:// URL",
    ),
    (
        "AccessToken",
        "spec.ca",
        "not a certificate",
        "AccessToken/token: spec.ca: must be a PEM certificate",
    ),
    ("AccessToken", "spec.linkCost", 0, "AccessToken/token: spec.linkCost: must be at least 1"),
    (
        "Listener",
        "status.status",
        "Done",
        "Listener/backend: status.status: must be one of: Pending, Ready, Error",
    ),
    ("Link", "spec.endpoints.0", None, "Link/to-west: spec.endpoints[0]: must not be null"),
    ("Site", "spec.ha", None, "Site/west: spec.ha: must not be null"),
    (
        "RouterAccess",
        "spec.roles",
        [{"name": "edge"}, {"name": "edge"}],
        "RouterAccess/access: spec.roles[1].name: duplicate role 'edge'",
    ),
    # unknown fields, kinds and versions
    ("Listener", "spec.protocol", "tcp", "Listener/backend: spec.protocol: unknown field"),
    ("Site", "metadata.uid", "1234", "Site/west: metadata.uid: unknown field"),
    ("Link", "spec.endpoints.0.weight", 1, "Link/to-west: spec.endpoints[0].weight: unknown field"),
    ("Site", "extra", {}, "Site/west: extra: unknown field"),
    ("Site", "kind", "Sight", f"Sight/west: kind: must be one of: {KINDS}"),
    ("Site", "kind", "MultiKeyListener", f"MultiKeyListener/west: kind: must be one of: {KINDS}"),
    ("Site", "apiVersion", "skupper.io/v1alpha1", f"Site/west: apiVersion: must be {API}"),
    ("Site", "apiVersion", "v2alpha1", f"Site/west: apiVersion: must be {API}"),
]


def document(kind: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, **copy.deepcopy(GOOD[kind])}


def changed(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    target: Any = doc
    for part in parents:
        if isinstance(part, str) and part not in target:
            target[part] = {}
        target = target[part]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


def problems_of(text: str, source: str = SOURCE) -> str:
    with pytest.raises(ResourceError) as caught:
        load_resource_text(text, source)
    return str(caught.value)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    assert {kind for kind, *_ in CASES} == set(GOOD)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_the_good_documents_load(kind: str) -> None:
    (resource,) = load_resource_text(yaml.safe_dump(document(kind)), SOURCE)
    assert resource.kind == kind


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"),
    CASES,
    ids=[f"{k}-{p}-{'delete' if v is DELETE else v!r}"[:60] for k, p, v, _ in CASES],
)
def test_a_bad_field_is_named_exactly(kind: str, path: str, value: Any, expected: str) -> None:
    if path.startswith("status"):
        changed_doc = changed(document(kind), "status", {})
    else:
        changed_doc = document(kind)
    text = yaml.safe_dump(changed(changed_doc, path, value), sort_keys=False)
    assert problems_of(text) == f"{SOURCE}: {expected}"


def test_every_problem_in_a_file_is_reported_in_document_order() -> None:
    listener = changed(document("Listener"), "spec.port", 0)
    changed(listener, "spec.routingKey", "")
    nameless = changed(document("Connector"), "metadata.name", DELETE)
    link = changed(document("Link"), "spec.cost", 0)
    text = yaml.safe_dump_all([listener, None, nameless, link], sort_keys=False)
    assert problems_of(text).splitlines() == [
        f"{SOURCE}: Listener/backend: spec.port: must be between 1 and 65535",
        f"{SOURCE}: Listener/backend: spec.routingKey: must not be empty",
        f"{SOURCE}: document 3 (Connector): metadata.name: missing required field",
        f"{SOURCE}: Link/to-west: spec.cost: must be at least 1",
    ]


def test_the_error_carries_each_problem_as_data() -> None:
    with pytest.raises(ResourceError) as caught:
        load_resource_text(yaml.safe_dump(changed(document("Listener"), "spec.port", 0)), SOURCE)
    (problem,) = caught.value.problems
    assert (problem.source, problem.resource, problem.path) == (
        SOURCE,
        "Listener/backend",
        "spec.port",
    )
    assert problem.message == "must be between 1 and 65535"
    assert isinstance(caught.value, ValueError)


def test_the_same_resource_twice_in_a_file_is_an_error() -> None:
    text = yaml.safe_dump_all([document("Site"), document("Listener"), document("Site")])
    assert problems_of(text) == f"{SOURCE}: Site/west: already defined in document 1"


def test_the_same_name_in_two_kinds_is_fine() -> None:
    text = yaml.safe_dump_all([document("Listener"), document("Connector")])
    assert [r.key for r in load_resource_text(text)] == [
        ("Listener", "backend"),
        ("Connector", "backend"),
    ]


def test_duplicate_link_roles_and_router_ports_are_errors() -> None:
    link = document("Link")
    link["spec"]["endpoints"] *= 2
    access = document("RouterAccess")
    access["spec"]["roles"] = [
        {"name": "inter-router", "port": 9000},
        {"name": "edge", "port": 9000},
    ]
    assert problems_of(yaml.safe_dump_all([link, access])).splitlines() == [
        f"{SOURCE}: Link/to-west: spec.endpoints[1].name: duplicate endpoint name 'inter-router'",
        f"{SOURCE}: RouterAccess/access: spec.roles[1].port: port 9000 is used twice",
    ]


def test_any_free_port_may_be_asked_for_by_several_roles() -> None:
    access = document("RouterAccess")
    access["spec"]["roles"] = [{"name": "inter-router", "port": 0}, {"name": "edge", "port": 0}]
    (resource,) = load_resource_text(yaml.safe_dump(access))
    assert [role.port for role in resource.spec.roles] == [0, 0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kind: [",
            "line 1, column 8: invalid YAML: expected the node content, but found '<stream end>'",
        ),
        ("kind: Site\nkind: Link\n", "line 2, column 1: invalid YAML: duplicate key 'kind'"),
        ("- kind: Site\n", "document 1: must be a mapping"),
        ("just text\n", "document 1: must be a mapping"),
        ("---\n---\nhello\n", "document 2: must be a mapping"),
    ],
)
def test_a_file_that_is_not_resources_says_where(text: str, expected: str) -> None:
    assert problems_of(text) == f"{SOURCE}: {expected}"


def test_an_empty_file_holds_no_resources() -> None:
    assert load_resource_text("", SOURCE) == ()
    assert load_resource_text("---\n# nothing yet\n", SOURCE) == ()


def test_json_is_read_too() -> None:
    text = json.dumps([document("Site"), document("Listener")])
    assert [r.key for r in load_resource_json(text, "app.json")] == [
        ("Site", "west"),
        ("Listener", "backend"),
    ]
    with pytest.raises(ResourceError, match=r"^app\.json: invalid JSON: duplicate key 'kind'$"):
        load_resource_json('{"kind": "Site", "kind": "Link"}', "app.json")
    with pytest.raises(ResourceError, match=r"^app\.json: line 1, column 2: invalid JSON: "):
        load_resource_json("{", "app.json")


def test_a_document_can_be_checked_on_its_own() -> None:
    site = resource_from_document(document("Site"), source="cli")
    assert site.key == ("Site", "west")
    with pytest.raises(ResourceError, match=r"^cli: Site/west: spec.edge: must be true or false$"):
        resource_from_document(changed(document("Site"), "spec.edge", 1), source="cli")
