"""The access-grant book: single use, counted, time-limited, and it survives restarts."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from skupper_actors.security.grants import (
    Grant,
    GrantBook,
    GrantBookError,
    GrantCodeWrong,
    GrantNotFound,
)

pytestmark = pytest.mark.timeout(30)

T0 = 1_700_000_000.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "grants.json"


@pytest.fixture
def book(path: Path) -> GrantBook:
    return GrantBook(path)


def test_a_grant_is_single_use_by_default(book: GrantBook) -> None:
    grant = book.issue("east", now=T0)
    assert (grant.redemptions_allowed, grant.redemptions, grant.expires_at) == (1, 0, T0 + 900)
    redeemed = book.redeem(grant.id, grant.code, T0 + 1)
    assert redeemed == replace(grant, redemptions=1)
    with pytest.raises(GrantNotFound) as caught:
        book.redeem(grant.id, grant.code, T0 + 2)
    assert (caught.value.reason, caught.value.http_status) == ("used up", 404)


def test_a_grant_for_three_redeems_three_times(book: GrantBook) -> None:
    grant = book.issue("east", redemptions_allowed=3, now=T0)
    counts = [book.redeem(grant.id, grant.code, T0 + i).redemptions for i in range(3)]
    assert counts == [1, 2, 3]
    with pytest.raises(GrantNotFound, match="used up"):
        book.redeem(grant.id, grant.code, T0 + 4)
    stored = book.get(grant.id)
    assert stored is not None and stored.redemptions == 3 and stored.is_used_up


def test_a_grant_expires_exactly_at_its_expiry(book: GrantBook) -> None:
    grant = book.issue("east", redemptions_allowed=2, expiration_window=60.0, now=T0)
    assert book.redeem(grant.id, grant.code, T0 + 59.999).redemptions == 1
    with pytest.raises(GrantNotFound) as caught:
        book.redeem(grant.id, grant.code, T0 + 60.0)
    assert caught.value.reason == "expired"
    assert caught.value.http_status == 404


def test_a_wrong_code_is_403_and_spends_nothing(book: GrantBook) -> None:
    grant = book.issue("east", now=T0)
    for wrong in ("", "guess", grant.code[:-1], grant.code + "x", "é"):
        with pytest.raises(GrantCodeWrong) as caught:
            book.redeem(grant.id, wrong, T0 + 1)
        assert caught.value.http_status == 403
    assert book.redeem(grant.id, grant.code, T0 + 2).redemptions == 1


def test_an_unknown_id_is_404(book: GrantBook) -> None:
    with pytest.raises(GrantNotFound) as caught:
        book.redeem("00000000-0000-4000-8000-000000000000", "code", T0)
    assert (caught.value.reason, caught.value.http_status) == ("unknown", 404)


def test_redemption_counts_survive_a_restart(path: Path, book: GrantBook) -> None:
    grant = book.issue("east", redemptions_allowed=2, now=T0)
    book.redeem(grant.id, grant.code, T0 + 1)

    restarted = GrantBook(path)
    assert restarted.get(grant.id) == Grant(
        id=grant.id,
        name="east",
        code=grant.code,
        redemptions_allowed=2,
        redemptions=1,
        expires_at=T0 + 900,
    )
    assert restarted.redeem(grant.id, grant.code, T0 + 2).redemptions == 2
    with pytest.raises(GrantNotFound, match="used up"):
        GrantBook(path).redeem(grant.id, grant.code, T0 + 3)


def test_the_file_is_private_and_has_no_leftovers(path: Path, book: GrantBook) -> None:
    grant = book.issue("east", now=T0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    book.redeem(grant.id, grant.code, T0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["grants.json"]


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"version": 2, "grants": []}',
        '{"version": 1}',
        '{"version": 1, "grants": [{"id": "x"}]}',
        '{"version": 1, "grants": [{"id": "x", "name": "n", "code": "c", '
        '"redemptions_allowed": 1, "redemptions": "1", "expires_at": 1.0}]}',
        '{"version": 1, "grants": [{"id": "x", "name": "n", "code": "c", '
        '"redemptions_allowed": 0, "redemptions": 0, "expires_at": 1.0}]}',
    ],
)
def test_a_corrupt_file_is_an_error_not_an_empty_book(path: Path, content: str) -> None:
    path.write_text(content)
    with pytest.raises(GrantBookError, match=str(path)):
        GrantBook(path)


def test_a_missing_file_is_an_empty_book(path: Path) -> None:
    assert GrantBook(path).list() == ()
    assert not path.exists()  # nothing is written until something changes


def test_codes_are_random_url_safe_and_long(book: GrantBook) -> None:
    codes = {book.issue(f"g{i}", now=T0).code for i in range(20)}
    assert len(codes) == 20
    for code in codes:
        assert len(code) >= 22  # 128 bits in base64
        assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_given_code_is_used(book: GrantBook) -> None:
    grant = book.issue("east", code="my-chosen-code", now=T0)
    assert grant.code == "my-chosen-code"
    assert book.redeem(grant.id, "my-chosen-code", T0).redemptions == 1


def test_remove_find_list_and_purge(path: Path, book: GrantBook) -> None:
    short = book.issue("short", expiration_window=10, now=T0)
    long = book.issue("long", expiration_window=1000, now=T0)
    assert book.find("short") == short
    assert book.list() == (short, long)
    assert book.purge_expired(T0 + 10) == (short,)
    assert book.list() == (long,)
    assert book.purge_expired(T0 + 10) == ()
    assert book.remove("long")
    assert not book.remove("long")
    assert GrantBook(path).list() == ()
    with pytest.raises(GrantNotFound, match="unknown"):
        book.redeem(long.id, long.code, T0)


def test_a_name_is_issued_once(book: GrantBook) -> None:
    book.issue("east", now=T0)
    with pytest.raises(ValueError, match="exists"):
        book.issue("east", now=T0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"redemptions_allowed": 0}, "redemptions_allowed"),
        ({"expiration_window": 0.0}, "expiration_window"),
        ({"expiration_window": float("inf")}, "expiration_window"),
        ({"code": ""}, "code"),
        ({"code": "has space"}, "code"),
    ],
)
def test_impossible_grants_are_refused(
    book: GrantBook, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        book.issue("east", now=T0, **kwargs)  # type: ignore[arg-type]


def test_a_failed_write_counts_nothing(path: Path, book: GrantBook) -> None:
    grant = book.issue("east", now=T0)
    path.unlink()
    (path / "in-the-way").mkdir(parents=True)  # renaming a file over a folder fails, even as root
    with pytest.raises(GrantBookError, match="cannot write"):
        book.redeem(grant.id, grant.code, T0)
    current = book.get(grant.id)
    assert current is not None and current.redemptions == 0
    (path / "in-the-way").rmdir()
    path.rmdir()
    assert book.redeem(grant.id, grant.code, T0).redemptions == 1
    assert GrantBook(path).get(grant.id) == replace(grant, redemptions=1)


def test_the_code_is_not_in_repr(book: GrantBook) -> None:
    grant = book.issue("east", now=T0)
    assert grant.code not in repr(grant)
    stored = json.loads(Path(book.path).read_text())
    assert stored["grants"][0]["code"] == grant.code


# --- counted only once the answer is made (issue 13) -------------------------------------


def test_a_failure_while_answering_counts_nothing(path: Path, book: GrantBook) -> None:
    from skupper_actors.security import CertificateAuthority, issue_client_cert

    ca = CertificateAuthority.create(common_name="test-ca")
    grant = book.issue("east", now=T0)

    def answer(found: Grant) -> bytes:
        # what the grant server did before: a common name past X.509's 64 characters
        return issue_client_cert(ca, f"{'r' * 40}-via-{found.name}{'x' * 30}").cert_pem

    with pytest.raises(ValueError):
        book.redeem_with(grant.id, grant.code, T0 + 1, answer)
    assert book.get(grant.id) == grant
    assert GrantBook(path).get(grant.id) == grant  # nor on disk
    redeemed, made = book.redeem_with(grant.id, grant.code, T0 + 2, lambda g: g.name.encode())
    assert (redeemed.redemptions, made) == (1, b"east")


def test_the_last_use_cannot_be_won_twice_while_answering(book: GrantBook) -> None:
    grant = book.issue("east", now=T0)

    def answer_after_another_redemption(found: Grant) -> str:
        book.redeem(grant.id, grant.code, T0 + 1)  # another greenlet, while this one waited
        return "answer"

    with pytest.raises(GrantNotFound) as caught:
        book.redeem_with(grant.id, grant.code, T0 + 1, answer_after_another_redemption)
    assert caught.value.reason == "used up"
    assert book.get(grant.id).redemptions == 1  # type: ignore[union-attr]


def test_a_client_common_name_always_fits_x509() -> None:
    from skupper_actors.security import (
        MAX_COMMON_NAME,
        CertificateAuthority,
        client_common_name,
        issue_client_cert,
    )

    assert client_common_name("east", "for-east") == "east-via-for-east"
    ca = CertificateAuthority.create(common_name="test-ca")
    long_a = client_common_name("a" * 63, "g" * 63)
    long_b = client_common_name("a" * 63, "g" * 62 + "h")
    assert len(long_a) == len(long_b) == MAX_COMMON_NAME
    assert long_a != long_b  # the hash keeps two long names apart
    assert long_a.startswith("a" * 40)
    issue_client_cert(ca, long_a)  # the certificate can be made


def test_an_expiration_window_is_bounded(book: GrantBook) -> None:
    from skupper_actors.security.grants import MAX_EXPIRATION_WINDOW

    with pytest.raises(ValueError, match="at most 87840h"):
        book.issue("east", now=T0, expiration_window=99999999 * 3600.0)
    assert book.issue("east", now=T0, expiration_window=MAX_EXPIRATION_WINDOW).expires_at == (
        T0 + MAX_EXPIRATION_WINDOW
    )


def test_a_book_from_before_the_bound_reads_a_far_expiry_as_the_last_date(path: Path) -> None:
    from skupper_actors.api.fields import format_timestamp
    from skupper_actors.security.grants import LATEST_EXPIRY

    GrantBook(path).issue("east", now=T0)
    document = json.loads(path.read_text())
    document["grants"][0]["expires_at"] = T0 + 99999999 * 3600.0  # year 13434
    path.write_text(json.dumps(document))
    grant = GrantBook(path).find("east")
    assert grant is not None and grant.expires_at == LATEST_EXPIRY
    assert format_timestamp(grant.expires_at) == "9999-12-31T23:59:59Z"
