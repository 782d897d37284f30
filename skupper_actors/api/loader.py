"""Resource files (YAML, multi-document, or JSON) to resources, with every problem named.

A problem reads `<file>: <Kind>/<name>: <field path>: <what>`; when the name is missing
or unusable the resource is `document <n>` (1-based, counting every YAML document).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml
from marshmallow import ValidationError

from skupper_actors.api import fields as f
from skupper_actors.api.resources import KINDS, Resource
from skupper_actors.api.schemas import load_document, resource_to_document

RESOURCE_SUFFIXES = (".yaml", ".yml", ".json")
#: The parsers recurse once per level of nesting: a file nested past Python's recursion
#: limit (about 1,000 levels; a resource needs fewer than 10) is a bad file, not a crash.
TOO_DEEP = "nested too deeply to be a resource"
#: Flow brackets (`[`, `{`) open at once past which a YAML file is refused unparsed:
#: PyYAML takes seconds (on the event loop) to find that thousands of them are too many.
MAX_FLOW_DEPTH = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceProblem:
    """One thing wrong; `resource` and `path` are "" when they do not apply."""

    source: str
    resource: str = ""
    path: str = ""
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.resource, self.path) if part) + (
            f": {self.message}"
        )


class ResourceError(ValueError):
    """Resources that cannot be used; `problems` lists every one found, one per line."""

    def __init__(self, problems: Iterable[ResourceProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    @classmethod
    def single(cls, source: str, message: str, *, resource: str = "", path: str = "") -> Self:
        """An error with one problem."""
        return cls([ResourceProblem(source=source, resource=resource, path=path, message=message)])


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    """A folder's files: those that loaded, and those that did not with why.

    A file either loads whole or not at all, so a caller can keep the previous
    resources of each file in `errors` (see `merged_with`).
    """

    resources: Mapping[Path, tuple[Resource, ...]] = field(default_factory=dict)
    errors: Mapping[Path, ResourceError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def all_resources(self) -> tuple[Resource, ...]:
        """The resources of the files that loaded, in file order."""
        return tuple(r for path in sorted(self.resources) for r in self.resources[path])

    @property
    def problems(self) -> tuple[ResourceProblem, ...]:
        return tuple(p for path in sorted(self.errors) for p in self.errors[path].problems)

    def merged_with(
        self, previous: Mapping[Path, tuple[Resource, ...]]
    ) -> dict[Path, tuple[Resource, ...]]:
        """Per file: the new resources, or `previous` ones where the file failed now.

        Files that are gone are dropped. The kept resources are not checked against the
        new ones: a good file may now name a resource that a kept file also had.
        """
        merged = {path: previous[path] for path in self.errors if path in previous}
        merged.update(self.resources)
        return dict(sorted(merged.items()))


def resource_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The resource files directly in `folder`, sorted by name; hidden files are skipped."""
    base = Path(folder)
    if not base.is_dir():
        return []
    return sorted(
        path
        for path in base.iterdir()
        if path.suffix in RESOURCE_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def load_resources(folder: str | os.PathLike[str]) -> LoadResult:
    """Every `*.yaml`, `*.yml` and `*.json` file in `folder` (a missing folder is empty).

    Problems are named with the file's path as `folder / name`. A (kind, name) defined in
    two files fails both files, each problem naming the other file.
    """
    loaded: dict[Path, tuple[Resource, ...]] = {}
    errors: dict[Path, list[ResourceProblem]] = {}
    for path in resource_files(folder):
        try:
            loaded[path] = load_resource_file(path)
        except ResourceError as error:
            errors[path] = list(error.problems)
    owners: dict[tuple[str, str], Path] = {}
    for path, resources in loaded.items():
        for resource in resources:
            first = owners.setdefault(resource.key, path)
            if first != path:
                label = f"{resource.kind}/{resource.name}"
                errors.setdefault(first, []).append(
                    ResourceProblem(source=str(first), resource=label,
                                    message=f"also defined in {path}")
                )
                errors.setdefault(path, []).append(
                    ResourceProblem(source=str(path), resource=label,
                                    message=f"already defined in {first}")
                )
    return LoadResult(
        resources={path: r for path, r in loaded.items() if path not in errors},
        errors={path: ResourceError(problems) for path, problems in sorted(errors.items())},
    )


def load_resource_file(path: str | os.PathLike[str]) -> tuple[Resource, ...]:
    """The resources in one file (JSON if it ends in .json, else YAML)."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ResourceError(
            [ResourceProblem(source=source, message=f"cannot read ({error.strerror or error})")]
        ) from None
    except UnicodeDecodeError:
        raise ResourceError([ResourceProblem(source=source, message="not UTF-8 text")]) from None
    if source.endswith(".json"):
        return load_resource_json(text, source)
    return load_resource_text(text, source)


def load_resource_text(text: str, source: str = "<string>") -> tuple[Resource, ...]:
    """The resources in YAML `text` (documents separated by `---`), as if from `source`."""
    if flow_depth(text) > MAX_FLOW_DEPTH:
        raise ResourceError([ResourceProblem(source=source, message=TOO_DEEP)])
    try:
        documents = list(yaml.load_all(text, Loader=f.StrictLoader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ResourceError(
            [ResourceProblem(source=source, message=f"{where}invalid YAML: {error.problem}")]
        ) from None
    except yaml.YAMLError as error:
        raise ResourceError(
            [ResourceProblem(source=source, message=f"invalid YAML: {error}")]
        ) from None
    except RecursionError:
        raise ResourceError([ResourceProblem(source=source, message=TOO_DEEP)]) from None
    return resources_from_documents(documents, source)


def flow_depth(text: str) -> int:
    """The most flow brackets open at once outside quotes (an upper bound: a plain
    scalar's own `[` counts too, which only makes a resource look deeper)."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def load_resource_json(text: str, source: str = "<string>") -> tuple[Resource, ...]:
    """The resources in JSON `text`: one object, or an array of objects."""
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise ResourceError(
            [ResourceProblem(
                source=source,
                message=f"line {error.lineno}, column {error.colno}: invalid JSON: {error.msg}",
            )]
        ) from None
    except ValueError as error:  # a duplicate key
        raise ResourceError(
            [ResourceProblem(source=source, message=f"invalid JSON: {error}")]
        ) from None
    except RecursionError:
        raise ResourceError([ResourceProblem(source=source, message=TOO_DEEP)]) from None
    documents = document if isinstance(document, list) else [document]
    return resources_from_documents(documents, source)


def resources_from_documents(documents: Sequence[Any], source: str) -> tuple[Resource, ...]:
    """Check parsed documents (None ones are skipped); raise with every problem found."""
    resources: list[Resource] = []
    problems: list[ResourceProblem] = []
    first_seen: dict[tuple[str, str], int] = {}
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        try:
            resource = resource_from_document(document, source=source, index=index)
        except ResourceError as error:
            problems.extend(error.problems)
            continue
        except RecursionError:  # parsed just under the limit, too deep to check
            problems.append(
                ResourceProblem(source=source, resource=f"document {index}", message=TOO_DEEP)
            )
            continue
        first = first_seen.setdefault(resource.key, index)
        if first != index:
            problems.append(
                ResourceProblem(
                    source=source,
                    resource=f"{resource.kind}/{resource.name}",
                    message=f"already defined in document {first}",
                )
            )
        resources.append(resource)
    if problems:
        raise ResourceError(problems)
    return tuple(resources)


def resource_from_document(
    document: Any, *, source: str = "<string>", index: int = 1
) -> Resource:
    """One parsed document (a dict) as a resource; `index` names it if it has no name."""
    label = _label(document, index)
    if not isinstance(document, dict):
        raise ResourceError(
            [ResourceProblem(source=source, resource=label, message="must be a mapping")]
        )
    kind = document.get("kind")
    messages: dict[str, Any] = {}
    resource: Resource | None = None
    try:
        resource = load_document(document)
    except ValidationError as error:
        found = error.messages
        messages = dict(found) if isinstance(found, dict) else {"_schema": found}
    if isinstance(kind, str) and kind not in KINDS:
        messages["kind"] = [f"must be one of: {', '.join(sorted(KINDS))}"]
    if messages or resource is None:
        raise ResourceError(
            ResourceProblem(source=source, resource=label, path=path, message=what)
            for path, what in f.problems(messages)
        )
    return resource


def dump_resources(resources: Iterable[Resource], *, include_status: bool = False) -> str:
    """Multi-document YAML in Skupper's shape, defaults included, status only if asked."""
    documents = [resource_to_document(r, include_status=include_status) for r in resources]
    return yaml.dump_all(
        documents,
        Dumper=_BlockDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        explicit_start=True,
    )


class _BlockDumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (PEM certificates) as `|` blocks."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        style: str | None = None
        if any(char in data for char in _UNICODE_BREAKS):
            # PyYAML with allow_unicode writes NEL raw in a single-quoted scalar, which
            # reads back as a space; double quotes escape it.
            style = '"'
        elif "\n" in data:
            style = "|"
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029")


_BlockDumper.add_representer(str, _BlockDumper.represent_str)


def _label(document: Any, index: int) -> str:
    """`Kind/name`, or `document <index>` (with the kind, if known) when the name is unusable."""
    kind = document.get("kind") if isinstance(document, dict) else None
    metadata = document.get("metadata") if isinstance(document, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind_text = kind if isinstance(kind, str) and _printable(kind) else None
    if kind_text and isinstance(name, str) and name and _printable(name):
        return f"{kind_text}/{name}"
    return f"document {index} ({kind_text})" if kind_text else f"document {index}"


def _printable(text: str) -> bool:
    return len(text) <= 253 and text.isprintable() and not any(c.isspace() for c in text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result
