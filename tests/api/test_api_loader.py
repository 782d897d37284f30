"""Loading a folder of resource files: good files load even when a neighbour is bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skupper_actors.api import (
    Listener,
    LoadResult,
    ResourceError,
    Site,
    load_resources,
    resource_files,
)

pytestmark = pytest.mark.timeout(30)

SITE = """\
apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: west}
spec: {linkAccess: default}
"""
LISTENER = """\
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: backend}
spec: {routingKey: backend, port: 8080}
"""
CONNECTOR = """\
apiVersion: skupper.io/v2alpha1
kind: Connector
metadata: {name: backend}
spec: {routingKey: backend, port: 9090}
"""
BAD_LISTENER = LISTENER.replace("port: 8080", "port: 70000")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_file_among_good_ones_is_reported_and_the_good_ones_load(tmp_path: Path) -> None:
    site = write(tmp_path, "site.yaml", SITE)
    bad = write(tmp_path, "app.yaml", BAD_LISTENER + "---\n" + CONNECTOR)
    connector = write(tmp_path, "db.yml", CONNECTOR.replace("backend", "db"))

    result = load_resources(tmp_path)

    assert not result.ok
    assert sorted(result.resources) == [connector, site]
    assert [r.key for r in result.all_resources] == [("Connector", "db"), ("Site", "west")]
    assert list(result.errors) == [bad]
    assert str(result.errors[bad]) == (
        f"{bad}: Listener/backend: spec.port: must be between 1 and 65535"
    )
    assert [str(p) for p in result.problems] == [str(result.errors[bad])]


def test_problems_name_the_file_as_the_folder_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "resources").mkdir()
    write(tmp_path / "resources", "app.yaml", BAD_LISTENER)
    monkeypatch.chdir(tmp_path)
    result = load_resources("resources")
    assert [str(p) for p in result.problems] == [
        "resources/app.yaml: Listener/backend: spec.port: must be between 1 and 65535"
    ]


def test_the_previous_resources_of_a_failing_file_are_kept(tmp_path: Path) -> None:
    app = write(tmp_path, "app.yaml", LISTENER)
    site = write(tmp_path, "site.yaml", SITE)
    first = load_resources(tmp_path)
    assert first.ok
    previous = first.merged_with({})

    write(tmp_path, "app.yaml", BAD_LISTENER)  # a typo while editing
    write(tmp_path, "site.yaml", SITE.replace("default", "none"))
    second = load_resources(tmp_path)
    merged = second.merged_with(previous)

    assert merged[app] == previous[app]  # still port 8080
    listener = merged[app][0]
    assert isinstance(listener, Listener) and listener.spec.port == 8080
    new_site = merged[site][0]
    assert isinstance(new_site, Site) and new_site.spec.link_access == "none"

    app.unlink()
    assert list(load_resources(tmp_path).merged_with(merged)) == [site]


def test_the_same_resource_in_two_files_fails_both_naming_the_other(tmp_path: Path) -> None:
    one = write(tmp_path, "one.yaml", LISTENER)
    two = write(tmp_path, "two.yaml", SITE + "---\n" + LISTENER.replace("8080", "8081"))
    write(tmp_path, "three.yaml", CONNECTOR)

    result = load_resources(tmp_path)

    assert [r.key for r in result.all_resources] == [("Connector", "backend")]
    assert str(result.errors[one]) == f"{one}: Listener/backend: also defined in {two}"
    assert str(result.errors[two]) == f"{two}: Listener/backend: already defined in {one}"


def test_yaml_yml_and_json_files_are_read_and_others_skipped(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", SITE)
    write(tmp_path, "b.yml", LISTENER)
    write(
        tmp_path,
        "c.json",
        json.dumps(
            {
                "apiVersion": "skupper.io/v2alpha1",
                "kind": "Connector",
                "metadata": {"name": "backend"},
                "spec": {"routingKey": "backend", "port": 9090},
            }
        ),
    )
    write(tmp_path, "notes.txt", "not a resource")
    write(tmp_path, ".a.yaml.swp", "editor junk")
    write(tmp_path, "site.yaml~", "backup")
    (tmp_path / "folder.yaml").mkdir()

    result = load_resources(tmp_path)

    assert result.ok
    assert [p.name for p in resource_files(tmp_path)] == ["a.yaml", "b.yml", "c.json"]
    assert [r.kind for r in result.all_resources] == ["Site", "Listener", "Connector"]


def test_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert load_resources(tmp_path / "nowhere") == LoadResult()


def test_a_file_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_bytes(b"kind: \xff\n")
    assert str(load_resources(tmp_path).errors[path]) == f"{path}: not UTF-8 text"


def test_resource_error_single() -> None:
    error = ResourceError.single("x.yaml", "broken", resource="Site/a", path="spec")
    assert str(error) == "x.yaml: Site/a: spec: broken"
