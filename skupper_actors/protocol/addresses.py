"""Every address and AMQP property convention the routers speak, in one place.

Three families: the router-to-router addresses (control, router messages, listener
announcements) with the properties a router puts in its AMQP open; the TCP adaptor's
stream mapping (a stream's reply address and its application properties); and the
address prefix that asks for multicast. A name says which family it belongs to, so the
routing protocol's version and the stream mapping's version cannot be confused.
"""

from __future__ import annotations

# --- inter-router addresses --------------------------------------------------------------

#: Prefix of every address a router owns; `ROUTER_PREFIX + router id` reaches one router.
ROUTER_PREFIX = "_skupper/router/"
#: The link-state routing protocol's messages (HELLO, RA, LSU, MAU ...) between neighbours.
CONTROL_ADDRESS = f"{ROUTER_PREFIX}control"
#: Messages routed to one router by id (acknowledgements travelling back hop by hop).
MESSAGE_ADDRESS = f"{ROUTER_PREFIX}messages"
#: A listener's routing key announced as `LISTENER_PREFIX + key` (who may open streams).
LISTENER_PREFIX = "_skupper/listener/"
#: An address starting with this is delivered to every destination.
MULTICAST_PREFIX = "mc/"

# --- the routing protocol, and the AMQP open properties that carry it --------------------

#: Version of the routing protocol: each control message's `pv` and the open's property.
ROUTING_PROTOCOL_VERSION = 1
PROP_ROUTER_ID = "skupper.router-id"
PROP_INSTANCE = "skupper.instance"
#: Open property: the routing protocol version the router speaks.
PROP_ROUTING_VERSION = "skupper.pv"
PROP_COST = "skupper.cost"

# --- the TCP stream mapping: reply addresses and application properties -----------------

#: Version of the TCP-over-AMQP stream mapping (skupper-router's `V: 1`).
STREAM_MAPPING_VERSION = 1
#: A stream's reverse direction is sent to `STREAM_REPLY_PREFIX + stream id`.
STREAM_REPLY_PREFIX = "_skupper/stream/"
#: Application property: the stream mapping version.
PROP_MAPPING_VERSION = "V"
PROP_STREAM = "x-skupper-stream"
PROP_SOURCE = "x-skupper-from"
PROP_DESTINATION = "x-skupper-to-router"
PROP_DIRECTION = "x-skupper-dir"
#: The forward stream's vanflow BIFLOW_TPORT identity (skupper-router puts it in the
#: message's correlation-id): the connector side names its co-record with it.
PROP_FLOW = "x-skupper-flow"
#: The routers a forward stream that carries a flow passed between its two ends
#: (``|``-joined router names), appended by each transit router.
PROP_TRACE = "x-skupper-trace"
#: Footer annotation: the count of body bytes the sender wrote before the stream's end.
FOOTER_STREAM_LENGTH = "x-skupper-length"
#: Values of `PROP_DIRECTION`.
FORWARD = "f"
REVERSE = "r"

# --- AMQP messaging: client addresses across the mesh ------------------------------------

#: A client's address `A` is advertised (mobile address updates) as `CLIENT_ADDRESS_PREFIX + A`,
#: so it never collides with a TCP routing key or a router's own addresses.
CLIENT_ADDRESS_PREFIX = "_skupper/amqp/"
#: A dynamic receiver's address: `DYNAMIC_PREFIX + router id + "/" + n`; it names its
#: router, so it is routable at once (never advertised).
DYNAMIC_PREFIX = "_skupper/dynamic/"
#: Address prefixes clients may never attach to (dynamic reply addresses excepted, for senders).
RESERVED_PREFIXES = ("_local/", "_topo/", "_skupper/")
#: The stream direction of a client message crossing the mesh (next to FORWARD and REVERSE).
MESSAGE = "m"
#: Router message kind: a client delivery's outcome going back to its ingress router.
OUTCOME_KIND = "mo"
