"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sites import SiteProcess


@pytest.fixture
def sites(tmp_path) -> Iterator[Callable[..., SiteProcess]]:
    """Makes sites in the test's folder (not started); stops every one at the end."""
    started: list[SiteProcess] = []

    def make(name: str, link_access: bool = False) -> SiteProcess:
        site = SiteProcess(tmp_path, name, link_access=link_access)
        started.append(site)
        return site

    yield make
    for site in started:
        site.stop()
