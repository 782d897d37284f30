"""Shortest paths over a link-state database, and serial-number arithmetic."""

from __future__ import annotations

import pytest

from skupper_actors.protocol.routing import SEQ_MODULUS, Route, seq_newer, seq_next, shortest_paths

pytestmark = pytest.mark.timeout(10)

TOP = SEQ_MODULUS - 1


def test_equal_cost_first_hops_are_all_kept_and_sorted() -> None:
    lsdb = {
        "A": {"B": 1, "C": 1},
        "B": {"A": 1, "D": 1},
        "C": {"A": 1, "D": 1},
        "D": {"B": 1, "C": 1, "E": 3},
        "E": {"D": 3},
    }
    routes = shortest_paths("A", lsdb, {"B": ("l-b",), "C": ("l-c",)})
    assert routes["D"] == Route(router_id="D", cost=2, next_hops=("l-b", "l-c"))
    assert routes["E"] == Route(router_id="E", cost=5, next_hops=("l-b", "l-c"))
    assert routes["B"].next_hops == ("l-b",)
    assert "A" not in routes


def test_one_way_links_are_not_used() -> None:
    # D lists C but C does not list D: D is unreachable from A.
    lsdb = {"A": {"C": 1}, "C": {"A": 1}, "D": {"C": 1}}
    assert set(shortest_paths("A", lsdb, {"C": ("l-c",)})) == {"C"}


def test_cost_is_the_larger_of_both_ends() -> None:
    lsdb = {"A": {"B": 1}, "B": {"A": 7, "C": 2}, "C": {"B": 9}}
    routes = shortest_paths("A", lsdb, {"B": ("l-b",)})
    assert routes["B"].cost == 7
    assert routes["C"].cost == 7 + 9


def test_parallel_links_to_one_neighbour_share_the_route() -> None:
    lsdb = {"A": {"B": 2}, "B": {"A": 2, "C": 1}, "C": {"B": 1}}
    routes = shortest_paths("A", lsdb, {"B": ("l1", "l2")})
    assert routes["C"].next_hops == ("l1", "l2")


def test_a_router_without_link_state_is_unreachable() -> None:
    assert shortest_paths("A", {"A": {"B": 1}}, {"B": ("l-b",)}) == {}


def test_longer_path_with_lower_cost_wins() -> None:
    lsdb = {
        "A": {"B": 10, "C": 1},
        "B": {"A": 10, "D": 1},
        "C": {"A": 1, "D": 1},
        "D": {"B": 1, "C": 1},
    }
    routes = shortest_paths("A", lsdb, {"B": ("l-b",), "C": ("l-c",)})
    assert routes["B"] == Route(router_id="B", cost=3, next_hops=("l-c",))


@pytest.mark.parametrize(
    ("a", "b", "newer"),
    [
        (1, 0, True),
        (0, 1, False),
        (5, 5, False),
        (0, TOP, True),  # wrapped
        (TOP, 0, False),
        (3, TOP - 2, True),
        (2**31 - 1, 0, True),
        (2**31, 0, False),  # exactly half-way: neither is newer
        (0, 2**31, False),
    ],
)
def test_serial_number_comparison(a: int, b: int, newer: bool) -> None:
    assert seq_newer(a, b) is newer


def test_sequence_numbers_wrap() -> None:
    assert seq_next(TOP) == 0
    assert seq_next(0) == 1
    assert seq_newer(seq_next(TOP), TOP)
