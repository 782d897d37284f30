"""What a resource needs to be applied, beyond what its schema checks: one line, or None.

The schema checks a resource alone; these checks know what applying it does with the
values: a token's name (by default its grant's) becomes a folder under `runtime/certs`
next to the site's own CA and server credentials, a link's credentials are read from such
a folder, a grant's window becomes a date. The controller leaves a resource that fails
here out of the running configuration and marks it with an error condition; the CLI
refuses it before writing.
"""

from __future__ import annotations

from marshmallow import ValidationError

from skupper_actors.api import AccessGrant, AccessToken, Link, Resource
from skupper_actors.api.fields import dns_label
from skupper_actors.security.grants import check_expiration_window
from skupper_actors.security.sitecerts import SITE_CA, SITE_SERVER

#: credential folder names the site keeps for itself: no resource may read or write them
RESERVED_CREDENTIALS = frozenset({SITE_CA, SITE_SERVER})


def is_resource_name(text: str) -> bool:
    """True for a name a resource may have (a DNS label: never '', '.', '..' or a path)."""
    try:
        dns_label(text)
    except ValidationError:
        return False
    return True


def apply_problem(resource: Resource) -> str | None:
    """Why `resource` cannot be applied, in one line; None if it can."""
    match resource:
        case AccessGrant():
            if resource.name in RESERVED_CREDENTIALS:  # its tokens are named after it
                return _reserved(resource.name, "an AccessGrant's name")
            try:
                check_expiration_window(resource.spec.expiration_window)
            except ValueError as error:
                return str(error)
        case AccessToken():
            if resource.name in RESERVED_CREDENTIALS:
                return _reserved(resource.name, "an AccessToken's name")
        case Link():
            credentials = resource.spec.tls_credentials or resource.name
            if credentials in RESERVED_CREDENTIALS:
                what = "tlsCredentials" if resource.spec.tls_credentials else "a Link's name"
                return _reserved(credentials, what)
    return None


def _reserved(name: str, what: str) -> str:
    return (
        f"{what} {name!r} is reserved for the site's own certificates "
        f"(reserved: {', '.join(sorted(RESERVED_CREDENTIALS))})"
    )
