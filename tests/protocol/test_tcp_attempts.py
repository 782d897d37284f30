"""The ingress's attempt policy (protocol.tcp.attempts)."""

from __future__ import annotations

import pytest

from skupper_actors.protocol.tcp import DESTINATION_REFUSALS, MAX_ATTEMPTS, Attempts, GiveUp, Retry


def test_a_destination_refusal_excludes_that_router_and_retries_at_once() -> None:
    attempts = Attempts()
    first = attempts.start("b")
    assert attempts.refused(first, "skupper:connect-failed") == Retry(delay=0.0)
    assert attempts.excluded == frozenset({"b"})


def test_a_lost_path_may_try_the_same_router_after_a_pause() -> None:
    attempts = Attempts()
    first = attempts.start("b")
    decision = attempts.refused(first, "skupper:link-lost")
    assert isinstance(decision, Retry) and decision.delay > 0
    assert attempts.excluded == frozenset()


def test_at_most_max_attempts_then_a_reset() -> None:
    attempts = Attempts()
    for number in range(1, MAX_ATTEMPTS + 1):
        assert attempts.may_start()
        assert attempts.start(f"r{number}") == number
        decision = attempts.refused(number, "skupper:no-connector")
    assert decision == GiveUp(reset=True)
    assert not attempts.may_start()
    assert attempts.tried == tuple(f"r{n}" for n in range(1, MAX_ATTEMPTS + 1))
    with pytest.raises(RuntimeError):
        attempts.start("again")


def test_a_late_refusal_of_an_earlier_attempt_is_ignored() -> None:
    attempts = Attempts()
    first = attempts.start("b")
    attempts.refused(first, "skupper:no-answer")
    second = attempts.start("c")
    assert attempts.refused(first, "skupper:path-lost") is None  # attempt 1 is over
    assert attempts.excluded == frozenset({"b"})
    assert attempts.current == second


def test_no_destination_closes_when_none_was_tried_else_resets() -> None:
    assert Attempts().no_destination() == GiveUp(reset=False)
    attempts = Attempts()
    attempts.refused(attempts.start("b"), "skupper:busy")
    assert attempts.no_destination() == GiveUp(reset=True)


def test_every_destination_refusal_is_known() -> None:
    assert {
        "skupper:connect-failed",
        "skupper:no-connector",
        "skupper:busy",
        "skupper:no-answer",
    } == DESTINATION_REFUSALS


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Attempts(0)
