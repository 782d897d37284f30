"""Shared fixtures: every test runs with a timeout (pyproject) and checks for leaked greenlets."""

from __future__ import annotations

import logging

import gevent
import pytest
import structlog
from greenlet_census import live_greenlets


@pytest.fixture(autouse=True, scope="session")
def _quiet_structlog() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=[
            structlog.processors.add_log_level,
            # plain tracebacks: rich ones (source and locals of every frame) took
            # seconds per crash on a busy machine, holding the hub and the tests' clocks
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            ),
        ],
        cache_logger_on_first_use=False,
    )


@pytest.fixture
def no_leaked_greenlets():
    """Fail the test if it leaves greenlets running."""
    before = {id(g) for g in live_greenlets()}
    yield
    for _ in range(50):
        leaked = [g for g in live_greenlets() if id(g) not in before]
        if not leaked:
            return
        gevent.sleep(0.01)
    pytest.fail(f"{len(leaked)} greenlets left running, for example {leaked[:3]}")
