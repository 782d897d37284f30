"""What one router knows of every router: link state, mobile addresses, RA sequence.

Updates are ordered by ``(instance, seq)``: a larger instance is a restarted router and
replaces everything known of the old one at once; within an instance, sequence numbers
compare with serial arithmetic, and a stale or duplicate update changes nothing.
Instances compare as plain integers, so a restarted router must pick a larger one (its
start time in milliseconds does). Every instance starts with ``mobile_seq`` 0 and no
addresses, so its first address change (seq 1) applies anywhere as a difference; a
record that has heard no address update yet (``mobile_seq`` None) takes an absolute
list at any sequence number, since the origin may have wrapped long ago.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from .effects import LinkState
from .messages import ControlMessage, LinkStateUpdate, MobileAddressUpdate, RouterAdvertisement
from .serial import seq_follows, seq_newer


@dataclass(slots=True)
class RouterRecord:
    router_id: str
    instance: int
    refreshed: float  # when we last accepted something new from this router
    ls_seq: int | None = None  # None until its link state arrives
    ls: Mapping[str, int] = field(default_factory=dict)
    mobile_seq: int | None = None  # None: no address update heard yet
    addresses: frozenset[str] = frozenset()
    ra_seq: int | None = None


class MobileVerdict(Enum):
    APPLIED = "applied"
    GAP = "gap"  # a difference that does not follow what we have: ask for the absolute list
    STALE = "stale"
    TOO_MANY = "too-many"  # it would give the origin more addresses than allowed


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvertisementVerdict:
    new: bool  # not seen before: refresh and flood on
    want_ls: bool  # the origin has newer link state than we do
    want_addresses: bool  # ... newer mobile addresses than we do


class RouterDatabase:
    """Records of all routers, this one included, with the indexes routing needs.

    ``lsdb`` (router id -> link state) is kept live for shortest paths. Changes since the
    last ``take_changes`` are collected so the engine recomputes once per batch.
    """

    def __init__(self, own_id: str, own_instance: int) -> None:
        self.own_id = own_id
        self.records: dict[str, RouterRecord] = {
            own_id: RouterRecord(router_id=own_id, instance=own_instance, refreshed=0.0)
        }
        self.lsdb: dict[str, Mapping[str, int]] = {}
        self.address_index: dict[str, set[str]] = {}
        self.ls_changed = False
        self.changed_addresses: set[str] = set()

    def take_changes(self) -> tuple[bool, set[str]]:
        """Whether any link state changed and which addresses' router sets changed."""
        changes = (self.ls_changed, self.changed_addresses)
        self.ls_changed = False
        self.changed_addresses = set()
        return changes

    # --- our own record -------------------------------------------------------------

    def set_own_link_state(self, ls_seq: int, ls: Mapping[str, int]) -> None:
        record = self.records[self.own_id]
        record.ls_seq = ls_seq
        record.ls = ls
        self.lsdb[self.own_id] = ls
        self.ls_changed = True

    def set_own_addresses(self, mobile_seq: int, addresses: frozenset[str]) -> None:
        record = self.records[self.own_id]
        record.mobile_seq = mobile_seq
        self._set_addresses(record, addresses)

    # --- updates from other routers -------------------------------------------------

    def accept_advertisement(self, msg: RouterAdvertisement, now: float) -> AdvertisementVerdict:
        record = self._record_for(msg.id, msg.instance, now)
        if record is None:
            return AdvertisementVerdict(new=False, want_ls=False, want_addresses=False)
        new = record.ra_seq is None or seq_newer(msg.ra_seq, record.ra_seq)
        if new:
            record.ra_seq = msg.ra_seq
            record.refreshed = now
        want_ls = record.ls_seq is None or seq_newer(msg.ls_seq, record.ls_seq)
        if record.mobile_seq is None:
            want_addresses = msg.mobile_seq != 0
        else:
            want_addresses = seq_newer(msg.mobile_seq, record.mobile_seq)
        return AdvertisementVerdict(new=new, want_ls=want_ls, want_addresses=want_addresses)

    def accept_link_state(self, msg: LinkStateUpdate, now: float) -> bool:
        """Store a newer link state; False for a stale or duplicate one."""
        record = self._record_for(msg.id, msg.instance, now)
        if record is None:
            return False
        if record.ls_seq is not None and not seq_newer(msg.ls_seq, record.ls_seq):
            return False
        record.ls_seq = msg.ls_seq
        record.refreshed = now
        if record.ls != msg.ls:
            record.ls = msg.ls
            self.lsdb[msg.id] = msg.ls
            self.ls_changed = True
        elif msg.id not in self.lsdb:
            self.lsdb[msg.id] = msg.ls
            self.ls_changed = True
        return True

    def accept_addresses(
        self, msg: MobileAddressUpdate, now: float, max_addresses: int | None = None
    ) -> MobileVerdict:
        """Apply an address update; past ``max_addresses`` it is refused (TOO_MANY)."""
        record = self._record_for(msg.id, msg.instance, now)
        if record is None:
            return MobileVerdict.STALE
        have = record.mobile_seq
        if msg.exist is not None:
            if have is not None and not seq_newer(msg.mobile_seq, have):
                return MobileVerdict.STALE
            addresses = frozenset(msg.exist)
        elif seq_follows(msg.mobile_seq, 0 if have is None else have):
            addresses = record.addresses.union(msg.add).difference(msg.delete)
        elif have is None or seq_newer(msg.mobile_seq, have):
            return MobileVerdict.GAP
        else:
            return MobileVerdict.STALE
        if max_addresses is not None and len(addresses) > max_addresses:
            return MobileVerdict.TOO_MANY
        record.mobile_seq = msg.mobile_seq
        record.refreshed = now
        self._set_addresses(record, addresses)
        return MobileVerdict.APPLIED

    def observe_neighbour_instance(self, router_id: str, instance: int, now: float) -> None:
        """A HELLO is first-hand: any other instance of a neighbour replaces its record."""
        record = self.records.get(router_id)
        if record is not None and record.instance != instance:
            self._replace(router_id, instance, now)

    def expire(self, now: float, max_age: float) -> list[str]:
        """Forget routers not heard from within ``max_age``; returns their ids."""
        stale = [
            router_id
            for router_id, record in self.records.items()
            if router_id != self.own_id and now - record.refreshed >= max_age
        ]
        for router_id in stale:
            self._forget(router_id)
        return stale

    # --- what we tell others -------------------------------------------------------

    def link_state_update(self, router_id: str) -> LinkStateUpdate | None:
        record = self.records.get(router_id)
        if record is None or record.ls_seq is None:
            return None
        return LinkStateUpdate(
            id=router_id, instance=record.instance, ls_seq=record.ls_seq, ls=record.ls
        )

    def address_update(self, router_id: str) -> MobileAddressUpdate | None:
        """A router's absolute address list, if we heard any."""
        record = self.records.get(router_id)
        if record is None or record.mobile_seq is None:
            return None
        return MobileAddressUpdate(
            id=router_id,
            instance=record.instance,
            mobile_seq=record.mobile_seq,
            exist=tuple(sorted(record.addresses)),
        )

    def summary(self) -> list[ControlMessage]:
        """For a new neighbour: an RA per router we know (LSU/MAU if we never saw its RA).

        For ourselves only the addresses: our link state follows separately.
        """
        messages: list[ControlMessage] = []
        for router_id, record in self.records.items():
            own = router_id == self.own_id
            if not own and record.ra_seq is not None and record.ls_seq is not None:
                messages.append(RouterAdvertisement(
                    id=router_id,
                    instance=record.instance,
                    ls_seq=record.ls_seq,
                    mobile_seq=record.mobile_seq or 0,  # unknown: claim nothing
                    ra_seq=record.ra_seq,
                ))
                continue
            link_state = None if own else self.link_state_update(router_id)
            addresses = self.address_update(router_id)
            if link_state is not None:
                messages.append(link_state)
            if addresses is not None and (addresses.mobile_seq != 0 or addresses.exist):
                messages.append(addresses)
        return messages

    def link_states(self) -> dict[str, LinkState]:
        return {
            router_id: LinkState(
                router_id=router_id, instance=record.instance, ls_seq=record.ls_seq, ls=record.ls
            )
            for router_id, record in self.records.items()
            if record.ls_seq is not None
        }

    def addresses_of(self, router_id: str) -> frozenset[str]:
        record = self.records.get(router_id)
        return frozenset() if record is None else record.addresses

    # --- helpers --------------------------------------------------------------------

    def _record_for(self, router_id: str, instance: int, now: float) -> RouterRecord | None:
        """The record an update from ``instance`` applies to, or None if it is stale."""
        record = self.records.get(router_id)
        if record is None or instance > record.instance:
            return self._replace(router_id, instance, now)
        if instance < record.instance:
            return None
        return record

    def _replace(self, router_id: str, instance: int, now: float) -> RouterRecord:
        self._forget(router_id)
        record = RouterRecord(router_id=router_id, instance=instance, refreshed=now)
        self.records[router_id] = record
        return record

    def _forget(self, router_id: str) -> None:
        record = self.records.pop(router_id, None)
        if record is None:
            return
        if self.lsdb.pop(router_id, None) is not None:
            self.ls_changed = True
        self._index(router_id, remove=record.addresses)

    def _set_addresses(self, record: RouterRecord, addresses: frozenset[str]) -> None:
        old = record.addresses
        record.addresses = addresses
        self._index(record.router_id, add=addresses - old, remove=old - addresses)

    def _index(
        self, router_id: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> None:
        for address in add:
            self.address_index.setdefault(address, set()).add(router_id)
            self.changed_addresses.add(address)
        for address in remove:
            routers = self.address_index.get(address)
            if routers is not None:
                routers.discard(router_id)
                if not routers:
                    del self.address_index[address]
            self.changed_addresses.add(address)
