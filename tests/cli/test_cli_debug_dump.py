"""`skupper debug dump`: what the tarball holds, and that it never holds a private key."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml
from clikit import Cli

import skupper_actors
from skupper_actors.api import (
    AccessGrant,
    AccessGrantStatus,
    Metadata,
    with_status,
    write_status,
)
from skupper_actors.security import CertificateAuthority, issue_client_cert

pytestmark = pytest.mark.timeout(60)


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


@pytest.fixture
def populated(cli: Cli) -> Cli:
    """A namespace as a node leaves it: CA, credentials, statuses (one with a code), logs."""
    cli("-n", "west", "site", "create", "west", "--enable-link-access", "--wait", "none").check()
    cli("-n", "west", "listener", "create", "web", 8080, "--wait", "none").check()
    ns = cli.namespace("west").ensure_layout()
    ca = CertificateAuthority.create(common_name="skupper-site-ca")
    ca.save(ns.runtime_certs_dir / "skupper-site-ca")
    issue_client_cert(ca, "east").save(ns.certs_dir / "link-east")
    # a key under a name that does not say so
    (ns.runtime_dir / "state" / "backup.pem").write_bytes(ca.key_pem)
    grant = AccessGrant(metadata=Metadata(name="g1"))
    write_status(ns, with_status(grant, AccessGrantStatus(url="https://h:1/x", code="s3cret")))
    logs = ns.runtime_dir / "logs"
    logs.mkdir(mode=0o700)
    (logs / "node.log").write_text("".join(f'{{"event": "line {i}"}}\n' for i in range(100)))
    return cli


def test_dump_holds_resources_status_certs_logs_and_versions(populated: Cli) -> None:
    target = populated.home / "dump.tar.gz"
    result = populated("-n", "west", "debug", "dump", str(target)).check()
    assert f"Wrote {target}" in result.out
    files = members(target)
    top = "skupper-dump-west/"
    assert all(name.startswith(top) for name in files)
    names = {name[len(top):] for name in files}
    assert {
        "input/resources/Site-west.yaml",
        "input/resources/Listener-web.yaml",
        "runtime/resources/AccessGrant-g1.yaml",
        "runtime/certs/skupper-site-ca/tls.crt",
        "runtime/certs/skupper-site-ca/ca.crt",
        "input/certs/link-east/tls.crt",
        "logs/node.log",
        "node.json",
        "versions.json",
        "skipped.txt",
    } <= names
    versions = json.loads(files[top + "versions.json"])
    assert versions["skupperActors"] == skupper_actors.__version__
    assert versions["python"].split()[0].startswith("3.")
    assert versions["packages"]["PyYAML"]
    node = json.loads(files[top + "node.json"])
    assert "error" in node["status"]  # no node running: said, not fatal
    assert files[top + "logs/node.log"].count(b"\n") == 100


def test_dump_holds_no_private_key(populated: Cli) -> None:
    target = populated.home / "dump.tar.gz"
    populated("-n", "west", "debug", "dump", str(target)).check()
    files = members(target)
    for name, data in files.items():
        assert not name.endswith(".key"), name
        assert b"PRIVATE KEY" not in data, name
    skipped = files["skupper-dump-west/skipped.txt"].decode().splitlines()
    assert sorted(skipped) == [
        "input/certs/link-east/tls.key: private key",
        "runtime/certs/skupper-site-ca/tls.key: private key",
        "runtime/state/backup.pem: private key",
    ]
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_dump_redacts_grant_codes(populated: Cli) -> None:
    target = populated.home / "dump.tar.gz"
    populated("-n", "west", "debug", "dump", str(target)).check()
    data = members(target)["skupper-dump-west/runtime/resources/AccessGrant-g1.yaml"]
    assert b"s3cret" not in data
    (document,) = yaml.safe_load_all(data)
    assert document["status"]["code"] == "<redacted>"
    assert document["status"]["url"] == "https://h:1/x"
