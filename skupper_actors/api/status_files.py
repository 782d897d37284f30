"""Status files: `runtime/resources/<Kind>-<name>.yaml`, the resource with its status block.

Written atomically (temporary file, then rename) with mode 0600: an AccessGrant's status
holds its code.
"""

from __future__ import annotations

from skupper_actors.api.loader import (
    ResourceError,
    ResourceProblem,
    dump_resources,
    load_resource_file,
)
from skupper_actors.api.namespace import Namespace
from skupper_actors.api.resources import KINDS, Resource
from skupper_actors.security._files import (
    PRIVATE_FILE_MODE,
    ensure_private_dir,
    write_file_atomically,
)


def write_status(namespace: Namespace, resource: Resource) -> None:
    """Write the resource, status included, to its status file (creating runtime/resources)."""
    path = namespace.status_path(resource.kind, resource.name)
    ensure_private_dir(path.parent)
    text = dump_resources([resource], include_status=True)
    write_file_atomically(path, text.encode("utf-8"), mode=PRIVATE_FILE_MODE)


def read_status(namespace: Namespace, kind: str, name: str) -> Resource | None:
    """The resource as last written by `write_status`, or None if there is no such file.

    A file that does not hold exactly that resource raises `ResourceError`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    path = namespace.status_path(kind, name)
    if not path.is_file():
        return None
    resources = load_resource_file(path)
    if len(resources) != 1 or resources[0].key != (kind, name):
        raise ResourceError.single(str(path), f"does not hold exactly {kind}/{name}")
    return resources[0]


def read_statuses(namespace: Namespace) -> tuple[Resource, ...]:
    """Every status file's resource, by file name; unreadable files raise `ResourceError`."""
    resources: list[Resource] = []
    problems: list[ResourceProblem] = []
    for path in sorted(namespace.status_dir.glob("*.yaml")):
        try:
            resources.extend(load_resource_file(path))
        except ResourceError as error:
            problems.extend(error.problems)
    if problems:
        raise ResourceError(problems)
    return tuple(resources)


def remove_status(namespace: Namespace, kind: str, name: str) -> bool:
    """Delete the status file of a deleted resource; False if there was none."""
    try:
        namespace.status_path(kind, name).unlink()
    except FileNotFoundError:
        return False
    return True
