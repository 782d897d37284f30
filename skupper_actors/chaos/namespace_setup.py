"""Namespace setup: sites declared as Skupper v2 resources, linked with real tokens.

Each site is a namespace folder (``skupper-node run -n``) with its own CA. For a link
``s -> t`` the harness declares an AccessGrant at ``t``, redeems its token at ``t``'s grant
server in the name of ``s``, and writes the credentials and a Link resource into ``s``'s
folder, with the endpoint moved to the link's fault proxy. The token is then used up,
which is what the ``replay_token`` fault replays.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gevent
import yaml

from skupper_actors.api import (
    AccessToken,
    Namespace,
    Resource,
    dump_resources,
    resource_from_document,
)
from skupper_actors.security.redeem import Redemption, TokenRefused, redeem

from .nodes import NodeFailed
from .scenario import Scenario

API = "skupper.io/v2alpha1"
REPLAY_GRANT = "chaos-replay"
FIRST_USER = "chaos-first-use"


class TokenReplayAccepted(RuntimeError):
    """A token that was already used up was accepted again."""


def _resource(kind: str, name: str, spec: dict[str, Any]) -> Resource:
    document = {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec}
    return resource_from_document(document, source=f"chaos {kind}/{name}")


def _redeem(token: AccessToken, site: str) -> Redemption:
    """``redeem`` (blocking http.client) in gevent's thread pool, so the hub keeps going."""

    def attempt() -> Redemption | TokenRefused:
        try:
            return redeem(token, site)
        except TokenRefused as refused:  # returned, not raised: the pool would print it
            return refused

    result = gevent.get_hub().threadpool.apply(attempt)
    if isinstance(result, TokenRefused):
        raise result
    return result


class NamespaceSites:
    """Writes the namespace folders, links them with tokens, replays used tokens."""

    def __init__(self, scenario: Scenario, home: Path) -> None:
        self.scenario = scenario
        self.home = home
        #: site -> the token last used to link to it (or the dedicated replay grant's)
        self.used_tokens: dict[str, AccessToken] = {}

    def namespace(self, site: str) -> Namespace:
        return Namespace(site, self.home / "namespaces" / site)

    def runtime_dir(self, site: str) -> Path:
        return self.namespace(site).runtime_dir

    def write_site(
        self,
        site: str,
        *,
        inter_router_port: int,
        grant_port: int,
        listeners: Mapping[str, int],
        connectors: Mapping[str, tuple[str, int]],
        replay_target: bool,
    ) -> None:
        """Declare the site: Site, RouterAccess, listeners, connectors and its grants."""
        ns = self.namespace(site).ensure_layout()
        routing = self.scenario.routing
        resources = [
            _resource(
                "Site",
                site,
                {
                    "linkAccess": "default",
                    "settings": {
                        "grant-server-port": str(grant_port),
                        "hello-interval": f"{routing.hello_interval:g}",
                        "hello-max-age": f"{routing.hello_max_age:g}",
                    },
                },
            ),
            _resource(
                "RouterAccess",
                "skupper-router",
                {
                    "roles": [{"name": "inter-router", "port": inter_router_port}],
                    "bindHost": "127.0.0.1",
                },
            ),
        ]
        for service, port in listeners.items():
            resources.append(
                _resource(
                    "Listener", service, {"routingKey": service, "host": "127.0.0.1", "port": port}
                )
            )
        for service, (host, port) in connectors.items():
            resources.append(
                _resource("Connector", service, {"routingKey": service, "host": host, "port": port})
            )
        for link in self.scenario.links:
            if link.target == site:
                resources.append(self._grant(f"link-from-{link.source}"))
        if replay_target:
            resources.append(self._grant(REPLAY_GRANT))
        (ns.resources_dir / "chaos-site.yaml").write_text(dump_resources(resources))

    def _grant(self, name: str) -> Resource:
        return _resource("AccessGrant", name, {"redemptionsAllowed": 1, "expirationWindow": "24h"})

    def token(self, site: str, grant: str, timeout: float = 20.0) -> AccessToken:
        """The token of ``grant`` at ``site``, once the node has published the grant's status."""
        path = self.namespace(site).status_path("AccessGrant", grant)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = (yaml.safe_load(path.read_text()) or {}).get("status") or {}
            except (OSError, yaml.YAMLError):
                status = {}
            if status.get("url") and status.get("code") and status.get("ca"):
                document = {
                    "apiVersion": API,
                    "kind": "AccessToken",
                    "metadata": {"name": f"{site}-{grant}"},
                    "spec": {"url": status["url"], "code": status["code"], "ca": status["ca"]},
                }
                token = resource_from_document(document, source=str(path))
                assert isinstance(token, AccessToken)
                return token
            gevent.sleep(0.1)
        raise NodeFailed(f"site {site} published no token for grant {grant} in {timeout:g} s")

    def link(self, source: str, target: str, *, cost: int, port: int) -> None:
        """Redeem ``target``'s grant for ``source``; declare the Link through ``port``."""
        token = self.token(target, f"link-from-{source}")
        try:
            redemption = _redeem(token, source)
        except TokenRefused as error:
            raise NodeFailed(f"linking {source} to {target}: {error}") from None
        self.used_tokens[target] = token
        name = f"to-{target}"
        ns = self.namespace(source)
        redemption.credentials.save(ns.certs_dir / name)
        link = _resource(
            "Link",
            name,
            {
                "endpoints": [{"name": "inter-router", "host": "127.0.0.1", "port": str(port)}],
                "tlsCredentials": name,
                "cost": cost,
            },
        )
        (ns.resources_dir / f"chaos-link-{name}.yaml").write_text(dump_resources([link]))

    def use_replay_grant(self, site: str) -> None:
        """Redeem the dedicated grant once, so that its token is used up."""
        token = self.token(site, REPLAY_GRANT)
        try:
            _redeem(token, FIRST_USER)
        except TokenRefused as error:
            raise NodeFailed(f"first use of {site}'s replay grant: {error}") from None
        self.used_tokens.setdefault(site, token)

    def replay(self, site: str) -> str:
        """Redeem ``site``'s used token again; return the refusal, raise if it is accepted."""
        token = self.used_tokens.get(site)
        if token is None:
            raise NodeFailed(f"no used token for {site} to replay")
        try:
            _redeem(token, "chaos-replayer")
        except TokenRefused as error:
            return str(error)
        raise TokenReplayAccepted(f"{site} accepted a used token again ({token.spec.url})")
