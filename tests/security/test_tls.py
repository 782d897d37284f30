"""Real TLS handshakes between `server_context` and `client_context` over local sockets."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gevent
import gevent.socket
import gevent.ssl
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from skupper_actors.security import (
    CertificateAuthority,
    Credentials,
    CredentialsError,
    client_context,
    client_endpoint_context,
    describe_peer,
    issue_client_cert,
    issue_server_cert,
    server_context,
)

pytestmark = pytest.mark.timeout(30)

SANS = ["localhost", "127.0.0.1"]
IO_TIMEOUT = 10.0


@dataclass
class Outcome:
    """What each end of one connection saw."""

    server_error: BaseException | None = None
    client_error: BaseException | None = None
    server_saw_peer: str | None = None
    client_saw_peer: str | None = None
    client_version: str | None = None
    client_cipher: str | None = None
    reply: bytes = b""

    @property
    def succeeded(self) -> bool:
        return self.server_error is None and self.client_error is None and self.reply == b"PONG"


def exchange(
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    server_hostname: str | None = "localhost",
    connect: Callable[[], tuple[socket.socket, socket.socket]] = socket.socketpair,
) -> Outcome:
    """Handshake, send b"ping", expect b"PONG"; record every failure instead of raising."""
    server_sock, client_sock = connect()
    server_sock.settimeout(IO_TIMEOUT)
    client_sock.settimeout(IO_TIMEOUT)
    outcome = Outcome()

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(server_sock, server_side=True) as tls:
                outcome.server_saw_peer = describe_peer(tls)
                if _recv_exactly(tls, 4) == b"ping":
                    tls.sendall(b"PONG")
        except (ssl.SSLError, OSError) as error:
            outcome.server_error = error
        finally:
            server_sock.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        with client_ctx.wrap_socket(client_sock, server_hostname=server_hostname) as tls:
            outcome.client_saw_peer = describe_peer(tls)
            outcome.client_version = tls.version()
            cipher = tls.cipher()
            outcome.client_cipher = cipher[0] if cipher else None
            tls.sendall(b"ping")
            outcome.reply = _recv_exactly(tls, 4)
    except (ssl.SSLError, OSError) as error:
        outcome.client_error = error
    finally:
        client_sock.close()
    server.join(IO_TIMEOUT)
    assert not server.is_alive()
    return outcome


def _recv_exactly(tls: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = tls.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=IO_TIMEOUT)
        server, _ = listener.accept()
    return server, client


def days_ago(days: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


@pytest.fixture(scope="module")
def west(ca: CertificateAuthority) -> Credentials:
    return issue_server_cert(ca, "west", SANS)


@pytest.fixture(scope="module")
def east(ca: CertificateAuthority) -> Credentials:
    return issue_server_cert(ca, "east", SANS)


@pytest.fixture(scope="module")
def stranger() -> Credentials:
    """A router certificate from another mesh's CA."""
    return issue_server_cert(CertificateAuthority.create(), "stranger", SANS)


def assert_refused(outcome: Outcome, *, by: str, reason: str) -> None:
    """No data got through, and the end `by` failed the handshake for `reason`."""
    assert not outcome.succeeded
    assert outcome.reply == b""
    error = outcome.server_error if by == "server" else outcome.client_error
    assert isinstance(error, ssl.SSLError), outcome
    assert reason in str(error), outcome


def test_mutual_tls_succeeds_and_each_end_names_the_other(
    west: Credentials, east: Credentials
) -> None:
    outcome = exchange(server_context(west), client_context(east))
    assert outcome.succeeded, outcome
    assert outcome.server_saw_peer == "east"
    assert outcome.client_saw_peer == "west"
    assert outcome.client_version == "TLSv1.3"


def test_mutual_tls_over_tcp_on_loopback(west: Credentials, east: Credentials) -> None:
    outcome = exchange(
        server_context(west), client_context(east), server_hostname="127.0.0.1", connect=tcp_pair
    )
    assert outcome.succeeded, outcome


def test_tls12_peer_gets_a_forward_secret_aead_cipher(
    west: Credentials, east: Credentials
) -> None:
    client = client_context(east)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    outcome = exchange(server_context(west), client)
    assert outcome.succeeded, outcome
    assert outcome.client_version == "TLSv1.2"
    assert outcome.client_cipher is not None
    assert outcome.client_cipher.startswith("ECDHE-ECDSA-")
    assert "GCM" in outcome.client_cipher or "CHACHA20" in outcome.client_cipher


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls11_client_is_refused_by_the_server(west: Credentials) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    assert_refused(exchange(server_context(west), old), by="server", reason="unsupported protocol")


def test_contexts_require_certificates_and_tls12(west: Credentials) -> None:
    for context in (server_context(west), client_context(west)):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context(west).check_hostname is True
    assert client_context(west, verify_hostname=False).check_hostname is False


