"""AMQP 1.0 messaging across sites, with proton's own clients (issue 15)."""

from __future__ import annotations

import pytest
from messaging import line_mesh, url, wait_address
from proton import Message
from proton.utils import BlockingConnection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def line(tmp_path):
    mesh = line_mesh(tmp_path, ["a", "b", "c"])
    yield mesh
    mesh.close()


def test_send_across_the_line_settled_end_to_end(line) -> None:
    receiver_conn = BlockingConnection(url(line, "c"), timeout=10)
    receiver = receiver_conn.create_receiver("orders", credit=10)
    wait_address(line, "a", "orders", {"c"})
    sender_conn = BlockingConnection(url(line, "a"), timeout=10)
    sender = sender_conn.create_sender("orders")
    sender.send(Message(body="hello", subject="s1"))  # waits for the end-to-end outcome
    message = receiver.receive(timeout=10)
    assert message.body == "hello"
    receiver.accept()
    sender_conn.close()
    receiver_conn.close()
