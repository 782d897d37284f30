"""Every command's happy path and main failure, without a running node (table-driven)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from clikit import Cli, document, yaml_text

from skupper_actors.api import (
    Connector,
    Listener,
    Site,
    load_resource_file,
    load_resource_text,
    resource_from_document,
)
from skupper_actors.cli.errors import ExitCode

pytestmark = pytest.mark.timeout(30)

NO_WAIT = ("--wait", "none")


def resources_dir(cli: Cli, ns: str = "west") -> Path:
    return cli.namespace(ns).resources_dir


def with_site(cli: Cli) -> None:
    cli("-n", "west", "site", "create", "west", *NO_WAIT).check()


def with_listener(cli: Cli) -> None:
    with_site(cli)
    cli("-n", "west", "listener", "create", "web", 8080, *NO_WAIT).check()


def with_connector(cli: Cli) -> None:
    with_site(cli)
    cli("-n", "west", "connector", "create", "web", 80, *NO_WAIT).check()


def nothing(cli: Cli) -> None:
    pass


# (id, setup, args, exit code, text in stdout or stderr, file that must exist afterwards)
CASES = [
    ("site create", nothing, ["site", "create", "west", *NO_WAIT], ExitCode.OK,
     "Site 'west' created", "Site-west.yaml"),
    ("site create without node waits", nothing, ["site", "create", "west"],
     ExitCode.NODE_UNREACHABLE, "not running", "Site-west.yaml"),
    ("site create twice", with_site, ["site", "create", "east", *NO_WAIT],
     ExitCode.ALREADY_EXISTS, "already has site 'west'", None),
    ("site create bad name", nothing, ["site", "create", "West", *NO_WAIT],
     ExitCode.VALIDATION, "metadata.name", None),
    ("site update", with_site, ["site", "update", "--enable-link-access", *NO_WAIT],
     ExitCode.OK, "Site 'west' updated", "Site-west.yaml"),
    ("site update missing", nothing, ["site", "update", *NO_WAIT], ExitCode.NOT_FOUND,
     "no site", None),
    ("site delete", with_site, ["site", "delete"], ExitCode.OK, "deleted", None),
    ("site delete missing", nothing, ["site", "delete", "west"], ExitCode.NOT_FOUND,
     "not found", None),
    ("site status", with_site, ["site", "status"], ExitCode.OK, "not reported", None),
    ("site status missing", nothing, ["site", "status", "west"], ExitCode.NOT_FOUND,
     "not found", None),
    ("site generate", nothing, ["site", "generate", "west"], ExitCode.OK, "kind: Site", None),
    ("site generate bad", nothing, ["site", "generate", "x-"], ExitCode.VALIDATION,
     "metadata.name", None),
    ("listener create", with_site, ["listener", "create", "web", 8080, *NO_WAIT], ExitCode.OK,
     "Listener 'web' created", "Listener-web.yaml"),
    ("listener create bad port", with_site, ["listener", "create", "web", 0, *NO_WAIT],
     ExitCode.VALIDATION, "spec.port", None),
    ("listener create twice", with_listener, ["listener", "create", "web", 9, *NO_WAIT],
     ExitCode.ALREADY_EXISTS, "already exists", None),
    ("listener create no port", with_site, ["listener", "create", "web"], ExitCode.USAGE,
     "Missing argument", None),
    ("listener update", with_listener, ["listener", "update", "web", "--port", 9090, *NO_WAIT],
     ExitCode.OK, "updated", "Listener-web.yaml"),
    ("listener update missing", with_site, ["listener", "update", "web", "--port", 1, *NO_WAIT],
     ExitCode.NOT_FOUND, "not found", None),
    ("listener delete", with_listener, ["listener", "delete", "web"], ExitCode.OK, "deleted",
     None),
    ("listener delete missing", with_site, ["listener", "delete", "web"], ExitCode.NOT_FOUND,
     "not found", None),
    ("listener status", with_listener, ["listener", "status"], ExitCode.OK, "web", None),
    ("listener status missing", with_site, ["listener", "status", "nope"], ExitCode.NOT_FOUND,
     "not found", None),
    ("listener generate", nothing, ["listener", "generate", "web", 8080], ExitCode.OK,
     "routingKey: web", None),
    ("listener generate bad type", nothing,
     ["listener", "generate", "web", 8080, "--listener-type", "udp"], ExitCode.USAGE,
     "udp", None),
    ("connector create", with_site, ["connector", "create", "web", 80, *NO_WAIT], ExitCode.OK,
     "Connector 'web' created", "Connector-web.yaml"),
    ("connector create bad host", with_site,
     ["connector", "create", "web", 80, "--host", "a b", *NO_WAIT], ExitCode.VALIDATION,
     "spec.host", None),
    ("connector update", with_connector,
     ["connector", "update", "web", "--host", "db.internal", *NO_WAIT], ExitCode.OK, "updated",
     "Connector-web.yaml"),
    ("connector update missing", with_site, ["connector", "update", "x", *NO_WAIT],
     ExitCode.NOT_FOUND, "not found", None),
    ("connector delete", with_connector, ["connector", "delete", "web"], ExitCode.OK, "deleted",
     None),
    ("connector delete missing", with_site, ["connector", "delete", "web"],
     ExitCode.NOT_FOUND, "not found", None),
    ("connector status", with_connector, ["connector", "status", "web"], ExitCode.OK, "web",
     None),
    ("connector generate", nothing, ["connector", "generate", "db", 5432, "-o", "json"],
     ExitCode.OK, '"routingKey": "db"', None),
    ("link generate without node", with_site, ["link", "generate"], ExitCode.NOT_FOUND,
     "link", None),
    ("link update missing", with_site, ["link", "update", "x", "--cost", 2, *NO_WAIT],
     ExitCode.NOT_FOUND, "not found", None),
    ("link status", with_site, ["link", "status"], ExitCode.OK, "No Link", None),
    ("link status missing", with_site, ["link", "status", "x"], ExitCode.NOT_FOUND,
     "not found", None),
    ("link delete missing", with_site, ["link", "delete", "x"], ExitCode.NOT_FOUND,
     "not found", None),
    ("token issue without node", with_site, ["token", "issue", "tok.yaml", "--name", "g1"],
     ExitCode.NODE_UNREACHABLE, "not running", None),
    ("token issue bad window", with_site,
     ["token", "issue", "tok.yaml", "--expiration-window", "soon"], ExitCode.VALIDATION,
     "expirationWindow", None),
    ("token issue window past ten years", with_site,
     ["token", "issue", "tok.yaml", "--expiration-window", "99999999h"], ExitCode.VALIDATION,
     "AccessGrant/", None),
    ("token issue reserved name", with_site,
     ["token", "issue", "tok.yaml", "--name", "skupper-site-ca"], ExitCode.VALIDATION,
     "reserved for the site's own certificates", None),
    ("token redeem missing file", with_site, ["token", "redeem", "nope.yaml"],
     ExitCode.NOT_FOUND, "no such file", None),
    ("system reload without node", with_site, ["system", "reload"],
     ExitCode.NODE_UNREACHABLE, "not running", None),
    ("system status without node", with_site, ["system", "status"],
     ExitCode.NODE_UNREACHABLE, "not running", None),
    ("system stop without node", with_site, ["system", "stop"], ExitCode.NODE_UNREACHABLE,
     "not running", None),
    ("system start without site", nothing, ["system", "start"], ExitCode.NOT_FOUND,
     "declares no site", None),
    ("system uninstall not installed", with_site, ["system", "uninstall"],
     ExitCode.NOT_FOUND, "not installed", None),
    ("system apply missing file", nothing, ["system", "apply", "-f", "nope.yaml"],
     ExitCode.NOT_FOUND, "no such file", None),
    ("system delete missing file", nothing, ["system", "delete", "-f", "nope.yaml"],
     ExitCode.NOT_FOUND, "no such file", None),
    ("network status without node", with_site, ["network", "status"],
     ExitCode.NODE_UNREACHABLE, "not running", None),
    ("debug dump no namespace", nothing, ["debug", "dump", "d.tgz"], ExitCode.NOT_FOUND,
     "has no folder", None),
    ("version", nothing, ["version"], ExitCode.OK, "not running", None),
    ("unknown command", nothing, ["frobnicate"], ExitCode.USAGE, "No such command", None),
    ("bad timeout", with_site, ["site", "update", "--timeout", "soon"], ExitCode.USAGE,
     "duration", None),
]


@pytest.mark.parametrize(
    ("setup", "args", "code", "text", "file"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_command(cli: Cli, monkeypatch, setup, args, code, text, file) -> None:
    monkeypatch.chdir(cli.home)
    setup(cli)
    result = cli("-n", "west", *args)
    assert result.code == code, result
    assert text in result.out + result.err
    assert "Traceback" not in result.err
    if code not in (ExitCode.OK, ExitCode.USAGE):
        assert result.err.startswith("skupper: error: ") or "note:" in result.err, result.err
        assert result.err.strip().splitlines()[-1].startswith("skupper: error: ")
    if file is not None:
        assert (resources_dir(cli) / file).is_file()
        load_resource_file(resources_dir(cli) / file)  # what was written loads


def test_bad_namespace_is_a_usage_error(cli: Cli) -> None:
    result = cli("-n", "West", "site", "status")
    assert result.code == ExitCode.USAGE
    assert result.err == (
        "skupper: error: namespace 'West': must be lowercase letters, digits or '-', "
        "starting and ending with a letter or digit\n"
    )


def test_nothing_is_written_when_validation_fails(cli: Cli) -> None:
    with_site(cli)
    cli("-n", "west", "listener", "create", "web", 70000, *NO_WAIT).check(ExitCode.VALIDATION)
    assert sorted(p.name for p in resources_dir(cli).iterdir()) == ["Site-west.yaml"]


def test_create_without_node_still_writes_and_says_so(cli: Cli) -> None:
    result = cli("-n", "west", "site", "create", "west", "--enable-link-access")
    result.check(ExitCode.NODE_UNREACHABLE)
    assert "note: the site in namespace 'west' is not running" in result.err
    assert "use --wait none" in result.err
    (site,) = load_resource_file(resources_dir(cli) / "Site-west.yaml")
    assert isinstance(site, Site) and site.spec.link_access == "default"


def test_listener_defaults_and_flags(cli: Cli) -> None:
    with_site(cli)
    cli("-n", "west", "listener", "create", "web", 8080, *NO_WAIT).check()
    cli("-n", "west", "listener", "create", "db", 5432, "-r", "postgres", "--host", "0.0.0.0",
        "--observer", "none", *NO_WAIT).check()
    (web,) = load_resource_file(resources_dir(cli) / "Listener-web.yaml")
    (db,) = load_resource_file(resources_dir(cli) / "Listener-db.yaml")
    assert isinstance(web, Listener) and isinstance(db, Listener)
    assert (web.spec.routing_key, web.spec.host, web.spec.port) == ("web", "127.0.0.1", 8080)
    assert (db.spec.routing_key, db.spec.host, db.spec.observer) == ("postgres", "0.0.0.0", "none")


def test_update_changes_only_what_is_given(cli: Cli) -> None:
    with_site(cli)
    cli("-n", "west", "connector", "create", "web", 80, "-r", "www", "--host", "10.0.0.5",
        *NO_WAIT).check()
    cli("-n", "west", "connector", "update", "web", "--port", 8080, *NO_WAIT).check()
    (web,) = load_resource_file(resources_dir(cli) / "Connector-web.yaml")
    assert isinstance(web, Connector)
    assert (web.spec.routing_key, web.spec.host, web.spec.port) == ("www", "10.0.0.5", 8080)


def test_files_are_one_resource_each_and_not_hidden_temporaries(cli: Cli) -> None:
    with_listener(cli)
    cli("-n", "west", "connector", "create", "web", 80, *NO_WAIT).check()
    names = sorted(p.name for p in resources_dir(cli).iterdir())
    assert names == ["Connector-web.yaml", "Listener-web.yaml", "Site-west.yaml"]


@pytest.mark.parametrize("kind", ["site", "listener", "connector"])
def test_status_output_formats_parse_back(cli: Cli, kind: str) -> None:
    with_listener(cli)
    cli("-n", "west", "connector", "create", "web", 80, *NO_WAIT).check()
    as_yaml = cli("-n", "west", kind, "status", "-o", "yaml").check().out
    as_json = cli("-n", "west", kind, "status", "-o", "json").check().out
    from_yaml = load_resource_text(as_yaml)
    from_json = tuple(resource_from_document(d) for d in json.loads(as_json))
    assert from_yaml == from_json
    assert [r.kind.lower() for r in from_yaml] == [kind]
    one = json.loads(cli("-n", "west", kind, "status", from_yaml[0].name, "-o", "json").out)
    assert resource_from_document(one) == from_yaml[0]


@pytest.mark.parametrize(
    "args",
    [
        ["site", "generate", "west", "--enable-link-access"],
        ["listener", "generate", "web", 8080, "--host", "0.0.0.0"],
        ["connector", "generate", "web", 80, "-r", "www"],
    ],
)
def test_generate_yaml_and_json_are_the_same_resource(cli: Cli, args: list[str]) -> None:
    as_yaml = cli(*args).check().out
    as_json = cli(*args, "-o", "json").check().out
    (from_yaml,) = load_resource_text(as_yaml)
    assert resource_from_document(json.loads(as_json)) == from_yaml
    assert not cli.namespace("default").root.exists()  # generate writes nothing


def test_site_delete_all_removes_every_resource(cli: Cli) -> None:
    with_listener(cli)
    cli("-n", "west", "connector", "create", "web", 80, *NO_WAIT).check()
    cli("-n", "west", "site", "delete", "--all").check()
    assert list(resources_dir(cli).iterdir()) == []


def test_system_apply_and_delete_from_stdin(cli: Cli) -> None:
    text = yaml_text(
        document("Site", "west", {"linkAccess": "default"}),
        document("Listener", "web", {"routingKey": "web", "port": 8080}),
        document("Connector", "web", {"routingKey": "web", "port": 80}),
    )
    result = cli("-n", "west", "system", "apply", "-f", "-", stdin=text).check()
    assert result.out.splitlines() == [
        "Site 'west' applied.",
        "Listener 'web' applied.",
        "Connector 'web' applied.",
    ]
    assert len(list(resources_dir(cli).glob("*.yaml"))) == 3
    listener_only = yaml_text(document("Listener", "web", {"routingKey": "web", "port": 8080}))
    cli("-n", "west", "system", "delete", "-f", "-", stdin=listener_only).check()
    again = cli("-n", "west", "system", "delete", "-f", "-", stdin=listener_only)
    again.check(ExitCode.NOT_FOUND)
    assert "Listener/web" in again.err


def test_system_apply_refuses_a_bad_file_whole(cli: Cli, home: Path) -> None:
    bad = home / "bad.yaml"
    bad.write_text(
        yaml_text(
            document("Site", "west"),
            document("Listener", "web", {"routingKey": "web", "port": "eighty"}),
        )
    )
    result = cli("-n", "west", "system", "apply", "-f", str(bad))
    result.check(ExitCode.VALIDATION)
    assert "Listener/web: spec.port" in result.err
    assert not resources_dir(cli).exists() or not list(resources_dir(cli).iterdir())


def test_token_redeem_validates_the_file(cli: Cli, home: Path) -> None:
    with_site(cli)
    token = home / "token.yaml"
    token.write_text(
        yaml_text(document("AccessToken", "t", {"url": "http://x", "code": "c", "ca": "x"}))
    )
    result = cli("-n", "west", "token", "redeem", str(token))
    result.check(ExitCode.VALIDATION)
    assert "spec.url: must be an https:// URL" in result.err
    assert "spec.ca: must be a PEM certificate" in result.err
    not_a_token = home / "site.yaml"
    not_a_token.write_text(yaml_text(document("Site", "x")))
    cli("-n", "west", "token", "redeem", str(not_a_token)).check(ExitCode.VALIDATION)


def test_token_issue_without_node_leaves_no_grant(cli: Cli) -> None:
    with_site(cli)
    cli("-n", "west", "token", "issue", "-", "--name", "g1").check(ExitCode.NODE_UNREACHABLE)
    assert not (resources_dir(cli) / "AccessGrant-g1.yaml").exists()


def test_version_as_json(cli: Cli) -> None:
    import skupper_actors

    data = json.loads(cli("version", "-o", "json").check().out)
    assert data == {"client": skupper_actors.__version__, "node": None}
    assert yaml.safe_load(cli("version", "-o", "yaml").check().out) == data


def test_help_lists_exit_codes_and_every_group(cli: Cli) -> None:
    out = cli("--help").check().out
    for code in ExitCode:
        assert f"{int(code):>3}  " in out
    for group in ("site", "listener", "connector", "link", "token", "system", "network",
                  "debug", "version"):
        assert f"  {group} " in out


def test_system_apply_checks_secrets_before_writing_anything(cli: Cli) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "link-west"},
        "data": {"tls.crt": "not base64!", "tls.key": "", "ca.crt": ""},
    }
    text = yaml_text(document("Site", "east"), secret)
    result = cli("-n", "east", "system", "apply", "-f", "-", stdin=text)
    result.check(ExitCode.VALIDATION)
    assert result.err == (
        "skupper: error: -: Secret/link-west: data.tls.crt: not base64\n"
    )
    assert not (cli.namespace("east").resources_dir / "Site-east.yaml").exists()
