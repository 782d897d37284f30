"""Mutual-TLS `ssl.SSLContext`s for inter-router links.

The contexts are plain `ssl` objects; gevent's cooperative `ssl` module wraps sockets
with them at run time. Trust is this mesh's CA only, never the system store. Both ends
require a certificate from that CA: the server asks for one (CERT_REQUIRED), the client
checks the server's chain and, unless told not to, that the host it dialled is among
the certificate's SANs. OpenSSL also checks the extended key usage: a server must hold
serverAuth, a client clientAuth (router certificates hold both).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Protocol

from cryptography import x509

from skupper_actors.security._files import PRIVATE_FILE_MODE
from skupper_actors.security.credentials import Credentials, CredentialsError, common_name_of

# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are all fine already.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"


class PeerCertificateSource(Protocol):
    """Anything with `getpeercert`: `ssl.SSLSocket`, gevent's, `ssl.SSLObject`."""

    def getpeercert(self, binary_form: Literal[True]) -> bytes | None: ...


def server_context(
    credentials: Credentials, *, context_class: type[ssl.SSLContext] = ssl.SSLContext
) -> ssl.SSLContext:
    """A context for accepting links: presents `credentials`, requires a client cert from its CA.

    Pass `context_class=gevent.ssl.SSLContext` (a subclass) for a context whose
    `wrap_socket` makes cooperative sockets.
    """
    context = context_class(ssl.PROTOCOL_TLS_SERVER)
    _harden(context)
    context.verify_mode = ssl.CERT_REQUIRED
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    # No session resumption between routers (links are long-lived), so tickets are only
    # bytes on the wire, and writing them to a client that already hung up fails the server.
    context.num_tickets = 0
    load_identity(context, credentials)
    return context


def client_endpoint_context(
    credentials: Credentials,
    *,
    require_client_cert: bool = False,
    client_ca_pem: bytes | None = None,
) -> ssl.SSLContext:
    """A context for the AMQP client endpoint: presents `credentials`; a client certificate
    is optional, or required with `require_client_cert` (SASL EXTERNAL), and checked
    against `client_ca_pem` when given, else against the site's CA."""
    if client_ca_pem is not None:
        try:
            x509.load_pem_x509_certificates(client_ca_pem)
        except ValueError as error:
            raise CredentialsError(f"client CA: not a PEM certificate ({error})") from None
        credentials = dataclasses.replace(credentials, ca_pem=client_ca_pem)
    context = server_context(credentials)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_context(
    credentials: Credentials,
    verify_hostname: bool = True,
    *,
    context_class: type[ssl.SSLContext] = ssl.SSLContext,
) -> ssl.SSLContext:
    """A context for opening links: presents `credentials`, verifies the server against its CA.

    With `verify_hostname` (the default) `wrap_socket` needs `server_hostname`, which must
    match a DNS or IP SAN of the server's certificate. Without it the chain is still
    verified, so the peer still has to hold a certificate from this CA. `context_class`
    as for `server_context`.
    """
    context = context_class(ssl.PROTOCOL_TLS_CLIENT)
    _harden(context)
    context.check_hostname = verify_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    load_identity(context, credentials)
    return context


def describe_peer(ssl_socket: PeerCertificateSource) -> str | None:
    """The subject CN of the peer's certificate (the remote site's name), or None."""
    der = ssl_socket.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return common_name_of(x509.load_der_x509_certificate(der))
    except ValueError:
        return None


def _harden(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    # Strict RFC 5280 checks (what Python 3.13 turns on by default), so certificates that
    # pass here pass everywhere.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.verify_flags &= ~ssl.VERIFY_X509_PARTIAL_CHAIN


def load_identity(context: ssl.SSLContext, credentials: Credentials) -> None:
    """Present ``credentials`` (and trust their CA) on handshakes from now on; called
    again, it replaces the certificate for new handshakes (connections up keep theirs)."""
    try:
        context.load_verify_locations(cadata=credentials.ca_pem.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError) as error:
        raise CredentialsError(f"CA certificate: cannot load ({error})") from None
    with _pem_paths(credentials.cert_pem, credentials.key_pem) as (cert_path, key_path):
        try:
            context.load_cert_chain(cert_path, key_path, password=_refuse_encrypted_key)
        except ssl.SSLError as error:
            raise CredentialsError(f"certificate or key: cannot load ({error})") from None


def _refuse_encrypted_key() -> bytes:
    # Without a callback OpenSSL would prompt for a passphrase on the terminal.
    raise CredentialsError("the private key is encrypted; give an unencrypted key")


@contextlib.contextmanager
def _pem_paths(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, str]]:
    """Paths from which OpenSSL can read the PEMs: `ssl` loads a key from a file only.

    On Linux the bytes go into anonymous memory files (memfd) and OpenSSL opens them
    through /proc, so the key never touches a disk; elsewhere a private temporary folder.
    """
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds: list[int] = []
        try:
            for data in (cert_pem, key_pem):
                fd = os.memfd_create("skupper-tls", os.MFD_CLOEXEC)
                fds.append(fd)
                _write_all(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="skupper-tls-") as folder:
        paths = (Path(folder) / "tls.crt", Path(folder) / "tls.key")
        for path, data in zip(paths, (cert_pem, key_pem), strict=True):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
        yield str(paths[0]), str(paths[1])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
