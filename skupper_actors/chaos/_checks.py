"""Checks across a scenario's fields (names that must exist, parameters a fault kind needs)."""

from __future__ import annotations

from skupper_actors.api.fields import MAX_NAME_LENGTH, SITE_NAME_RE

from .scenario import (
    LINK_FAULTS,
    NETNS_LINK_FAULTS,
    NODE_FAULTS,
    FaultKind,
    FaultSpec,
    Mode,
    Scenario,
    Setup,
)

Problems = list[tuple[str, str]]

#: the parameter each fault kind needs (and no other kind takes)
_PARAMETERS = {
    "latency": FaultKind.LATENCY,
    "rate": FaultKind.BANDWIDTH,
    "period": FaultKind.FLAP,
    "every": FaultKind.FLIP_BITS,
}
_REQUIRED = {FaultKind.LATENCY: "latency", FaultKind.BANDWIDTH: "rate", FaultKind.FLAP: "period"}


def check_scenario(scenario: Scenario) -> Problems:
    problems: Problems = []
    sites = _check_sites(scenario, problems)
    links = _check_links(scenario, sites, problems)
    services = _check_services(scenario, sites, problems)
    _check_traffic(scenario, services, problems)
    for index, fault in enumerate(scenario.faults):
        _check_fault(scenario, f"faults[{index}]", fault, sites, links, problems)
    _check_random(scenario, sites, links, problems)
    routing = scenario.routing
    if routing.hello_interval <= 0:
        problems.append(("routing.hello_interval", "must be greater than 0"))
    if routing.hello_max_age <= routing.hello_interval:
        problems.append(("routing.hello_max_age", "must be greater than hello_interval"))
    if scenario.duration <= 0:
        problems.append(("duration", "must be greater than 0"))
    if scenario.setup is Setup.NAMESPACE:
        if scenario.mode is Mode.NETNS:
            problems.append(("setup", "namespace setup runs in mode 'proxy' only"))
        if scenario.plaintext:
            problems.append(("plaintext", "namespace setup always links over TLS"))
    return problems


