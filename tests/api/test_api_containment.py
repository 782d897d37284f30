"""Input that validates must not crash what applies it: depth, reserved names, dates."""

from __future__ import annotations

from pathlib import Path

import pytest

from skupper_actors.api import load_resources
from skupper_actors.api.loader import (
    TOO_DEEP,
    ResourceError,
    load_resource_json,
    load_resource_text,
)
from skupper_actors.controller.applycheck import apply_problem

pytestmark = pytest.mark.timeout(30)

SITE = "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: west\n"


def doc(kind: str, name: str, spec: str) -> str:
    head = f"apiVersion: skupper.io/v2alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n"
    return f"{head}spec:\n{spec}"


@pytest.mark.parametrize("depth", [5000, 980])
def test_deep_nesting_is_a_bad_file_not_a_crash(depth: int) -> None:
    for load, text in (
        (load_resource_text, "[" * depth),
        (load_resource_json, "[" * depth),
        (load_resource_text, "spec: " + "[" * depth + "]" * depth),
    ):
        with pytest.raises(ResourceError) as caught:
            load(text, "deep.yaml")
        assert str(caught.value) == f"deep.yaml: {TOO_DEEP}"


def test_a_deep_file_leaves_the_other_files_loaded(tmp_path: Path) -> None:
    (tmp_path / "Site-west.yaml").write_text(SITE)
    (tmp_path / "deep.yaml").write_text("[" * 5000)
    loaded = load_resources(tmp_path)
    assert [r.name for r in loaded.all_resources] == ["west"]
    assert [p.message for p in loaded.problems] == [TOO_DEEP]


def one(text: str):
    (resource,) = load_resource_text(text, "r.yaml")
    return resource


def test_an_expiration_window_past_ten_years_cannot_be_applied() -> None:
    grant = one(doc("AccessGrant", "big", "  expirationWindow: 99999999h\n"))
    assert apply_problem(grant) == (
        "expirationWindow must be at most 87840h (10 years), not 99999999h"
    )
    assert apply_problem(one(doc("AccessGrant", "ok", "  expirationWindow: 87840h\n"))) is None


@pytest.mark.parametrize("name", ["skupper-site-ca", "skupper-site-server"])
def test_names_of_the_sites_own_certificates_are_reserved(name: str) -> None:
    token = one(
        doc(
            "AccessToken",
            name,
            "  url: https://127.0.0.1:1/x\n  code: c\n  ca: '-----BEGIN CERTIFICATE-----'\n",
        )
    )
    assert apply_problem(token) == (
        f"an AccessToken's name {name!r} is reserved for the site's own certificates "
        "(reserved: skupper-site-ca, skupper-site-server)"
    )
    endpoints = "  endpoints:\n  - name: inter-router\n    host: 127.0.0.1\n    port: '1'\n"
    link = one(doc("Link", "peer", endpoints + f"  tlsCredentials: {name}\n"))
    assert "tlsCredentials" in (apply_problem(link) or "")
    assert "a Link's name" in (apply_problem(one(doc("Link", name, endpoints))) or "")
    assert apply_problem(one(doc("Link", "peer", endpoints))) is None


@pytest.mark.parametrize("name", ["..", "a/b", "/", "UPPER", "a" * 64])
def test_names_that_address_another_folder_do_not_load(name: str) -> None:
    text = doc("AccessToken", name, "  url: https://h/x\n  code: c\n  ca: x\n")
    quoted = text.replace(f"name: {name}", f"name: '{name}'")
    with pytest.raises(ResourceError, match=r"metadata\.name: must"):
        load_resource_text(quoted, "r.yaml")


@pytest.mark.parametrize(
    ("text", "ok"),
    [("east", True), ("", False), (".", False), ("..", False), ("a/b", False), ("A", False)],
)
def test_a_name_from_a_file_name_is_checked_before_it_becomes_a_path(text: str, ok: bool) -> None:
    from skupper_actors.controller.applycheck import is_resource_name

    assert is_resource_name(text) is ok
