"""The user's resource files: one `<Kind>-<name>.yaml` per resource in input/resources.

Every resource is checked with the api loader before it is written, and written
atomically, so the node (which polls the folder) never reads half a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from skupper_actors.api import (
    Namespace,
    Resource,
    ResourceError,
    dump_resources,
    load_resource_file,
    load_resource_json,
    load_resource_text,
    load_resources,
    resource_from_document,
    resource_to_document,
)
from skupper_actors.api.loader import resources_from_documents
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.controller.applycheck import apply_problem
from skupper_actors.security._files import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    write_file_atomically,
)

#: Kinds whose files carry a secret (a grant or token code).
SECRET_KINDS = frozenset({"AccessGrant", "AccessToken"})


def resource_path(namespace: Namespace, kind: str, name: str) -> Path:
    """Where the CLI keeps resource `kind`/`name`."""
    return namespace.resources_dir / f"{kind}-{name}.yaml"


def validation_error(error: ResourceError) -> CliError:
    """A loader error as one line (problems joined with '; ')."""
    return CliError(ExitCode.VALIDATION, "; ".join(str(p) for p in error.problems))


def build(document: Mapping[str, Any], source: str = "command line") -> Resource:
    """A resource from a Skupper-shaped document, validated by the api loader and by
    what the node needs to apply it (reserved names, bounded dates)."""
    try:
        resource = resource_from_document(dict(document), source=source)
    except ResourceError as error:
        raise validation_error(error) from None
    problem = apply_problem(resource)
    if problem is not None:
        raise CliError(ExitCode.VALIDATION, f"{resource.kind}/{resource.name}: {problem}")
    return resource


def document_of(resource: Resource) -> dict[str, Any]:
    """The resource (without status) as a document to edit and `build` again."""
    return resource_to_document(resource)


def read_declared(namespace: Namespace, kind: str, name: str) -> Resource | None:
    """The resource as the CLI wrote it, or None if there is no such file."""
    path = resource_path(namespace, kind, name)
    if not path.is_file():
        return None
    try:
        resources = load_resource_file(path)
    except ResourceError as error:
        raise validation_error(error) from None
    for resource in resources:
        if resource.key == (kind, name):
            return resource
    raise CliError(ExitCode.VALIDATION, f"{path}: does not hold {kind}/{name}")


def require_declared(namespace: Namespace, kind: str, name: str) -> Resource:
    """Like `read_declared`, but a missing resource is a not-found error."""
    resource = read_declared(namespace, kind, name)
    if resource is None:
        raise CliError(
            ExitCode.NOT_FOUND, f"{kind} {name!r} not found in namespace {namespace.name!r}"
        )
    return resource


def declared(namespace: Namespace, kind: str | None = None) -> list[Resource]:
    """Every resource in input/resources (of `kind`, if given); broken files are skipped."""
    result = load_resources(namespace.resources_dir)
    return [r for r in result.all_resources if kind is None or r.kind == kind]


def write(namespace: Namespace, resource: Resource) -> Path:
    """Write the resource to its own file (creating the namespace folders); returns the path."""
    namespace.ensure_layout()
    path = resource_path(namespace, resource.kind, resource.name)
    text = dump_resources([resource])
    # The api loader reads it back before anything else can: a dump it cannot load is a bug
    # here, and must not reach the node.
    try:
        load_resource_text(text, str(path))
    except ResourceError as error:
        raise validation_error(error) from None
    mode = PRIVATE_FILE_MODE if resource.kind in SECRET_KINDS else PUBLIC_FILE_MODE
    try:
        write_file_atomically(path, text.encode("utf-8"), mode=mode)
    except OSError as error:
        raise CliError(ExitCode.SYSTEM, f"cannot write {path}: {error.strerror}") from None
    return path


def delete(namespace: Namespace, kind: str, name: str) -> bool:
    """Remove the resource's file; False if there was none."""
    try:
        resource_path(namespace, kind, name).unlink()
    except FileNotFoundError:
        return False
    except OSError as error:
        raise CliError(ExitCode.SYSTEM, f"cannot delete {kind} {name!r}: {error}") from None
    return True


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file's resources, and its TLS Secrets (link credentials) as raw documents."""

    resources: tuple[Resource, ...]
    secrets: tuple[dict[str, Any], ...] = ()


def load_input(text: str, source: str) -> InputFile:
    """A file's text: JSON if it looks like JSON, else (multi-document) YAML.

    Secrets are split off before the api loader sees the rest (it knows only Skupper's
    kinds); other files go to the loader as they are, so its YAML checks all apply.
    """
    try:
        if source.endswith(".json") or text.lstrip().startswith(("{", "[")):
            return InputFile(load_resource_json(text, source))
        if "Secret" not in text:
            return InputFile(load_resource_text(text, source))
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            return InputFile(load_resource_text(text, source))  # the loader words the error
        secrets = tuple(d for d in documents if isinstance(d, dict) and d.get("kind") == "Secret")
        rest = [None if d in secrets else d for d in documents]
        return InputFile(resources_from_documents(rest, source), secrets)
    except ResourceError as error:
        raise validation_error(error) from None


def read_input_file(path: str, stdin_text: str | None = None) -> InputFile:
    """What `path` holds, or `stdin_text` when the path is "-"."""
    if path == "-":
        found = load_input(stdin_text or "", "<stdin>")
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CliError(ExitCode.NOT_FOUND, f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(ExitCode.VALIDATION, f"{path}: cannot read: {error}") from None
        found = load_input(text, path)
    if not found.resources and not found.secrets:
        raise CliError(ExitCode.VALIDATION, f"{path}: holds no resource")
    return found