def test_client_cert_from_another_ca_is_refused(west: Credentials, stranger: Credentials) -> None:
    # The stranger trusts our CA, so only the server's check can stop it.
    sneaky = Credentials(stranger.cert_pem, stranger.key_pem, west.ca_pem)
    outcome = exchange(server_context(west), client_context(sneaky))
    assert_refused(outcome, by="server", reason="unable to get local issuer certificate")


def test_server_cert_from_another_ca_is_refused(west: Credentials, stranger: Credentials) -> None:
    sneaky = Credentials(stranger.cert_pem, stranger.key_pem, west.ca_pem)
    outcome = exchange(server_context(sneaky), client_context(west))
    assert_refused(outcome, by="client", reason="unable to get local issuer certificate")


def test_expired_client_cert_is_refused(ca: CertificateAuthority, west: Credentials) -> None:
    expired = issue_client_cert(ca, "old", not_before=days_ago(10), not_after=days_ago(1))
    outcome = exchange(server_context(west), client_context(expired))
    assert_refused(outcome, by="server", reason="certificate has expired")


def test_expired_server_cert_is_refused(ca: CertificateAuthority, east: Credentials) -> None:
    expired = issue_server_cert(ca, "old", SANS, not_before=days_ago(10), not_after=days_ago(1))
    outcome = exchange(server_context(expired), client_context(east))
    assert_refused(outcome, by="client", reason="certificate has expired")


def test_not_yet_valid_server_cert_is_refused(ca: CertificateAuthority, east: Credentials) -> None:
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    early = issue_server_cert(ca, "early", SANS, not_before=future)
    outcome = exchange(server_context(early), client_context(east))
    assert_refused(outcome, by="client", reason="certificate is not yet valid")


def test_client_without_a_certificate_is_refused(west: Credentials) -> None:
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.load_verify_locations(cadata=west.ca_pem.decode())
    outcome = exchange(server_context(west), anonymous)
    assert_refused(outcome, by="server", reason="peer did not return a certificate")


def test_client_only_certificate_cannot_serve(ca: CertificateAuthority, east: Credentials) -> None:
    # OpenSSL checks the extended key usage: clientAuth alone does not make a server.
    client_only = issue_client_cert(ca, "client-only")
    outcome = exchange(server_context(client_only), client_context(east))
    assert_refused(outcome, by="client", reason="unsuitable certificate purpose")


def test_client_only_certificate_can_open_links(
    ca: CertificateAuthority, west: Credentials
) -> None:
    client_only = issue_client_cert(ca, "client-only")
    outcome = exchange(server_context(west), client_context(client_only))
    assert outcome.succeeded, outcome
    assert outcome.server_saw_peer == "client-only"


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_hostname_matching_a_san_is_accepted(
    west: Credentials, east: Credentials, hostname: str
) -> None:
    assert exchange(server_context(west), client_context(east), server_hostname=hostname).succeeded


@pytest.mark.parametrize("hostname", ["east.example.com", "127.0.0.2", "west"])
def test_hostname_not_among_the_sans_is_refused(
    west: Credentials, east: Credentials, hostname: str
) -> None:
    # "west" is the certificate's CN: only SANs count.
    outcome = exchange(server_context(west), client_context(east), server_hostname=hostname)
    assert_refused(outcome, by="client", reason="mismatch")


def test_without_hostname_check_any_name_is_accepted_but_the_ca_still_counts(
    west: Credentials, east: Credentials, stranger: Credentials
) -> None:
    lax = client_context(east, verify_hostname=False)
    assert exchange(server_context(west), lax, server_hostname="elsewhere.example").succeeded
    assert exchange(server_context(west), lax, server_hostname=None).succeeded
    sneaky = Credentials(stranger.cert_pem, stranger.key_pem, west.ca_pem)
    outcome = exchange(server_context(sneaky), lax, server_hostname=None)
    assert_refused(outcome, by="client", reason="unable to get local issuer certificate")


def test_one_credential_set_serves_and_dials(west: Credentials, east: Credentials) -> None:
    assert exchange(server_context(east), client_context(west)).succeeded
    assert exchange(server_context(west), client_context(east)).succeeded


