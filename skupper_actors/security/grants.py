"""The access-grant book: who may redeem a token, how often, until when.

The node's grant server asks the book; the book keeps every grant in one JSON file,
rewritten atomically (mode 0600) on each change, so a restart never makes a used token
usable again. Time is passed in (`now`, seconds since the epoch); the file is the only I/O.
Not safe for concurrent use from threads; under gevent no call yields.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from skupper_actors.security._files import PRIVATE_FILE_MODE, write_file_atomically

#: 24 random bytes: 192 bits, 32 url-safe characters.
CODE_BYTES = 24
DEFAULT_EXPIRATION_WINDOW = 15 * 60.0
#: The longest expiration window a grant may have: 10 years (a date past it is nonsense,
#: and past year 9999 it cannot even be written as a date).
MAX_EXPIRATION_WINDOW = 10 * 366 * 24 * 3600.0
#: 9999-12-31T23:59:59Z, the last time a status can show: a book written before the window
#: was bounded may hold a later one, which is read as this.
LATEST_EXPIRY = 253402300799.0
FILE_VERSION = 1

_Answer = TypeVar("_Answer")

NotFoundReason = Literal["unknown", "expired", "used up"]


def check_expiration_window(seconds: float) -> None:
    """Raise ValueError (one line) for a window longer than `MAX_EXPIRATION_WINDOW`."""
    if seconds > MAX_EXPIRATION_WINDOW:
        given = f"{int(seconds // 3600)}h" if seconds % 3600 == 0 else f"{seconds:.0f}s"
        raise ValueError(
            f"expirationWindow must be at most {MAX_EXPIRATION_WINDOW / 3600:.0f}h (10 years), "
            f"not {given}"
        )


class GrantBookError(Exception):
    """The grant file cannot be read, parsed or written."""


class GrantRefused(Exception):
    """A redemption the grant server must refuse; `http_status` is its answer."""

    http_status: int = 400


class GrantNotFound(GrantRefused, LookupError):
    """Unknown id, expired or used up: all answered 404, `reason` is for the logs."""

    http_status = 404

    def __init__(self, grant_id: str, reason: NotFoundReason) -> None:
        self.grant_id = grant_id
        self.reason: NotFoundReason = reason
        super().__init__(f"grant {grant_id}: {reason}")


class GrantCodeWrong(GrantRefused):
    """The code does not match (403); the grant keeps its redemptions."""

    http_status = 403

    def __init__(self, grant_id: str) -> None:
        self.grant_id = grant_id
        super().__init__(f"grant {grant_id}: wrong code")


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """One grant; `code` is secret, so it is left out of `repr`."""

    id: str
    name: str
    code: str
    redemptions_allowed: int
    redemptions: int
    expires_at: float

    def __repr__(self) -> str:
        return (
            f"Grant(id={self.id!r}, name={self.name!r}, redemptions={self.redemptions}/"
            f"{self.redemptions_allowed}, expires_at={self.expires_at!r})"
        )

    def is_expired(self, now: float) -> bool:
        """True from `expires_at` on: the window is half-open [issued, expires_at)."""
        return now >= self.expires_at

    @property
    def is_used_up(self) -> bool:
        return self.redemptions >= self.redemptions_allowed

    @property
    def redemptions_left(self) -> int:
        return max(0, self.redemptions_allowed - self.redemptions)


class GrantBook:
    """Grants by id, persisted to `path` (whose folder must exist) on every change.

    Names are unique: `issue` refuses a name in use, so that a controller that reconciles
    after a restart (`find` first) cannot silently hand out a fresh grant.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._grants: dict[str, Grant] = _read(self.path)

    def issue(
        self,
        name: str,
        *,
        redemptions_allowed: int = 1,
        expiration_window: float = DEFAULT_EXPIRATION_WINDOW,
        now: float,
        code: str | None = None,
    ) -> Grant:
        """A new grant with a random id (and a random code unless `code` is given)."""
        if not name:
            raise ValueError("a grant needs a name")
        if self.find(name) is not None:
            raise ValueError(f"a grant named {name!r} exists; remove it first")
        if isinstance(redemptions_allowed, bool) or redemptions_allowed < 1:
            raise ValueError(f"redemptions_allowed must be at least 1, not {redemptions_allowed!r}")
        if not math.isfinite(expiration_window) or expiration_window <= 0:
            raise ValueError(f"expiration_window must be positive, not {expiration_window!r}")
        check_expiration_window(expiration_window)
        if code is not None and (not code or not code.isprintable() or " " in code):
            raise ValueError("a code must be printable characters without spaces")
        grant = Grant(
            id=str(uuid.uuid4()),
            name=name,
            code=secrets.token_urlsafe(CODE_BYTES) if code is None else code,
            redemptions_allowed=redemptions_allowed,
            redemptions=0,
            expires_at=now + expiration_window,
        )
        self._commit({**self._grants, grant.id: grant})
        return grant

    def redeem(self, grant_id: str, code: str, now: float) -> Grant:
        """Count one redemption and return the updated grant, or raise `GrantRefused`.

        The count is on disk before this returns; if writing fails nothing is counted.
        """
        grant, _ = self.redeem_with(grant_id, code, now, lambda _grant: None)
        return grant

    def redeem_with(
        self,
        grant_id: str,
        code: str,
        now: float,
        answer: Callable[[Grant], _Answer],
    ) -> tuple[Grant, _Answer]:
        """Check a redemption, make its `answer`, and only then count it.

        If `answer` raises, nothing is counted (the token is not burned). `answer` may
        yield to other greenlets: the grant is checked again before the count is written,
        so two redemptions racing for the last use cannot both win.
        """
        grant = self._redeemable(grant_id, code, now)
        made = answer(grant)
        grant = self._redeemable(grant_id, code, now)
        redeemed = replace(grant, redemptions=grant.redemptions + 1)
        self._commit({**self._grants, grant_id: redeemed})
        return redeemed, made

    def _redeemable(self, grant_id: str, code: str, now: float) -> Grant:
        grant = self._grants.get(grant_id)
        if grant is None:
            raise GrantNotFound(grant_id, "unknown")
        if grant.is_expired(now):
            raise GrantNotFound(grant_id, "expired")
        if grant.is_used_up:
            raise GrantNotFound(grant_id, "used up")
        if not hmac.compare_digest(code.encode("utf-8"), grant.code.encode("utf-8")):
            raise GrantCodeWrong(grant_id)
        return grant

    def get(self, grant_id: str) -> Grant | None:
        return self._grants.get(grant_id)

    def find(self, name: str) -> Grant | None:
        """The grant named `name`, if any."""
        return next((g for g in self._grants.values() if g.name == name), None)

    def list(self) -> tuple[Grant, ...]:
        """Every grant, oldest expiry first."""
        return tuple(sorted(self._grants.values(), key=lambda g: (g.expires_at, g.id)))

    def remove(self, name: str) -> bool:
        """Forget the grant named `name`; False if there was none."""
        kept = {gid: g for gid, g in self._grants.items() if g.name != name}
        if len(kept) == len(self._grants):
            return False
        self._commit(kept)
        return True

    def purge_expired(self, now: float) -> tuple[Grant, ...]:
        """Forget every expired grant and return them."""
        expired = tuple(g for g in self._grants.values() if g.is_expired(now))
        if expired:
            self._commit({gid: g for gid, g in self._grants.items() if not g.is_expired(now)})
        return expired

    def _commit(self, grants: dict[str, Grant]) -> None:
        # Write first, then adopt: a failed write leaves memory matching the file.
        document = {"version": FILE_VERSION, "grants": [asdict(g) for g in grants.values()]}
        data = json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        try:
            write_file_atomically(self.path, data, mode=PRIVATE_FILE_MODE)
        except OSError as error:
            reason = error.strerror or error
            raise GrantBookError(f"{self.path}: cannot write ({reason})") from error
        self._grants = grants


