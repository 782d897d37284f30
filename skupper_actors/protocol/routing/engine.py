"""The link-state routing engine of one router, sans-IO.

The actor owning the engine tells it about inter-router links, feeds it decoded control
messages, calls ``tick`` when ``next_deadline`` comes, and performs the effects it
returns. The engine only ever sends to neighbours; what must reach every router floods:

- HELLO on every link each ``hello_interval`` (and at once to a newly heard neighbour).
  A link is two-way when the neighbour's HELLO lists us; only two-way links carry
  routes and floods. A neighbour is lost after ``hello_max_age`` of silence (no HELLO
  and no bytes at all on its link: ``link_active``), at once when its link closes, and
  at once when a newer instance of it says HELLO elsewhere.
- LSU (an origin's whole link state), MAU (its mobile addresses) and RA (its sequence
  numbers) flood: a router that accepts one as new - ordered by ``(instance, seq)``,
  see ``database`` - sends it on one link to every two-way neighbour except the one it
  came from; stale and duplicate copies stop there. Links are reliable and ordered, so
  every router joined to the origin by two-way links gets each update.
- Links come and go, so neighbours synchronise: when one first becomes two-way (or
  loses the link that carried floods to it but keeps another), we send it an RA for
  every router we know (an LSU/MAU for one whose RA we never saw) and our own LSU. A
  receiver behind on link state sends LSR, behind on addresses MAR, to that neighbour,
  which answers from its database; the answer floods on like any news. A MAU difference
  that skips a sequence number triggers a MAR the same way. An RA is flooded on only
  by routers that hold what it announces.
- The periodic RA (``ra_interval``, or within ``ra_interval_flux`` after our own change)
  repeats that check network-wide and keeps our entry fresh elsewhere: entries not
  refreshed for ``remote_ls_max_age`` are dropped.
- Link cost: each router advertises, per neighbour, its own end's cost (the cheapest
  of its two-way links to that neighbour); shortest paths use the larger of the two
  routers' costs for the pair, so all agree on one symmetric graph. With one link per
  pair that is the larger of the two ends' costs. First hops are the links at our
  cheapest end.

Work is batched: messages and link events only record what changed and make the next
deadline due at once; ``tick`` then originates our own LSU/MAU (at most one each per
tick) and reports route and address changes. Shortest paths run at most once per
``spf_hold``, so a burst of updates costs one computation, not one per message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from ..addresses import ROUTING_PROTOCOL_VERSION
from .database import MobileVerdict, RouterDatabase
from .effects import (
    Effect,
    LimitExceeded,
    LinkState,
    Neighbour,
    NeighbourAdded,
    NeighbourLost,
    ProtocolRefused,
    Route,
    RoutingSettings,
    SendControl,
)
from .messages import (
    ControlMessage,
    ControlMessageError,
    Hello,
    LinkStateRequest,
    LinkStateUpdate,
    MobileAddressRequest,
    MobileAddressUpdate,
    RouterAdvertisement,
    decode,
)
from .neighbours import NeighbourTable
from .serial import seq_next
from .views import RoutingViews


class RoutingEngine:
    """Link-state routing for the router ``router_id`` (process instance ``instance_id``)."""

    def __init__(
        self, router_id: str, instance_id: int, settings: RoutingSettings | None = None
    ) -> None:
        self.router_id = router_id
        self.instance_id = instance_id
        self.settings = settings = settings or RoutingSettings()
        self._neighbours = NeighbourTable(router_id, settings.hello_max_age)
        self._db = RouterDatabase(router_id, instance_id)
        self._ls_seq = settings.initial_seq
        self._ra_seq = settings.initial_seq
        self._mobile_seq = 0  # every instance starts at 0 with no addresses
        self._db.set_own_link_state(self._ls_seq, {})
        self._db.set_own_addresses(self._mobile_seq, frozenset())
        self._addresses: set[str] = set()
        self._owe_link_state: set[str] = set()  # new neighbours' links
        self._advertised: frozenset[str] = frozenset()
        self._ls_dirty = False  # our neighbours changed: maybe our link state too
        self._spf_dirty = False  # shortest paths are due (see RoutingSettings.spf_hold)
        self._work_due: float | None = None
        self._last_spf = -math.inf
        self._next_hello: float | None = None  # None until the first call
        self._next_ra = math.inf
        self._views = RoutingViews(router_id, settings.max_address_changes_per_tick)

    # --- inputs ---------------------------------------------------------------------

    def link_opened(self, link_id: str, cost: int, now: float) -> list[Effect]:
        """A new inter-router connection; raises ValueError for a reused id or bad cost."""
        self._begin(now)
        self._neighbours.open(link_id, cost, now)
        return [SendControl(link_id=link_id, message=self._hello())]

    def link_cost_changed(self, link_id: str, cost: int, now: float) -> list[Effect]:
        self._begin(now)
        if self._neighbours.set_cost(link_id, cost):
            self._changed_neighbours(now)
        return []

    def link_closed(self, link_id: str, now: float) -> list[Effect]:
        """The connection closed: its neighbour is lost at once."""
        self._begin(now)
        lost = self._neighbours.close(link_id)
        if lost is None:
            return []
        self._changed_neighbours(now)
        return [lost, *self._resynchronise([lost.router_id])]

    def add_local_address(self, address: str, now: float) -> list[Effect]:
        """Serve a mobile address here; advertised (MAU) at the next tick."""
        self._begin(now)
        self._addresses.add(address)
        self._mark(now)
        return []

    def remove_local_address(self, address: str, now: float) -> list[Effect]:
        self._begin(now)
        self._addresses.discard(address)
        self._mark(now)
        return []

    def receive_encoded(self, link_id: str, body: object, now: float) -> list[Effect]:
        """``receive`` for a wire dict; malformed input becomes a ``ProtocolRefused``."""
        try:
            message = decode(body)
        except ControlMessageError as error:
            return [ProtocolRefused(link_id=link_id, reason=str(error))]
        return self.receive(link_id, message, now)

    def receive(self, link_id: str, msg: ControlMessage, now: float) -> list[Effect]:
        """A control message arrived on ``link_id``."""
        self._begin(now)
        if msg.pv > ROUTING_PROTOCOL_VERSION:
            return _refuse(link_id, f"protocol version {msg.pv} > {ROUTING_PROTOCOL_VERSION}")
        if link_id not in self._neighbours:
            return _refuse(link_id, "message on an unknown link")
        if isinstance(msg, Hello):
            return self._on_hello(link_id, msg, now)
        sender = self._neighbours.router_on(link_id)
        if sender is None:
            return _refuse(link_id, f"{type(msg).__name__} before a HELLO")
        if isinstance(msg, LinkStateRequest):
            return self._on_ls_request(link_id, msg)
        if isinstance(msg, MobileAddressRequest):
            return self._on_address_request(link_id, msg)
        if msg.id == self.router_id:
            return []  # our own flood, back from a loop in the mesh
        if isinstance(msg, RouterAdvertisement):
            effects = self._on_advertisement(link_id, sender, msg, now)
        elif isinstance(msg, LinkStateUpdate):
            effects = self._on_link_state(sender, msg, now)
        else:
            effects = self._on_addresses(link_id, sender, msg, now)
        if self._db.ls_changed or self._db.changed_addresses:
            self._mark(now)
        return effects

    def link_active(self, link_id: str, when: float) -> None:
        """Bytes from the neighbour on ``link_id`` arrived at ``when`` (see
        ``NeighbourTable.active``): it keeps a neighbour that was heard alive."""
        self._neighbours.active(link_id, when)

    def tick(self, now: float) -> list[Effect]:
        """Do what is due: HELLOs, ageing, our own LSU/MAU/RA, shortest paths."""
        self._begin(now)
        settings = self.settings
        effects: list[Effect] = []
        lost = self._neighbours.expire(now)
        if lost:
            effects.extend(lost)
            effects.extend(self._resynchronise(gone.router_id for gone in lost))
            self._changed_neighbours(now)
        assert self._next_hello is not None
        hello_due = now >= self._next_hello
        if hello_due:
            self._next_hello = now + settings.hello_interval
            self._db.expire(now, settings.remote_ls_max_age)
        if self._ls_dirty:
            effects.extend(self._originate_link_state(now))
        if self._owe_link_state:
            effects.extend(self._send_owed_link_state())
        if self._addresses != self._advertised:
            effects.extend(self._originate_addresses(now))
        if now >= self._next_ra:
            effects.extend(self._originate_advertisement(now))
        if hello_due:
            hello = self._hello()
            effects.extend(
                SendControl(link_id=link_id, message=hello)
                for link_id in self._neighbours.link_ids()
            )
        effects.extend(self._recompute(now))
        # addresses left for the next tick: it is due at once (after the actor yields)
        self._work_due = now if self._views.pending else None
        return effects

    def next_deadline(self) -> float:
        """When ``tick`` is next due; minus infinity before the first call."""
        if self._next_hello is None:
            return -math.inf
        deadline = min(self._next_hello, self._next_ra)
        if self._work_due is not None:
            deadline = min(deadline, self._work_due)
        elif self._spf_dirty:  # held back by spf_hold at the last tick
            deadline = min(deadline, self._last_spf + self.settings.spf_hold)
        expiry = self._neighbours.next_expiry()
        return deadline if expiry is None else min(deadline, expiry)

    @property
    def busy(self) -> bool:
        """True while changes wait for a tick (including shortest paths held back)."""
        return self._work_due is not None or self._spf_dirty or bool(self._views.pending)

    # --- queries --------------------------------------------------------------------

    def routes(self) -> Mapping[str, Route]:
        """Every reachable router but ourselves, as of the last tick."""
        return self._views.routes

    def neighbours(self) -> dict[str, Neighbour]:
        """Neighbours heard, by link id."""
        return self._neighbours.neighbours()

    def link_state_database(self) -> dict[str, LinkState]:
        return self._db.link_states()

    def address_routers(self, address: str) -> frozenset[str]:
        """Reachable routers (ourselves included) serving ``address``, as of the last tick."""
        return self._views.addresses.get(address, frozenset())

    def addresses(self) -> Mapping[str, frozenset[str]]:
        """Every address some reachable router serves, with those routers."""
        return dict(self._views.addresses)

    def local_addresses(self) -> frozenset[str]:
        return frozenset(self._addresses)

    # --- message handlers -----------------------------------------------------------

    def _on_hello(self, link_id: str, msg: Hello, now: float) -> list[Effect]:
        if msg.id == self.router_id:
            return _refuse(link_id, "the neighbour uses our router id")
        newest = self._neighbours.newest_instance(msg.id, except_link=link_id)
        if newest is not None and newest > msg.instance:
            return _refuse(link_id, f"an older instance of {msg.id} than on another link")
        outcome = self._neighbours.hear(link_id, msg, now)
        effects: list[Effect] = []
        if outcome.replaced is not None:
            effects.append(NeighbourLost(
                link_id=link_id, router_id=outcome.replaced, reason="router-id-changed"
            ))
        if outcome.fresh:
            # Only one instance of a router lives: its links from older ones are dead.
            effects.extend(self._neighbours.drop_older_instances(msg.id, msg.instance))
            self._db.observe_neighbour_instance(msg.id, msg.instance, now)
            effects.append(SendControl(link_id=link_id, message=self._hello()))
            self._changed_neighbours(now)
        if outcome.became_two_way:
            effects.append(NeighbourAdded(link_id=link_id, router_id=msg.id))
            if self._neighbours.two_way_link_count(msg.id) == 1:
                effects.extend(self._synchronise(link_id))
        if outcome.lost_two_way:
            effects.extend(self._resynchronise([outcome.replaced or msg.id]))
        if outcome.became_two_way or outcome.lost_two_way:
            self._changed_neighbours(now)
        return effects

    def _on_advertisement(
        self, link_id: str, sender: str, msg: RouterAdvertisement, now: float
    ) -> list[Effect]:
        verdict = self._db.accept_advertisement(msg, now)
        effects: list[Effect] = []
        if verdict.want_ls:
            request = LinkStateRequest(id=self.router_id, instance=self.instance_id, origin=msg.id)
            effects.append(SendControl(link_id=link_id, message=request))
        if verdict.want_addresses:
            effects.append(self._address_request(link_id, msg.id))
        if verdict.new and not (verdict.want_ls or verdict.want_addresses):
            # When we lack what it announces, the answer to our request floods instead.
            effects.extend(self._flood(msg, except_router=sender))
        return effects

    def _on_link_state(self, sender: str, msg: LinkStateUpdate, now: float) -> list[Effect]:
        if not self._db.accept_link_state(msg, now):
            return []
        return self._flood(msg, except_router=sender)

    def _on_addresses(
        self, link_id: str, sender: str, msg: MobileAddressUpdate, now: float
    ) -> list[Effect]:
        limits = self.settings
        listed = len(msg.exist) if msg.exist is not None else len(msg.add) + len(msg.delete)
        if listed > limits.max_addresses_per_update:
            return [LimitExceeded(
                link_id=link_id,
                origin=msg.id,
                limit="max-addresses-per-update",
                detail=f"an update of {msg.id} lists {listed} addresses "
                f"(at most {limits.max_addresses_per_update})",
                neighbour=msg.id == sender,
            )]
        verdict = self._db.accept_addresses(msg, now, limits.max_addresses_per_router)
        if verdict is MobileVerdict.TOO_MANY:
            return [LimitExceeded(
                link_id=link_id,
                origin=msg.id,
                limit="max-addresses-per-router",
                detail=f"router {msg.id} would serve more than "
                f"{limits.max_addresses_per_router} addresses",
                neighbour=msg.id == sender,
            )]
        if verdict is MobileVerdict.APPLIED:
            return self._flood(msg, except_router=sender)
        if verdict is MobileVerdict.GAP:
            return [self._address_request(link_id, msg.id)]
        return []

    def _on_ls_request(self, link_id: str, msg: LinkStateRequest) -> list[Effect]:
        update = self._db.link_state_update(msg.origin)
        return [] if update is None else [SendControl(link_id=link_id, message=update)]

    def _on_address_request(self, link_id: str, msg: MobileAddressRequest) -> list[Effect]:
        update = self._db.address_update(msg.origin)
        if update is None:
            return []
        if msg.origin != self.router_id and update.mobile_seq == msg.have_seq:
            return []  # it has what we have
        return [SendControl(link_id=link_id, message=update)]

    def _synchronise(self, link_id: str) -> list[Effect]:
        """Tell a new neighbour what we know of others, so it can ask for what it lacks.

        Our own link state goes to it at the next tick: usually as the new LSU that this
        neighbour's arrival causes, else as a copy of the current one.
        """
        self._owe_link_state.add(link_id)
        return [SendControl(link_id=link_id, message=m) for m in self._db.summary()]

    def _resynchronise(self, router_ids: Iterable[str | None]) -> list[Effect]:
        """Synchronise with neighbours that lost a link but keep another.

        Floods sent over the dead link may be lost, and the neighbour's link state need
        not change, so nothing else would repair that.
        """
        effects: list[Effect] = []
        for router_id in sorted({r for r in router_ids if r is not None}):
            link_id = self._neighbours.flood_link(router_id)
            if link_id is not None:
                effects.extend(self._synchronise(link_id))
        return effects

    # --- our own advertisements -----------------------------------------------------

    def _originate_link_state(self, now: float) -> list[Effect]:
        self._ls_dirty = False
        self._spf_dirty = True
        ls = self._neighbours.link_state()
        if ls == self._db.lsdb.get(self.router_id):
            return []
        self._ls_seq = seq_next(self._ls_seq)
        self._db.set_own_link_state(self._ls_seq, ls)
        self._in_flux(now)
        self._owe_link_state.clear()  # the flood reaches every two-way neighbour
        msg = LinkStateUpdate(
            id=self.router_id, instance=self.instance_id, ls_seq=self._ls_seq, ls=ls
        )
        return self._flood(msg)

    def _send_owed_link_state(self) -> list[Effect]:
        owed, self._owe_link_state = self._owe_link_state, set()
        own = self._db.link_state_update(self.router_id)
        assert own is not None
        return [
            SendControl(link_id=link_id, message=own)
            for link_id in sorted(owed)
            if link_id in self._neighbours
        ]

    def _originate_addresses(self, now: float) -> list[Effect]:
        added = sorted(self._addresses - self._advertised)
        deleted = sorted(self._advertised - self._addresses)
        self._mobile_seq = seq_next(self._mobile_seq)
        self._advertised = frozenset(self._addresses)
        self._db.set_own_addresses(self._mobile_seq, self._advertised)
        self._in_flux(now)
        msg = MobileAddressUpdate(
            id=self.router_id,
            instance=self.instance_id,
            mobile_seq=self._mobile_seq,
            add=tuple(added),
            delete=tuple(deleted),
        )
        return self._flood(msg)

    def _originate_advertisement(self, now: float) -> list[Effect]:
        self._ra_seq = seq_next(self._ra_seq)
        self._next_ra = now + self.settings.ra_interval
        return self._flood(self._advertisement())

    def _in_flux(self, now: float) -> None:
        self._next_ra = min(self._next_ra, now + self.settings.ra_interval_flux)

    def _advertisement(self) -> RouterAdvertisement:
        return RouterAdvertisement(
            id=self.router_id,
            instance=self.instance_id,
            ls_seq=self._ls_seq,
            mobile_seq=self._mobile_seq,
            ra_seq=self._ra_seq,
        )

    # --- helpers --------------------------------------------------------------------

    def _recompute(self, now: float) -> list[Effect]:
        ls_changed, addresses = self._db.take_changes()
        self._spf_dirty = self._spf_dirty or ls_changed
        first_hops = None
        if self._spf_dirty and now >= self._last_spf + self.settings.spf_hold:
            self._spf_dirty = False
            self._last_spf = now
            first_hops = self._neighbours.first_hop_links()
        return self._views.update(self._db, first_hops, addresses)

    def _flood(self, msg: ControlMessage, except_router: str | None = None) -> list[Effect]:
        return [
            SendControl(link_id=link_id, message=msg)
            for link_id in self._neighbours.flood_links(except_router)
        ]

    def _hello(self) -> Hello:
        return Hello(id=self.router_id, instance=self.instance_id, seen=self._neighbours.seen())

    def _address_request(self, link_id: str, origin: str) -> SendControl:
        record = self._db.records.get(origin)
        have = record.mobile_seq if record is not None else None
        request = MobileAddressRequest(
            id=self.router_id,
            instance=self.instance_id,
            origin=origin,
            have_seq=have or 0,
        )
        return SendControl(link_id=link_id, message=request)

    def _changed_neighbours(self, now: float) -> None:
        self._ls_dirty = True
        self._spf_dirty = True
        self._mark(now)

    def _mark(self, now: float) -> None:
        if self._work_due is None:
            self._work_due = now

    def _begin(self, now: float) -> None:
        if self._next_hello is None:
            self._next_hello = now + self.settings.hello_interval
            self._next_ra = now + self.settings.ra_interval


def _refuse(link_id: str, reason: str) -> list[Effect]:
    return [ProtocolRefused(link_id=link_id, reason=reason)]
