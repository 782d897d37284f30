"""Where a namespace's folder is, and what `ensure_layout` creates."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from skupper_actors.api import Namespace, namespace_root

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("environ", "uid", "expected"),
    [
        ({"HOME": "/home/ann"}, 1000, "/home/ann/.local/share/skupper/namespaces/default"),
        ({"HOME": "/home/ann", "XDG_DATA_HOME": "/data"}, 1000, "/data/skupper/namespaces/default"),
        (
            {"HOME": "/home/ann", "XDG_DATA_HOME": "relative"},
            1000,
            "/home/ann/.local/share/skupper/namespaces/default",
        ),
        ({"HOME": "/root", "XDG_DATA_HOME": "/data"}, 0, "/var/lib/skupper/namespaces/default"),
        (
            {"HOME": "/home/ann", "SKUPPER_ACTORS_HOME": "/tmp/demo"},
            1000,
            "/tmp/demo/namespaces/default",
        ),
        ({"SKUPPER_ACTORS_HOME": "/tmp/demo"}, 0, "/tmp/demo/namespaces/default"),
    ],
)
def test_namespace_root(environ: dict[str, str], uid: int, expected: str) -> None:
    assert namespace_root("default", environ, uid) == Path(expected)


@pytest.mark.parametrize("name", ["", "..", "a/b", "West", "a" * 64, "-a"])
def test_a_namespace_name_must_be_a_dns_label(name: str) -> None:
    with pytest.raises(ValueError, match=r"^namespace "):
        namespace_root(name, {"HOME": "/home/ann"}, 1000)


def test_locate_uses_the_override(tmp_path: Path) -> None:
    namespace = Namespace.locate("west", environ={"SKUPPER_ACTORS_HOME": str(tmp_path)}, uid=1)
    assert namespace == Namespace("west", tmp_path / "namespaces" / "west")


def test_ensure_layout_creates_skuppers_folders(tmp_path: Path) -> None:
    namespace = Namespace("west", tmp_path / "namespaces" / "west")
    assert namespace.ensure_layout() is namespace
    root = namespace.root
    created = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert created == [
        "input",
        "input/certs",
        "input/issuers",
        "input/resources",
        "runtime",
        "runtime/certs",
        "runtime/grants",
        "runtime/links",
        "runtime/resources",
        "runtime/state",
    ]
    for private in (
        "runtime",
        "runtime/certs",
        "runtime/resources",
        "runtime/links",
        "runtime/grants",
        "runtime/state",
        "input/certs",
        "input/issuers",
    ):
        assert stat.S_IMODE((root / private).stat().st_mode) == 0o700, private
    assert namespace.resources_dir == root / "input" / "resources"
    assert namespace.status_path("Site", "west") == root / "runtime/resources/Site-west.yaml"
    assert namespace.grants_dir == root / "runtime" / "grants"


def test_ensure_layout_tightens_an_existing_runtime_folder(tmp_path: Path) -> None:
    (tmp_path / "runtime").mkdir(mode=0o755)
    (tmp_path / "runtime").chmod(0o755)
    Namespace("west", tmp_path).ensure_layout()
    assert stat.S_IMODE((tmp_path / "runtime").stat().st_mode) == 0o700
    Namespace("west", tmp_path).ensure_layout()  # twice is fine
