"""AMQP 1.0 messaging across sites, with proton's own clients (issue 15).

Three sites in a line, a - b - c (cost 1 per link), each with a client endpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading

import pytest
from harness import Mesh, free_port, wait_until
from messaging import ClientThread, Sender, line_mesh, receive_in_thread, url, wait_address
from proton import Delivery, Message, Timeout
from proton.utils import BlockingConnection, LinkDetached

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    mesh = line_mesh(tmp_path_factory.mktemp("line"), ["a", "b", "c"])
    yield mesh
    mesh.close()


def test_request_response_across_the_line_with_a_dynamic_reply_address(line) -> None:
    """A responder at c answers to each request's reply_to, through an anonymous sender."""
    responder = BlockingConnection(url(line, "c"), timeout=10)
    requests = responder.create_receiver("service", credit=10)
    replies = responder.create_sender(None)  # anonymous relay: each reply names its `to`
    stop = threading.Event()
    failures: list[Exception] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                request = requests.receive(timeout=0.5)
            except Exception:
                continue
            requests.accept()
            reply = Message(
                address=request.reply_to,
                body=request.body.upper(),
                correlation_id=request.correlation_id,
            )
            try:
                replies.send(reply, timeout=10)
            except Exception as error:
                failures.append(error)

    wait_address(line, "a", "service", {"c"})
    requester = BlockingConnection(url(line, "a"), timeout=10)
    inbox = requester.create_receiver(None, dynamic=True, credit=10)
    reply_to = inbox.link.remote_source.address
    assert reply_to and reply_to.startswith("_skupper/dynamic/a/")
    sender = requester.create_sender("service")
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        for number in range(5):
            sender.send(Message(body=f"ping {number}", reply_to=reply_to, correlation_id=number))
            reply = inbox.receive(timeout=10)
            inbox.accept()
            assert (reply.body, reply.correlation_id) == (f"PING {number}", number)
    finally:
        requester.close()
        stop.set()
        server.join(15)
        responder.close()
    assert not failures


def test_a_sender_gets_credit_only_once_its_address_has_a_receiver(line) -> None:
    conn = BlockingConnection(url(line, "a"), timeout=10)
    try:
        sender = conn.create_sender("later")
        with pytest.raises(Timeout):
            conn.wait(lambda: sender.link.credit > 0, timeout=1.0)
        receiving = BlockingConnection(url(line, "c"), timeout=10)
        receiving.create_receiver("later", credit=1)
        conn.wait(lambda: sender.link.credit > 0, timeout=15)
        receiving.close()
    finally:
        conn.close()


def test_a_receiver_detaching_releases_its_unsettled_deliveries(line) -> None:
    receiving = BlockingConnection(url(line, "c"), timeout=10)
    receiver = receiving.create_receiver("detach", credit=10)
    wait_address(line, "a", "detach", {"c"})
    sender = Sender(url(line, "a"), "detach", 10, lambda i: Message(body=i))
    sending = ClientThread(sender)
    sending.start()
    got = [receiver.receive(timeout=10).body for _ in range(10)]  # none settled
    assert sorted(got) == list(range(10))
    receiver.close()
    assert sender.done.wait(15), sender.outcomes
    sending.stop()
    receiving.close()
    assert sender.outcomes == {"accepted": 0, "rejected": 0, "released": 10, "modified": 0}


def test_outcomes_travel_back_as_the_receiver_said(line) -> None:
    """rejected and modified, from a receiver at c, reach the sender at a unchanged."""

    def decide(message: Message) -> object:
        return Delivery.REJECTED if message.body % 2 else Delivery.MODIFIED

    _, thread = receive_in_thread(url(line, "c"), "judge", credit=10, decide=decide)
    wait_address(line, "a", "judge", {"c"})
    sender = Sender(url(line, "a"), "judge", 10, lambda i: Message(body=i))
    sending = ClientThread(sender)
    sending.start()
    assert sender.done.wait(15), sender.outcomes
    sending.stop()
    thread.stop()
    assert sender.outcomes == {"accepted": 0, "rejected": 5, "released": 0, "modified": 5}


