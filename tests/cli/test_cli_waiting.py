"""`--wait`: the status file the node writes decides; a fake clock makes timeouts instant."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from skupper_actors.api import (
    CONFIGURED,
    MATCHED,
    Listener,
    ListenerSpec,
    Metadata,
    Namespace,
    Resource,
    with_condition,
    write_status,
)
from skupper_actors.cli.context import Progress
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.cli.waiting import wait_for_status

NOW = 1_800_000_000.0


class FakeClock:
    """monotonic() and sleep(); each sleep may run a step (the node writing a status)."""

    def __init__(self, steps: dict[int, Callable[[], None]] | None = None) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.steps = steps or {}

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        if self.sleeps in self.steps:
            self.steps[self.sleeps]()


@pytest.fixture
def ns(tmp_path: Path) -> Namespace:
    return Namespace("west", tmp_path / "west").ensure_layout()


def listener(port: int = 8080) -> Listener:
    return Listener(metadata=Metadata(name="web"), spec=ListenerSpec(routing_key="web", port=port))


def reported(resource: Resource, *conditions: tuple[str, str, str, str]) -> Resource:
    for condition_type, state, reason, message in conditions:
        resource = with_condition(
            resource, condition_type, state, reason=reason, message=message, now=NOW  # type: ignore[arg-type]
        )
    return resource


CONFIGURED_OK = (CONFIGURED, "True", "Ready", "OK")
NOT_MATCHED = (MATCHED, "False", "Pending", "No matching connectors")


def wait(ns: Namespace, resource: Resource, mode: str, clock: FakeClock, timeout: float = 5):
    return wait_for_status(
        ns, resource, mode, timeout, monotonic=clock.monotonic, sleep=clock.sleep  # type: ignore[arg-type]
    )


def test_configured_returns_the_reported_resource(ns: Namespace) -> None:
    status = reported(listener(), CONFIGURED_OK, NOT_MATCHED)
    write_status(ns, status)
    clock = FakeClock()
    assert wait(ns, listener(), "configured", clock) == status
    assert clock.sleeps == 0


def test_ready_times_out_with_the_pending_conditions_message(ns: Namespace) -> None:
    write_status(ns, reported(listener(), CONFIGURED_OK, NOT_MATCHED))
    clock = FakeClock()
    with pytest.raises(CliError) as caught:
        wait(ns, listener(), "ready", clock, timeout=3)
    assert caught.value.code == ExitCode.TIMEOUT
    assert caught.value.message == (
        "Listener 'web' not ready after 3s: No matching connectors: waiting for a connector "
        "with routing key 'web' at a site of the network"
    )
    assert clock.now >= 3


def test_progress_is_told_each_state_and_prints_one_line_per_change_off_a_terminal(
    ns: Namespace,
) -> None:
    configured = reported(listener(), CONFIGURED_OK)
    ready = reported(listener(), CONFIGURED_OK, (MATCHED, "True", "Ready", "OK"))
    unmatched = reported(listener(), CONFIGURED_OK, NOT_MATCHED)
    clock = FakeClock({3: lambda: write_status(ns, unmatched), 12: lambda: write_status(ns, ready)})
    write_status(ns, configured)
    lines: list[str] = []
    progress = Progress("Waiting for Listener 'web' to be ready", lines.append,
                        monotonic=clock.monotonic)
    wait_for_status(ns, listener(), "ready", 5, progress=progress.update,
                    monotonic=clock.monotonic, sleep=clock.sleep)
    # nothing in the first second; then the state, once, until it changes
    assert lines == [
        "Waiting for Listener 'web' to be ready (No matching connectors: waiting for a "
        "connector with routing key 'web' at a site of the network)",
    ]


def test_progress_says_nothing_for_short_waits() -> None:
    clock = FakeClock()
    lines: list[str] = []
    progress = Progress("Waiting", lines.append, monotonic=clock.monotonic)
    progress.update("a")
    clock.sleep(0.5)
    progress.update("b")
    assert lines == []
    clock.sleep(0.6)
    progress.update("b")
    progress.update("b")
    progress.update("c")
    assert lines == ["Waiting (b)", "Waiting (c)"]


def test_an_error_condition_fails_at_once_with_its_message(ns: Namespace) -> None:
    failed = (CONFIGURED, "False", "Error", "port 8080: address already in use")
    write_status(ns, reported(listener(), failed))
    for mode in ("configured", "ready"):
        with pytest.raises(CliError) as caught:
            wait(ns, listener(), mode, FakeClock())
        assert caught.value.code == ExitCode.FAILED
        assert caught.value.message == "Listener 'web': port 8080: address already in use"


def test_a_status_for_the_old_spec_is_not_believed(ns: Namespace) -> None:
    write_status(ns, reported(listener(port=8080), CONFIGURED_OK))
    with pytest.raises(CliError) as caught:
        wait(ns, listener(port=9090), "configured", FakeClock(), timeout=2)
    assert caught.value.code == ExitCode.TIMEOUT
    assert "the node has not reported the change yet" in caught.value.message


def test_waits_until_the_node_writes_the_status(ns: Namespace) -> None:
    ready = reported(listener(), CONFIGURED_OK, (MATCHED, "True", "Ready", "OK"))
    clock = FakeClock({3: lambda: write_status(ns, reported(listener(), CONFIGURED_OK)),
                       7: lambda: write_status(ns, ready)})
    assert wait(ns, listener(), "ready", clock) == ready
    assert clock.sleeps == 7


def test_no_status_at_all_says_so(ns: Namespace) -> None:
    with pytest.raises(CliError) as caught:
        wait(ns, listener(), "configured", FakeClock(), timeout=1)
    assert caught.value.message == "Listener 'web' not configured after 1s: no status reported yet"


def test_an_extra_predicate_must_hold_too(ns: Namespace) -> None:
    write_status(ns, reported(listener(), CONFIGURED_OK, (MATCHED, "True", "Ready", "OK")))
    clock = FakeClock()
    with pytest.raises(CliError) as caught:
        wait_for_status(
            ns, listener(), "ready", 1, also=lambda r: False,
            monotonic=clock.monotonic, sleep=clock.sleep,
        )
    assert caught.value.code == ExitCode.TIMEOUT
    assert caught.value.message == "Listener 'web' not ready after 1s: OK"
