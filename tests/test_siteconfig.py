"""The site configuration file: good files load and round-trip, bad ones say exactly why."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skupper_actors.siteconfig import (
    AmqpConfig,
    ConnectorConfig,
    InterRouterConfig,
    LinkConfig,
    ListenerConfig,
    RoutingConfig,
    SiteConfig,
    SiteConfigError,
    TlsConfig,
    default_runtime_dir,
    dump_site_config,
    load_site_config,
    parse_site_config,
)

pytestmark = pytest.mark.timeout(60)

EXAMPLE = """\
site: west
runtime_dir: ./run/west
inter_router:
  host: 127.0.0.1
  port: 55671
  tls: {cert: certs/tls.crt, key: certs/tls.key, ca: /etc/skupper/ca.crt}
  plaintext: false
links:
  - {name: to-east, host: 127.0.0.1, port: 55672, cost: 1}
  - {name: to-south, host: south.example, port: 55673}
routing: {hello_interval: 1.0, hello_max_age: 3.0, ra_interval: 30.0}
listeners:
  - {name: backend, routing_key: backend, port: 8080}
connectors:
  - {name: db, routing_key: db, port: 5432}
"""

# The smallest file that loads: everything else has a default.
TLS = "inter_router: {tls: {credentials: certs}}"
PLAIN = "inter_router: {plaintext: true}"


def write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_loads_with_paths_resolved_against_the_file(tmp_path: Path) -> None:
    config = load_site_config(write(tmp_path, EXAMPLE), environ={})
    assert config == SiteConfig(
        site="west",
        runtime_dir=tmp_path / "run" / "west",
        inter_router=InterRouterConfig(
            host="127.0.0.1",
            port=55671,
            tls=TlsConfig(
                cert=tmp_path / "certs" / "tls.crt",
                key=tmp_path / "certs" / "tls.key",
                ca=Path("/etc/skupper/ca.crt"),
            ),
            plaintext=False,
        ),
        links=(
            LinkConfig(name="to-east", host="127.0.0.1", port=55672, cost=1),
            LinkConfig(name="to-south", host="south.example", port=55673, cost=1),
        ),
        routing=RoutingConfig(hello_interval=1.0, hello_max_age=3.0, ra_interval=30.0),
        listeners=(ListenerConfig(name="backend", routing_key="backend", port=8080),),
        connectors=(ConnectorConfig(name="db", routing_key="db", port=5432),),
    )


def test_good_file_round_trips_through_dump(tmp_path: Path) -> None:
    config = load_site_config(write(tmp_path, EXAMPLE), environ={})
    text = dump_site_config(config)
    # Dumped paths are absolute, so the copy may live in another folder.
    (tmp_path / "elsewhere").mkdir()
    copy = load_site_config(write(tmp_path / "elsewhere", text), environ={})
    assert copy == config
    assert dump_site_config(copy) == text


def test_defaults(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub", f"site: west\n{TLS}\n")
    config = load_site_config(path, environ={"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert config.runtime_dir == Path("/run/user/1000/skupper-actors/west")
    assert config.inter_router == InterRouterConfig(
        host="127.0.0.1",
        port=55671,
        tls=TlsConfig(
            cert=tmp_path / "sub" / "certs" / "tls.crt",
            key=tmp_path / "sub" / "certs" / "tls.key",
            ca=tmp_path / "sub" / "certs" / "ca.crt",
        ),
        plaintext=False,
    )
    assert config.routing == RoutingConfig(hello_interval=1.0, hello_max_age=3.0, ra_interval=30.0)
    assert (config.links, config.listeners, config.connectors) == ((), (), ())


def test_runtime_dir_without_xdg_is_per_user_under_tmp() -> None:
    config = parse_site_config(f"site: east\n{PLAIN}\n", environ={"XDG_RUNTIME_DIR": ""})
    assert config.runtime_dir == Path(f"/tmp/skupper-actors-{os.getuid()}/east")
    assert default_runtime_dir("east", {}) == config.runtime_dir


def test_empty_sections_count_as_absent() -> None:
    text = f"site: west\n{PLAIN}\nlinks:\nrouting:\nlisteners:\nconnectors:\n"
    config = parse_site_config(text, base_dir=Path("/x"), environ={})
    assert config.links == () and config.routing == RoutingConfig()


def test_listener_and_connector_host_defaults() -> None:
    text = (
        f"site: west\n{PLAIN}\n"
        "listeners: [{name: a, routing_key: k, port: 1}]\n"
        "connectors: [{name: a, routing_key: k, port: 2}]\n"
    )
    config = parse_site_config(text, environ={})
    assert config.listeners[0].host == "127.0.0.1"  # nothing listens beyond loopback by default
    assert config.connectors[0].host == "localhost"


def test_inter_router_port_zero_means_any_free_port() -> None:
    config = parse_site_config(inter_router("{port: 0, plaintext: true}"))
    assert config.inter_router.port == 0


LINK = "{name: a, host: h, port: 1}"
SERVICE = "{name: a, routing_key: k, port: 1}"
NAME_RULE = (
    "must be lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
)
NO_CONSTRUCTOR = "could not determine a constructor for the tag 'tag:yaml.org,2002:python/name"


def plain(extra: str) -> str:
    """A plaintext site named west, plus `extra`."""
    return f"site: west\n{PLAIN}\n{extra}\n"


def inter_router(spec: str) -> str:
    return f"site: west\ninter_router: {spec}\n"


def case(name: str, text: str, *expected: str) -> Any:
    """A bad file and the lines of its error, each after "<file>: "."""
    return pytest.param(text, list(expected), id=name)


BAD = [
    case("yaml-syntax", "site: west\n  oops: [\n",
         "line 2, column 7: invalid YAML: mapping values are not allowed here"),
    case("yaml-unclosed", plain(f"links: [{LINK}"),
         "line 4, column 1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    case("yaml-duplicate-key", plain("site: east"),
         "line 3, column 1: invalid YAML: duplicate key 'site'"),
    case("yaml-non-string-key", plain("7: seven"),
         "line 3, column 1: invalid YAML: keys must be strings, not 7"),
    case("yaml-python-tag", "site: !!python/name:os.system\n",
         f"line 1, column 7: invalid YAML: {NO_CONSTRUCTOR}:os.system'"),
    case("top-level-list", "- site: west\n", "top level: must be a mapping"),
    case("empty-file", "", "site: missing required field"),
    case("unknown-top", plain("link: []"), "link: unknown field"),
    case("unknown-nested", inter_router("{plaintext: true, bind: x}"),
         "inter_router.bind: unknown field"),
    case("unknown-in-list", plain("links: [{name: a, host: h, port: 1, weight: 2}]"),
         "links[0].weight: unknown field"),
    case("unknown-odd-key", plain('"a.b\\n": 1'), "['a.b\\n']: unknown field"),
    case("unknown-in-tls", inter_router("{tls: {credentials: c, password: x}}"),
         "inter_router.tls.password: unknown field"),
    case("missing-site", f"{PLAIN}\n", "site: missing required field"),
    case("missing-link-fields", plain("links: [{name: a}]"),
         "links[0].host: missing required field", "links[0].port: missing required field"),
    case("missing-routing-key", plain("connectors: [{name: a, port: 1}]"),
         "connectors[0].routing_key: missing required field"),
    case("site-type", f"site: 42\n{PLAIN}\n", "site: must be a string"),
    case("site-null", f"site:\n{PLAIN}\n", "site: must not be null"),
    case("site-uppercase", f"site: West\n{PLAIN}\n", f"site: {NAME_RULE}"),
    case("site-trailing-dash", f"site: west-\n{PLAIN}\n", f"site: {NAME_RULE}"),
    case("site-too-long", f"site: {'a' * 64}\n{PLAIN}\n", "site: must be at most 63 characters"),
    case("site-empty", f"site: ''\n{PLAIN}\n", "site: must not be empty"),
    case("port-string", inter_router("{port: '55671', plaintext: true}"),
         "inter_router.port: must be an integer"),
    case("port-float", inter_router("{port: 55671.0, plaintext: true}"),
         "inter_router.port: must be an integer"),
    case("port-bool", inter_router("{port: true, plaintext: true}"),
         "inter_router.port: must be an integer"),
    case("plaintext-yes-string", inter_router("{plaintext: 'yes'}"),
         "inter_router.plaintext: must be true or false"),
    case("inter-router-port-high", inter_router("{port: 65536, plaintext: true}"),
         "inter_router.port: must be between 0 and 65535"),
    case("inter-router-port-negative", inter_router("{port: -1, plaintext: true}"),
         "inter_router.port: must be between 0 and 65535"),
    case("link-port-zero", plain("links: [{name: a, host: h, port: 0}]"),
         "links[0].port: must be between 1 and 65535"),
    case("link-port-high", plain(f"links: [{LINK}, {{name: b, host: h, port: 70000}}]"),
         "links[1].port: must be between 1 and 65535"),
    case("listener-port", plain("listeners: [{name: a, routing_key: k, port: 0}]"),
         "listeners[0].port: must be between 1 and 65535"),
    case("cost-zero", plain("links: [{name: a, host: h, port: 1, cost: 0}]"),
         "links[0].cost: must be at least 1"),
    case("cost-negative", plain("links: [{name: a, host: h, port: 1, cost: -5}]"),
         "links[0].cost: must be at least 1"),
    case("cost-huge", plain("links: [{name: a, host: h, port: 1, cost: 2147483648}]"),
         "links[0].cost: must be at most 2147483647"),
    case("routing-key-empty", plain("listeners: [{name: a, routing_key: '', port: 1}]"),
         "listeners[0].routing_key: must not be empty"),
    case("connector-key-empty", plain("connectors: [{name: a, routing_key: '', port: 1}]"),
         "connectors[0].routing_key: must not be empty"),
    case("host-empty", plain("links: [{name: a, host: '', port: 1}]"),
         "links[0].host: must not be empty"),
    case("host-space", plain("links: [{name: a, host: 'a b', port: 1}]"),
         "links[0].host: must not contain spaces"),
    case("duplicate-link", plain(f"links: [{LINK}, {{name: b, host: h, port: 2}}, {LINK}]"),
         "links[2].name: duplicate link name 'a'"),
    case("duplicate-listener",
         plain(f"listeners: [{SERVICE}, {{name: a, routing_key: j, port: 2}}]"),
         "listeners[1].name: duplicate listener name 'a'"),
    case("duplicate-connector",
         plain(f"connectors: [{SERVICE}, {{name: a, routing_key: k, port: 2}}]"),
         "connectors[1].name: duplicate connector name 'a'"),
    case("tls-missing", "site: west\n", "inter_router.tls: required unless plaintext is true"),
    case("tls-missing-explicit", inter_router("{plaintext: false, port: 5}"),
         "inter_router.tls: required unless plaintext is true"),
    case("tls-and-plaintext", inter_router("{tls: {credentials: c}, plaintext: true}"),
         "inter_router.plaintext: cannot be true while tls is set"),
    case("tls-incomplete", inter_router("{tls: {cert: a.crt}}"),
         "inter_router.tls.ca: missing required field",
         "inter_router.tls.key: missing required field"),
    case("tls-both-forms", inter_router("{tls: {credentials: c, cert: a.crt}}"),
         "inter_router.tls: give either credentials or cert, key and ca, not both"),
    case("tls-not-mapping", inter_router("{tls: certs/}"), "inter_router.tls: must be a mapping"),
    case("links-not-list", plain(f"links: {LINK}"), "links: must be a list"),
    case("link-not-mapping", plain("links: [to-east]"), "links[0]: must be a mapping"),
    case("routing-order", plain("routing: {hello_interval: 3, hello_max_age: 3}"),
         "routing.hello_max_age: must be greater than hello_interval"),
    case("routing-zero", plain("routing: {ra_interval: 0}"),
         "routing.ra_interval: must be greater than 0"),
    case("routing-inf", plain("routing: {hello_max_age: .inf}"),
         "routing.hello_max_age: must be a finite number"),
    case("routing-string", plain("routing: {hello_interval: '1'}"),
         "routing.hello_interval: must be a number"),
    case("runtime-dir-empty", plain("runtime_dir: ''"), "runtime_dir: must be a path"),
    case("name-invalid", plain("links: [{name: To_East, host: h, port: 1}]"),
         f"links[0].name: {NAME_RULE}"),
    case("ordered-by-index",
         plain("links: [" + ", ".join(
             f"{{name: l{i}, host: h, port: {0 if i in (2, 10) else 1}}}" for i in range(11)
         ) + "]"),
         "links[2].port: must be between 1 and 65535",
         "links[10].port: must be between 1 and 65535"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_file_names_file_field_and_reason(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SiteConfigError) as caught:
        load_site_config(path, environ={})
    assert str(caught.value) == "\n".join(f"{path}: {line}" for line in expected)
    assert isinstance(caught.value, ValueError)
    assert caught.value.source == str(path)
    assert len(caught.value.problems) == len(expected)


def test_message_uses_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "site: west\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SiteConfigError, match=r"^site\.yaml: inter_router\.tls: required"):
        load_site_config("site.yaml", environ={})


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SiteConfigError, match=r"missing\.yaml: cannot read \(No such file"):
        load_site_config(tmp_path / "missing.yaml")
    (tmp_path / "latin1.yaml").write_bytes("site: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SiteConfigError, match=r"latin1\.yaml: not UTF-8 text"):
        load_site_config(tmp_path / "latin1.yaml")


# --- properties ---------------------------------------------------------------------------

names = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?", fullmatch=True)
hosts = st.one_of(
    st.sampled_from(["localhost", "127.0.0.1", "::1", "0.0.0.0", "east.example.com"]),
    st.text(st.characters(exclude_categories=["Cs", "Zs", "Zl", "Zp", "Cc"]), min_size=1),
)
routing_keys = st.text(min_size=1, max_size=30)
ports = st.integers(1, 65535)
segments = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/\0"), min_size=1, max_size=8
).filter(lambda segment: segment not in (".", ".."))
absolute_paths = st.lists(segments, min_size=1, max_size=4).map(lambda parts: Path("/", *parts))
positive = st.floats(min_value=0, exclude_min=True, allow_nan=False, allow_infinity=False)
tls_configs = st.builds(TlsConfig, cert=absolute_paths, key=absolute_paths, ca=absolute_paths)
links = st.builds(LinkConfig, name=names, host=hosts, port=ports, cost=st.integers(1, 2**31 - 1))
listeners = st.builds(ListenerConfig, name=names, routing_key=routing_keys, host=hosts, port=ports)
connectors = st.builds(
    ConnectorConfig, name=names, routing_key=routing_keys, host=hosts, port=ports
)


def named(items: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    """Up to four items with distinct names, as a tuple."""
    return st.lists(items, unique_by=lambda item: item.name, max_size=4).map(tuple)


@st.composite
def site_configs(draw: st.DrawFn) -> SiteConfig:
    tls = draw(st.none() | tls_configs)
    interval, max_age = sorted(draw(st.lists(positive, min_size=2, max_size=2, unique=True)))
    return SiteConfig(
        site=draw(names),
        runtime_dir=draw(absolute_paths),
        inter_router=InterRouterConfig(
            host=draw(hosts), port=draw(st.integers(0, 65535)), tls=tls, plaintext=tls is None
        ),
        links=draw(named(links)),
        routing=RoutingConfig(
            hello_interval=interval, hello_max_age=max_age, ra_interval=draw(positive)
        ),
        listeners=draw(named(listeners)),
        connectors=draw(named(connectors)),
    )


PROPERTY_SETTINGS = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(site_configs())
def test_dump_then_load_is_identity(config: SiteConfig) -> None:
    text = dump_site_config(config)
    loaded = parse_site_config(text, source="generated.yaml", base_dir=Path("/nowhere"), environ={})
    assert loaded == config
    assert dump_site_config(loaded) == text


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
documents = st.dictionaries(
    st.sampled_from(
        ["site", "runtime_dir", "inter_router", "links", "routing", "listeners", "connectors", "x"]
    ),
    yaml_values,
)


@PROPERTY_SETTINGS
@given(documents)
def test_any_document_either_loads_or_raises_site_config_error(document: dict[str, Any]) -> None:
    text = yaml.safe_dump(document)
    try:
        parse_site_config(text, source="fuzz.yaml", base_dir=Path("/nowhere"), environ={})
    except SiteConfigError as error:
        assert all(line.startswith("fuzz.yaml: ") for line in str(error).splitlines())


@PROPERTY_SETTINGS
@given(st.text(max_size=200))
def test_any_text_either_loads_or_raises_site_config_error(text: str) -> None:
    with contextlib.suppress(SiteConfigError):
        parse_site_config(text, source="fuzz.yaml", base_dir=Path("/nowhere"), environ={})


def test_limits_section_sets_the_peer_limits_and_refuses_bad_values() -> None:
    limits_section = "limits: {max_addresses_per_router: 20000, max_frame_size: 65536}"
    text = f"site: east\n{PLAIN}\n{limits_section}\n"
    limits = parse_site_config(text, environ={}).limits
    assert limits.max_addresses_per_router == 20_000
    assert limits.max_frame_size == 65_536
    assert limits.max_links_per_connection == 32768  # the default
    with pytest.raises(SiteConfigError) as caught:
        parse_site_config(f"site: east\n{PLAIN}\nlimits: {{max_links_per_connection: 2}}\n",
                          environ={})  # fmt: skip
    assert "limits.max_links_per_connection: must be at least 4" in str(caught.value)


# --- the AMQP client endpoint ---------------------------------------------------------------


def test_amqp_defaults_keep_anonymous_and_resolve_the_client_ca(tmp_path: Path) -> None:
    text = f"site: west\n{TLS}\namqp: {{port: 5672}}\n"
    assert parse_site_config(text, base_dir=tmp_path, environ={}).amqp == AmqpConfig(
        host="127.0.0.1", port=5672, tls=False, auth="anonymous", client_ca=None
    )
    amqp = "{port: 5671, tls: true, auth: external, client_ca: a/ca.crt}"
    text = f"site: west\n{TLS}\namqp: {amqp}\n"
    config = parse_site_config(text, base_dir=tmp_path, environ={})
    assert config.amqp == AmqpConfig(
        port=5671, tls=True, auth="external", client_ca=tmp_path / "a" / "ca.crt"
    )
    copy = parse_site_config(dump_site_config(config), base_dir=Path("/elsewhere"), environ={})
    assert copy == config


@pytest.mark.parametrize(
    ("site", "amqp", "problem"),
    [
        (TLS, "{port: 5672, auth: plain}", "amqp.auth: must be one of: anonymous, external"),
        (TLS, "{port: 5672, auth: 7}", "amqp.auth: must be a string"),
        (
            TLS,
            "{port: 5672, auth: external}",
            "amqp.auth: external needs tls: true (the client certificate is the identity)",
        ),
        (
            TLS,
            "{port: 5672, tls: false, auth: external}",
            "amqp.auth: external needs tls: true (the client certificate is the identity)",
        ),
        (TLS, "{port: 5672, client_ca: ca.crt}", "amqp.client_ca: needs tls: true"),
        (TLS, "{port: 5672, tls: true, client_ca: ''}", "amqp.client_ca: must be a path"),
        (
            PLAIN,
            "{port: 5672, tls: true, auth: external}",
            "amqp.tls: needs the site's certificate (inter_router.tls)",
        ),
        (
            PLAIN,
            "{port: 5672, tls: true}",
            "amqp.tls: needs the site's certificate (inter_router.tls)",
        ),
    ],
)
def test_amqp_auth_mistakes_are_one_line_each(site: str, amqp: str, problem: str) -> None:
    with pytest.raises(SiteConfigError) as caught:
        parse_site_config(f"site: west\n{site}\namqp: {amqp}\n", source="s.yaml", environ={})
    assert str(caught.value) == f"s.yaml: {problem}"
