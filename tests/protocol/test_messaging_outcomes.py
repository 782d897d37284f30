"""The outcome messages egress routers send back to ingress routers (outcomes.py)."""

from __future__ import annotations

import pytest

from skupper_actors.protocol.amqp.client_events import (
    OUTCOME_ACCEPTED,
    OUTCOME_RELEASED,
    REJECTED,
    Outcome,
)
from skupper_actors.protocol.messaging.outcomes import (
    OUTCOME_BATCH,
    OutcomeBatches,
    read_outcomes,
    released_batches,
    released_body,
)

pytestmark = pytest.mark.timeout(10)
REJECTED_BAD = Outcome(state=REJECTED, condition="amqp:bad", description="no")


def test_batches_per_router_split_past_the_limit_and_read_back_whole() -> None:
    batches = OutcomeBatches()
    assert batches.add("r1", "s-0", OUTCOME_ACCEPTED)  # the first: arrange a take
    assert not batches.add("r2", "t-0", OUTCOME_RELEASED)
    for n in range(1, OUTCOME_BATCH + 5):
        batches.add("r1", f"s-{n}", OUTCOME_ACCEPTED)
    batches.add("r1", "s-x", REJECTED_BAD)
    sent = list(batches.take())
    assert [router for router, _ in sent] == ["r1", "r1", "r2"]
    assert len(sent[0][1]["a"]) == OUTCOME_BATCH and len(sent[1][1]["a"]) == 5
    got = [pair for _, body in sent for pair in read_outcomes(body)]
    assert len(got) == OUTCOME_BATCH + 7
    assert ("s-x", REJECTED_BAD) in got and ("t-0", OUTCOME_RELEASED) in got
    assert list(batches.take()) == []
    assert batches.add("r1", "again", OUTCOME_ACCEPTED)


def test_the_first_shape_and_malformed_parts() -> None:
    assert list(read_outcomes({"k": "mo", "s": "s-1", "o": OUTCOME_ACCEPTED.state})) == [
        ("s-1", OUTCOME_ACCEPTED)
    ]
    assert list(read_outcomes(released_body("s-2"))) == [("s-2", OUTCOME_RELEASED)]
    odd = {"k": "mo", "a": ["ok", 7, None], "r": "not a list", "b": [{"s": 1}, "x", {"s": "y"}]}
    assert list(read_outcomes(odd)) == [("ok", OUTCOME_ACCEPTED)]
    flood = {"k": "mo", "a": [f"s-{n}" for n in range(OUTCOME_BATCH * 3)]}
    assert len(list(read_outcomes(flood))) == OUTCOME_BATCH  # a peer's flood is cut short


def test_released_batches_release_each_stream_once_in_few_messages() -> None:
    """A lost connection's recent streams (thousands) leave as one message per ingress
    router and OUTCOME_BATCH streams, each read back as released."""
    streams = [(f"s-{n}", "r1") for n in range(2 * OUTCOME_BATCH + 50)] + [("t-0", "r2")]
    messages = list(released_batches(streams))
    assert [router for router, _ in messages] == ["r1", "r1", "r1", "r2"]
    back = [(router, pair) for router, body in messages for pair in read_outcomes(body)]
    assert back == [(router, (stream_id, OUTCOME_RELEASED)) for stream_id, router in streams]