_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "name": (str,),
    "code": (str,),
    "redemptions_allowed": (int,),
    "redemptions": (int,),
    "expires_at": (int, float),
}


def _read(path: Path) -> dict[str, Grant]:
    """The grants in the file; a missing file is an empty book, anything odd an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise GrantBookError(f"{path}: cannot read ({error})") from error
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise GrantBookError(f"{path}: not a grant book: {error}") from None
    if not isinstance(document, dict) or document.get("version") != FILE_VERSION:
        raise GrantBookError(f"{path}: not a grant book (version {FILE_VERSION} expected)")
    entries = document.get("grants")
    if not isinstance(entries, list):
        raise GrantBookError(f"{path}: not a grant book: 'grants' must be a list")
    grants: dict[str, Grant] = {}
    for index, entry in enumerate(entries):
        grant = _grant(entry, f"{path}: grants[{index}]")
        if grant.id in grants:
            raise GrantBookError(f"{path}: grants[{index}]: duplicate id {grant.id!r}")
        grants[grant.id] = grant
    return grants


def _grant(entry: Any, where: str) -> Grant:
    if not isinstance(entry, dict) or set(entry) != set(_FIELDS):
        raise GrantBookError(f"{where}: must have exactly the fields {', '.join(_FIELDS)}")
    for key, types in _FIELDS.items():
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise GrantBookError(f"{where}: {key} has the wrong type")
    grant = Grant(**{**entry, "expires_at": min(entry["expires_at"], LATEST_EXPIRY)})
    if grant.redemptions < 0 or grant.redemptions_allowed < 1 or not math.isfinite(
        grant.expires_at
    ):
        raise GrantBookError(f"{where}: impossible counts or expiry")
    return grant
