"""Redeeming an AccessToken at the issuing site's grant server (blocking: run in a thread)."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from skupper_actors.api import AccessToken, Link, resource_from_document
from skupper_actors.security import Credentials


class TokenRefused(Exception):
    """The grant server said no (or could not be reached); the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Redemption:
    site: str
    credentials: Credentials
    links: tuple[Link, ...]


def redeem(token: AccessToken, site_name: str, timeout: float = 10.0) -> Redemption:
    url = urlsplit(token.spec.url)
    if url.scheme != "https" or not url.hostname:
        raise TokenRefused(f"token url {token.spec.url!r} is not an https URL")
    context = ssl.create_default_context(cadata=token.spec.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    connection = http.client.HTTPSConnection(
        url.hostname, url.port or 443, context=context, timeout=timeout
    )
    try:
        connection.request(
            "POST",
            url.path or "/",
            body=token.spec.code.encode(),
            headers={"skupper-site-name": site_name, "Content-Type": "text/plain"},
        )
        response = connection.getresponse()
        body = response.read(1 << 20)
    except (OSError, http.client.HTTPException) as error:
        raise TokenRefused(f"grant server {url.netloc} unreachable: {error}") from None
    finally:
        connection.close()
    if response.status != 200:
        reason = body.decode(errors="replace").strip() or response.reason
        raise TokenRefused(f"grant server answered {response.status}: {reason}")
    try:
        document = json.loads(body)
        creds = document["credentials"]
        credentials = Credentials(
            creds["tls.crt"].encode(), creds["tls.key"].encode(), creds["ca.crt"].encode()
        )
        credentials.check()
        links = tuple(
            resource_from_document(doc, source=token.spec.url, index=i)
            for i, doc in enumerate(document["links"])
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise TokenRefused(f"grant server sent an unusable answer: {error}") from None
    found = tuple(link for link in links if isinstance(link, Link))
    if not found or len(found) != len(links):
        raise TokenRefused("grant server sent no link")
    return Redemption(site=str(document.get("site", "")), credentials=credentials, links=found)