def _bad_name(name: str) -> str | None:
    if len(name) > MAX_NAME_LENGTH or not SITE_NAME_RE.fullmatch(name):
        return (
            "must be lowercase letters, digits, '-' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _check_sites(scenario: Scenario, problems: Problems) -> set[str]:
    if not scenario.sites:
        problems.append(("sites", "must name at least one site"))
    seen: set[str] = set()
    for index, site in enumerate(scenario.sites):
        if (why := _bad_name(site.name)) is not None:
            problems.append((f"sites[{index}]", why))
        elif site.name in seen:
            problems.append((f"sites[{index}]", f"duplicate site {site.name!r}"))
        seen.add(site.name)
    return seen


def _check_links(scenario: Scenario, sites: set[str], problems: Problems) -> set[str]:
    pairs: set[frozenset[str]] = set()
    for index, link in enumerate(scenario.links):
        for key, site in (("from", link.source), ("to", link.target)):
            if site not in sites:
                problems.append((f"links[{index}].{key}", f"unknown site {site!r}"))
        if link.source == link.target:
            problems.append((f"links[{index}].to", "a link must join two different sites"))
        pair = frozenset((link.source, link.target))
        if pair in pairs:
            problems.append(
                (f"links[{index}]", f"{link.source} and {link.target} are already linked")
            )
        pairs.add(pair)
    return {link.name for link in scenario.links}


def _check_services(scenario: Scenario, sites: set[str], problems: Problems) -> set[str]:
    names: set[str] = set()
    for index, service in enumerate(scenario.services):
        where = f"services[{index}]"
        if (why := _bad_name(service.name)) is not None:
            problems.append((f"{where}.name", why))
        elif service.name in names:
            problems.append((f"{where}.name", f"duplicate service {service.name!r}"))
        names.add(service.name)
        for key in ("connectors", "listeners"):
            listed: tuple[str, ...] = getattr(service, key)
            if not listed:
                problems.append((f"{where}.{key}", "must name at least one site"))
            if len(set(listed)) != len(listed):
                problems.append((f"{where}.{key}", "names a site twice"))
            for site in listed:
                if site not in sites:
                    problems.append((f"{where}.{key}", f"unknown site {site!r}"))
    return names


def _check_traffic(scenario: Scenario, services: set[str], problems: Problems) -> None:
    traffic = scenario.traffic
    for key in ("streams", "requests", "connections"):
        for index, item in enumerate(getattr(traffic, key)):
            if item.service not in services:
                problems.append(
                    (f"traffic.{key}[{index}].service", f"unknown service {item.service!r}")
                )
    if traffic.idle_timeout <= 0:
        problems.append(("traffic.idle_timeout", "must be greater than 0"))
    if traffic.connect_timeout <= 0:
        problems.append(("traffic.connect_timeout", "must be greater than 0"))


def _kind_problem(scenario: Scenario, kind: FaultKind) -> str | None:
    """Why ``kind`` cannot run in this scenario at all, or None."""
    if kind is FaultKind.CORRUPT_AFTER_TLS and not scenario.plaintext:
        return (
            "corrupt_after_tls needs 'plaintext: true': it stands for corruption after TLS "
            "has decrypted, so it must not be caught by TLS"
        )
    if kind is FaultKind.REPLAY_TOKEN and scenario.setup is not Setup.NAMESPACE:
        return (
            "replay_token needs 'setup: namespace' (sites declared as Skupper v2 resources "
            "and linked with tokens, so that there are used tokens to replay)"
        )
    if kind is FaultKind.FLIP_BITS and scenario.plaintext:
        return "flip_bits needs TLS links (plaintext: false); on plaintext use corrupt_after_tls"
    if scenario.mode is Mode.NETNS and kind in LINK_FAULTS and kind not in NETNS_LINK_FAULTS:
        allowed = ", ".join(sorted(k.value for k in NETNS_LINK_FAULTS))
        return f"{kind.value} needs mode 'proxy'; namespace mode injects only {allowed} on links"
    return None


def _check_fault(
    scenario: Scenario,
    where: str,
    fault: FaultSpec,
    sites: set[str],
    links: set[str],
    problems: Problems,
) -> None:
    if (why := _kind_problem(scenario, fault.kind)) is not None:
        problems.append((f"{where}.kind", why))
    if fault.kind in NODE_FAULTS and fault.target not in sites:
        what = f"{fault.kind.value} needs a known site, not {fault.target!r}"
        problems.append((f"{where}.site", what))
    if fault.kind in LINK_FAULTS and fault.target not in links:
        known = ", ".join(sorted(links)) or "none"
        what = f"{fault.kind.value} needs a known link (one of {known}), not {fault.target!r}"
        problems.append((f"{where}.link", what))
    for parameter, kind in _PARAMETERS.items():
        if getattr(fault, parameter) is not None and fault.kind is not kind:
            problems.append((f"{where}.{parameter}", f"only {kind.value} faults take {parameter}"))
    required = _REQUIRED.get(fault.kind)
    if required is not None and getattr(fault, required) is None:
        problems.append((f"{where}.{required}", f"required for {fault.kind.value} faults"))
    for parameter in ("period", "rate", "every"):
        if getattr(fault, parameter) == 0:
            problems.append((f"{where}.{parameter}", "must be greater than 0"))
    if fault.kind in (FaultKind.RESTART, FaultKind.GARBAGE) and fault.duration is not None:
        problems.append((f"{where}.duration", f"{fault.kind.value} faults are instantaneous"))
    if fault.at >= scenario.duration:
        what = f"at or after the end of the run ({scenario.duration:g} s)"
        problems.append((f"{where}.at", what))


def _check_random(scenario: Scenario, sites: set[str], links: set[str], problems: Problems) -> None:
    spec = scenario.random_faults
    if spec is None:
        return
    where = "random_faults"
    if not spec.kinds:
        problems.append((f"{where}.kinds", "must name at least one fault kind"))
    for kind in spec.kinds:
        if (why := _kind_problem(scenario, kind)) is not None:
            problems.append((f"{where}.kinds", why))
    for site in spec.sites:
        if site not in sites:
            problems.append((f"{where}.sites", f"unknown site {site!r}"))
    for link in spec.links:
        if link not in links:
            problems.append((f"{where}.links", f"unknown link {link!r}"))
    if any(kind in LINK_FAULTS for kind in spec.kinds) and not links:
        problems.append((f"{where}.kinds", "link faults need at least one link"))
    if spec.gap[0] <= 0:
        problems.append((f"{where}.gap", "must be greater than 0"))
    if spec.duration[0] <= 0:
        problems.append((f"{where}.duration", "must be greater than 0"))
    if spec.period[0] <= 0 or spec.rate[0] <= 0 or spec.every[0] <= 0:
        problems.append((where, "period, rate and every must be greater than 0"))
