"""Site CA, router certificates and mutual-TLS contexts for inter-router links."""

from __future__ import annotations

from skupper_actors.security.ca import (
    DEFAULT_CA_COMMON_NAME,
    DEFAULT_CA_VALID_DAYS,
    DEFAULT_CERT_VALID_DAYS,
    MAX_COMMON_NAME,
    CertificateAuthority,
    client_common_name,
    issue_client_cert,
    issue_server_cert,
)
from skupper_actors.security.credentials import (
    CA_FILE,
    CERT_FILE,
    KEY_FILE,
    Credentials,
    CredentialsError,
)
from skupper_actors.security.devmesh import (
    DEV_MESH_CA_FOLDER,
    DevMesh,
    generate_dev_mesh,
    issue_dev_clients,
)
from skupper_actors.security.tls import (
    client_context,
    client_endpoint_context,
    describe_peer,
    load_identity,
    server_context,
)

__all__ = [
    "CA_FILE",
    "CERT_FILE",
    "DEFAULT_CA_COMMON_NAME",
    "DEFAULT_CA_VALID_DAYS",
    "DEFAULT_CERT_VALID_DAYS",
    "DEV_MESH_CA_FOLDER",
    "KEY_FILE",
    "MAX_COMMON_NAME",
    "CertificateAuthority",
    "Credentials",
    "CredentialsError",
    "DevMesh",
    "client_common_name",
    "client_context",
    "client_endpoint_context",
    "describe_peer",
    "generate_dev_mesh",
    "issue_client_cert",
    "issue_dev_clients",
    "issue_server_cert",
    "load_identity",
    "server_context",
]