def test_a_reserved_address_is_refused_with_a_condition(line) -> None:
    conn = BlockingConnection(url(line, "a"), timeout=10)
    try:
        for address in (
            "_local/x",
            "_topo/0/a/temp",
            "_skupper/router/control",
            "_skupper/stream/a/1/2",
        ):
            with pytest.raises(LinkDetached) as refused:
                conn.create_receiver(address)
            assert "amqp:unauthorized-access" in str(refused.value), refused.value
            with pytest.raises(LinkDetached):
                conn.create_sender(address)
        conn.create_sender("fine")  # the connection itself is unharmed
    finally:
        conn.close()


def test_garbage_closes_that_client_only(line) -> None:
    receiving = BlockingConnection(url(line, "c"), timeout=10)
    receiver = receiving.create_receiver("steady", credit=10)
    wait_address(line, "a", "steady", {"c"})
    port = int(url(line, "a").rsplit(":", 1)[1])
    for garbage in (
        b"GET / HTTP/1.1\r\n\r\n",
        b"AMQP\x00\x01\x00\x00" + b"\xff" * 64,
        b"AMQP\x03\x01\x00\x00" + b"\x00\x00\x00\x10\x02\x01\x00\x00" + b"\xee" * 8,
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(garbage)
            raw.settimeout(10)  # a client that never opens is cut off after 5 s
            try:
                while raw.recv(4096):
                    pass  # the router answers what it can, then hangs up
            except ConnectionResetError:
                pass
    sending = BlockingConnection(url(line, "a"), timeout=10)
    sender = sending.create_sender("steady")
    delivery_done = threading.Event()

    def take() -> None:
        receiver.receive(timeout=10)
        receiver.accept()
        delivery_done.set()
        with contextlib.suppress(Timeout):
            receiving.wait(lambda: False, timeout=2)

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    sender.send(Message(body="still here"), timeout=10)
    taker.join(5)
    assert delivery_done.is_set()
    sending.close()
    receiving.close()
    assert line["a"].alive


def test_anycast_split_between_two_sites_by_cost_and_outstanding(line) -> None:
    """10,000 messages from a to receivers at b (cost 1) and c (cost 2): balanced."""
    at_b, thread_b = receive_in_thread(url(line, "b"), "work", credit=50)
    at_c, thread_c = receive_in_thread(url(line, "c"), "work", credit=50)
    wait_address(line, "a", "work", {"b", "c"})
    sender = Sender(url(line, "a"), "work", 10_000, lambda i: Message(body=i))
    sending = ClientThread(sender)
    sending.start()
    assert sender.done.wait(90), f"only {sender.outcomes} of 10000 settled"
    sending.stop()
    wait_until(lambda: len(at_b.messages) + len(at_c.messages) == 10_000, 10, what="all received")
    thread_b.stop()
    thread_c.stop()
    assert sender.outcomes["accepted"] == 10_000
    received = sorted(m.body for m in at_b.messages + at_c.messages)
    assert received == list(range(10_000))  # each once
    # both sites take a share; the nearer one (b) at least as much as c
    assert len(at_b.messages) >= len(at_c.messages) > 500, (len(at_b.messages), len(at_c.messages))

    # the management endpoint counts them per address, at each end
    def at(site: str):
        return {m.address: m for m in line[site].status().messaging}["work"]

    at_a = at("a")
    assert (at_a.distribution, at_a.remote) == ("balanced", ("b", "c"))
    assert at_a.delivered_in == at_a.accepted == 10_000
    assert at("c").delivered_out == len(at_c.messages)


def test_closest_goes_to_the_nearest_site_only(line) -> None:
    at_b, thread_b = receive_in_thread(url(line, "b"), "closest/near", credit=50)
    at_c, thread_c = receive_in_thread(url(line, "c"), "closest/near", credit=50)
    wait_address(line, "a", "closest/near", {"b", "c"})
    sender = Sender(url(line, "a"), "closest/near", 200, lambda i: Message(body=i))
    sending = ClientThread(sender)
    sending.start()
    assert sender.done.wait(30), sender.outcomes
    sending.stop()
    thread_b.stop()
    thread_c.stop()
    assert (len(at_b.messages), len(at_c.messages)) == (200, 0)


def test_multicast_every_receiver_gets_every_message_once(line) -> None:
    receivers = [receive_in_thread(url(line, site), "mc/news", credit=200) for site in "abc"]
    for site in "abc":
        wait_address(line, "a", "mc/news", {"b", "c"} if site == "a" else set())
    wait_address(line, "b", "mc/news", {"a", "c"})
    sender = Sender(url(line, "a"), "mc/news", 300, lambda i: Message(body=i))
    sending = ClientThread(sender)
    sending.start()
    assert sender.done.wait(30), sender.outcomes
    sending.stop()
    for receiver, _ in receivers:
        wait_until(lambda r=receiver: len(r.messages) >= 300, 15, what="every message")
    for receiver, thread in receivers:
        thread.stop()
        assert sorted(m.body for m in receiver.messages) == list(range(300))


@pytest.mark.timeout(180)
def test_a_50_mib_message_arrives_intact(line) -> None:
    """Cut-through across two hops. Proton's Python client is the slow part here (about
    25 s for 50 MiB even to a receiver at the same site; the routers sit mostly idle)."""
    body = hashlib.sha256(b"seed").digest() * (50 * (1 << 20) // 32)
    receiver, thread = receive_in_thread(url(line, "c"), "big", credit=1)
    wait_address(line, "a", "big", {"c"})
    conn = BlockingConnection(url(line, "a"), timeout=150)
    try:
        conn.create_sender("big").send(Message(body=body), timeout=150)
    finally:
        conn.close()
    wait_until(lambda: len(receiver.messages) == 1, 10, what="the big message")
    thread.stop()
    assert hashlib.sha256(receiver.messages[0].body).digest() == hashlib.sha256(body).digest()


def test_a_tls_endpoint_with_and_without_a_client_certificate(tmp_path) -> None:
    """Site a's endpoint speaks TLS with its site certificate; a client may present a
    certificate from the site CA, or none; a plain client is turned away."""
    from proton import SSLDomain

    mesh = Mesh(tmp_path, ["a"])
    mesh["a"].config["amqp"] = {"port": free_port(), "tls": True}
    mesh.start()
    try:
        folder = mesh.certs.site_folder("a")
        address = f"amqps://127.0.0.1:{mesh['a'].config['amqp']['port']}"
        for with_certificate in (False, True):
            domain = SSLDomain(SSLDomain.MODE_CLIENT)
            domain.set_trusted_ca_db(str(folder / "ca.crt"))
            domain.set_peer_authentication(SSLDomain.VERIFY_PEER)
            if with_certificate:
                domain.set_credentials(str(folder / "tls.crt"), str(folder / "tls.key"), None)
            conn = BlockingConnection(address, timeout=10, ssl_domain=domain)
            inbox = conn.create_receiver("tls-check", credit=1)
            conn.create_sender(None)  # an anonymous sender is fine too
            assert inbox.link.remote_source.address == "tls-check"
            conn.close()
        with pytest.raises(Exception):  # noqa: B017 - proton raises its own kinds here
            BlockingConnection(address.replace("amqps", "amqp"), timeout=5).create_sender("x")
        assert mesh["a"].alive
    finally:
        mesh.close()


def test_a_router_access_role_normal_opens_the_endpoint_in_a_namespace(sites) -> None:
    """Namespace mode: RouterAccess role `normal` (skupper-router's name for a client
    listener) turns the endpoint on; `settings: {amqp-tls: "false"}` makes it plain."""
    site = sites("solo")
    port = free_port()
    site.write(
        "RouterAccess",
        "clients",
        {"roles": [{"name": "normal", "port": port}], "settings": {"amqp-tls": "false"}},
    )
    site.start()

    def attached() -> bool:
        try:
            conn = BlockingConnection(f"amqp://127.0.0.1:{port}", timeout=2)
        except Exception:
            return False
        conn.create_receiver("ns-check", credit=1)
        conn.close()
        return True

    wait_until(attached, 20, interval=0.2, what="the endpoint of RouterAccess clients")