def test_encrypted_key_is_an_error_not_a_passphrase_prompt(west: Credentials) -> None:
    key = serialization.load_pem_private_key(west.key_pem, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(CredentialsError, match="encrypted"):
        server_context(Credentials(west.cert_pem, encrypted, west.ca_pem))


def test_garbage_is_a_credentials_error(west: Credentials) -> None:
    with pytest.raises(CredentialsError, match="CA certificate"):
        client_context(Credentials(west.cert_pem, west.key_pem, b"not a certificate"))
    with pytest.raises(CredentialsError, match="certificate or key"):
        client_context(Credentials(b"junk", west.key_pem, west.ca_pem))


def test_key_of_another_certificate_is_a_credentials_error(
    west: Credentials, east: Credentials
) -> None:
    with pytest.raises(CredentialsError):
        server_context(Credentials(west.cert_pem, east.key_pem, west.ca_pem))


def test_gevent_context_class_gives_cooperative_sockets(
    west: Credentials, east: Credentials
) -> None:
    # The actors wrap sockets on the gevent hub; no monkey-patching needed for that.
    server_ctx = server_context(west, context_class=gevent.ssl.SSLContext)
    client_ctx = client_context(east, context_class=gevent.ssl.SSLContext)
    server_sock, client_sock = gevent.socket.socketpair()

    def serve() -> str | None:
        with server_ctx.wrap_socket(server_sock, server_side=True) as tls:
            tls.sendall(tls.recv(4).upper())
            return describe_peer(tls)

    server = gevent.spawn(serve)
    with gevent.Timeout(IO_TIMEOUT), client_ctx.wrap_socket(
        client_sock, server_hostname="localhost"
    ) as tls:
        assert isinstance(tls, gevent.ssl.SSLSocket)
        tls.sendall(b"ping")
        assert _recv_exactly(tls, 4) == b"PING"
        assert server.get(timeout=IO_TIMEOUT) == "east"


def write_rsa_ca(folder: Path, *, with_usage_and_ski: bool) -> None:
    """A CA made by another tool: RSA, PKCS#1 key, maybe without keyUsage and SKI."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corporate-ca")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(days_ago(1))
        .not_valid_after(days_ago(-30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if with_usage_and_ski:
        usage = x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    folder.mkdir()
    cert = builder.sign(key, hashes.SHA256())
    (folder / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def test_rsa_ca_made_elsewhere_can_issue_router_certificates(tmp_path: Path) -> None:
    write_rsa_ca(tmp_path / "corporate", with_usage_and_ski=True)
    ca = CertificateAuthority.load(tmp_path / "corporate")
    west, east = (issue_server_cert(ca, name, SANS) for name in ("west", "east"))
    outcome = exchange(server_context(west), client_context(east))
    assert outcome.succeeded, outcome
    assert outcome.client_saw_peer == "west"


def test_ca_without_key_usage_is_refused_by_strict_verification(tmp_path: Path) -> None:
    # VERIFY_X509_STRICT (Python 3.13's default too) wants keyUsage and SKI on a CA.
    write_rsa_ca(tmp_path / "sloppy", with_usage_and_ski=False)
    ca = CertificateAuthority.load(tmp_path / "sloppy")
    west, east = (issue_server_cert(ca, name, SANS) for name in ("west", "east"))
    outcome = exchange(server_context(west), client_context(east))
    assert_refused(outcome, by="client", reason="key usage")


def test_describe_peer_without_a_certificate_is_none() -> None:
    class NoPeer:
        def getpeercert(self, binary_form: bool = False) -> bytes | None:
            return None

    assert describe_peer(NoPeer()) is None


# --- the AMQP client endpoint's context (SASL EXTERNAL, docs/adr/0034-sasl-external.md) ----


def test_client_endpoint_certificate_optional_or_required(west: Credentials) -> None:
    assert client_endpoint_context(west).verify_mode == ssl.CERT_OPTIONAL
    required = client_endpoint_context(west, require_client_cert=True)
    assert required.verify_mode == ssl.CERT_REQUIRED
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.load_verify_locations(cadata=west.ca_pem.decode())
    assert exchange(client_endpoint_context(west), anonymous).succeeded
    outcome = exchange(required, anonymous)
    assert_refused(outcome, by="server", reason="peer did not return a certificate")


def test_client_endpoint_trusts_the_configured_client_ca_only(
    ca: CertificateAuthority, west: Credentials
) -> None:
    apps = CertificateAuthority.create("apps")
    alice = issue_client_cert(apps, "alice")
    alice_here = Credentials(alice.cert_pem, alice.key_pem, west.ca_pem)  # trusts west's CA
    context = client_endpoint_context(west, require_client_cert=True, client_ca_pem=apps.cert_pem)
    outcome = exchange(context, client_context(alice_here))
    assert outcome.succeeded and outcome.server_saw_peer == "alice"
    # a certificate of the site's own CA no longer counts for clients
    bob = issue_client_cert(ca, "bob")
    outcome = exchange(context, client_context(bob))
    assert_refused(outcome, by="server", reason="certificate verify failed")
    with pytest.raises(CredentialsError, match="client CA: not a PEM certificate"):
        client_endpoint_context(west, client_ca_pem=b"not a certificate")
