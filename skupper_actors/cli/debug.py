"""`skupper debug dump`: one tarball with what a bug report needs, and no private key.

Files whose name ends in `.key`, and any file holding a PEM "PRIVATE KEY" block, are left
out (named in `skipped.txt`); grant and token codes are replaced by "<redacted>"; the
grant book (runtime/grants) holds codes and is left out whole.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import platform
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import yaml

import skupper_actors
from skupper_actors.api import Namespace
from skupper_actors.cli.common import pass_cli
from skupper_actors.cli.context import CliContext
from skupper_actors.cli.deploy import log_dir
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.cli.output import camel_keys
from skupper_actors.cli.waiting import REQUEST_TIMEOUT, management
from skupper_actors.management import ManagementError

PACKAGES = (
    "skupper-actors", "gevent", "python-qpid-proton", "pyzmq", "marshmallow", "cryptography",
    "structlog", "PyYAML", "click", "rich", "supervisor",
)
PRIVATE_KEY_MARK = b"PRIVATE KEY"
MAX_FILE_BYTES = 4 * 1024 * 1024
LOG_TAIL_BYTES = 2 * 1024 * 1024
SECRET_KINDS = ("AccessGrant", "AccessToken")
SKIPPED_FOLDERS = ("grants", "logs")
REDACTED = "<redacted>"


def is_private_key(name: str, data: bytes) -> bool:
    return name.endswith(".key") or PRIVATE_KEY_MARK in data


def redact_codes(data: bytes) -> bytes:
    """Resource YAML with every AccessGrant/AccessToken `code` replaced."""
    try:
        documents = list(yaml.safe_load_all(data.decode("utf-8")))
    except (UnicodeDecodeError, yaml.YAMLError):
        return data
    changed = False
    for document in documents:
        if isinstance(document, dict) and document.get("kind") in SECRET_KINDS:
            for section in ("spec", "status"):
                block = document.get(section)
                if isinstance(block, dict) and "code" in block:
                    block["code"] = REDACTED
                    changed = True
    if not changed:
        return data
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True).encode("utf-8")


def namespace_files(namespace: Namespace) -> Iterator[tuple[str, Path]]:
    """(name in the archive, path) of the regular files of input/ and runtime/."""
    for top in (namespace.input_dir, namespace.runtime_dir):
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*")):
            relative = path.relative_to(namespace.root)
            if top == namespace.runtime_dir and relative.parts[1] in SKIPPED_FOLDERS:
                continue
            if path.is_file() and not path.is_symlink():
                yield str(relative), path


def versions() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "skupperActors": skupper_actors.__version__,
        "python": sys.version,
        "platform": platform.platform(),
        "packages": packages,
    }


def node_report(namespace: Namespace) -> dict[str, Any]:
    """The node's status and network view, or why there is none."""
    report: dict[str, Any] = {}
    for kind in ("status", "network"):
        try:
            report[kind] = camel_keys(asdict(management(namespace, REQUEST_TIMEOUT).request(kind)))
        except ManagementError as error:
            report[kind] = {"error": str(error)}
    return report


def _tail(path: Path, limit: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        file.seek(max(0, size - limit))
        data = file.read()
    if size > limit:
        data = data.split(b"\n", 1)[-1]  # drop the partial first line
    return data


class _Archive:
    def __init__(self, tar: tarfile.TarFile, top: str) -> None:
        self.tar = tar
        self.top = top
        self.now = time.time()

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(f"{self.top}/{name}")
        info.size = len(data)
        info.mtime = int(self.now)
        info.mode = 0o600
        self.tar.addfile(info, io.BytesIO(data))


def write_dump(namespace: Namespace, target: Path) -> tuple[int, list[str]]:
    """Write the tarball; returns how many files went in and what was left out (and why)."""
    top = f"skupper-dump-{namespace.name}"
    skipped: list[str] = []
    count = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        archive = _Archive(tar, top)
        for name, path in namespace_files(namespace):
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    skipped.append(f"{name}: larger than {MAX_FILE_BYTES} bytes")
                    continue
                data = path.read_bytes()
            except OSError as error:
                skipped.append(f"{name}: unreadable ({error.strerror})")
                continue
            if is_private_key(name, data):
                skipped.append(f"{name}: private key")
                continue
            if name.endswith((".yaml", ".yml")):
                data = redact_codes(data)
            archive.add(name, data)
            count += 1
        logs = log_dir(namespace)
        for path in sorted(logs.glob("*.log*")) if logs.is_dir() else []:
            with contextlib.suppress(OSError):
                data = _tail(path, LOG_TAIL_BYTES)
                if PRIVATE_KEY_MARK in data:
                    skipped.append(f"logs/{path.name}: mentions a private key")
                    continue
                archive.add(f"logs/{path.name}", data)
                count += 1
        for name, content in (
            ("node.json", node_report(namespace)),
            ("versions.json", versions()),
        ):
            archive.add(name, json.dumps(content, indent=2, default=str).encode() + b"\n")
            count += 1
        archive.add("skipped.txt", "".join(f"{line}\n" for line in skipped).encode())
    return count, skipped


@click.group(name="debug", help="Collect what a bug report needs.")
def debug() -> None:
    pass


@debug.command(
    help="Write FILE (a .tar.gz): the namespace's resources, status, certificates (never a "
    "private key), the node's status, recent logs and versions."
)
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@pass_cli
def dump(ctx: CliContext, file: str) -> None:
    namespace = ctx.namespace
    if not namespace.root.is_dir():
        raise CliError(
            ExitCode.NOT_FOUND, f"namespace {namespace.name!r} has no folder ({namespace.root})"
        )
    target = Path(file)
    if not target.parent.is_dir():
        raise CliError(ExitCode.NOT_FOUND, f"{target.parent}: no such folder")
    try:
        count, skipped = write_dump(namespace, target)
    except OSError as error:
        raise CliError(ExitCode.SYSTEM, f"cannot write {target}: {error}") from None
    keys = sum(1 for line in skipped if line.endswith("private key"))
    ctx.out(f"Wrote {target}: {count} files ({keys} private keys left out).")
