"""Link credentials travel as a Kubernetes-style TLS Secret next to the Link (as Skupper's
`link generate` prints them); `system apply` stores them in input/certs/<name>/."""

from __future__ import annotations

import base64
import binascii
import shutil
from collections.abc import Mapping
from typing import Any

from skupper_actors.api import Namespace
from skupper_actors.api.fields import dns_subdomain
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.security import CA_FILE, CERT_FILE, KEY_FILE, Credentials, CredentialsError

SECRET_KIND = "Secret"
TLS_TYPE = "kubernetes.io/tls"


def secret_document(name: str, credentials: Credentials) -> dict[str, Any]:
    def encoded(pem: bytes) -> str:
        return base64.b64encode(pem).decode("ascii")

    return {
        "apiVersion": "v1",
        "kind": SECRET_KIND,
        "type": TLS_TYPE,
        "metadata": {"name": name},
        "data": {
            CERT_FILE: encoded(credentials.cert_pem),
            KEY_FILE: encoded(credentials.key_pem),
            CA_FILE: encoded(credentials.ca_pem),
        },
    }


def is_secret(document: object) -> bool:
    return isinstance(document, Mapping) and document.get("kind") == SECRET_KIND


def secret_name(document: Mapping[str, Any], source: str) -> str:
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str):
        raise CliError(ExitCode.VALIDATION, f"{source}: Secret: metadata.name is required")
    try:
        dns_subdomain(name)
    except Exception as error:  # marshmallow's ValidationError, worded for the user
        raise CliError(ExitCode.VALIDATION, f"{source}: Secret/{name}: {error}") from None
    return name


def credentials_of(document: Mapping[str, Any], source: str) -> tuple[str, Credentials]:
    """The Secret's name and checked credentials (tls.crt, tls.key, ca.crt, base64)."""
    name = secret_name(document, source)
    data = document.get("data")
    label = f"{source}: Secret/{name}"
    if not isinstance(data, Mapping):
        raise CliError(ExitCode.VALIDATION, f"{label}: data: must be a mapping")
    pems: dict[str, bytes] = {}
    for key in (CERT_FILE, KEY_FILE, CA_FILE):
        value = data.get(key)
        if not isinstance(value, str):
            raise CliError(ExitCode.VALIDATION, f"{label}: data.{key}: is required")
        try:
            pems[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise CliError(ExitCode.VALIDATION, f"{label}: data.{key}: not base64") from None
    credentials = Credentials(pems[CERT_FILE], pems[KEY_FILE], pems[CA_FILE])
    try:
        credentials.check()
    except CredentialsError as error:
        raise CliError(ExitCode.VALIDATION, f"{label}: {error}") from None
    return name, credentials


def store_credentials(namespace: Namespace, name: str, credentials: Credentials) -> None:
    """input/certs/<name>/ (0700, key 0600), where a Link's tlsCredentials are looked up."""
    namespace.ensure_layout()
    credentials.save(namespace.certs_dir / name)


def remove_credentials(namespace: Namespace, name: str) -> bool:
    folder = namespace.certs_dir / name
    if not folder.is_dir():
        return False
    shutil.rmtree(folder)
    return True
