"""Fixtures for the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import Cli, short_home


@pytest.fixture
def home() -> Iterator[Path]:
    yield from short_home()


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)
