"""Seeded content and its verifier; the proxy's byte transformers (no sockets)."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skupper_actors.chaos import ExchangeHeader, Pattern, Verifier
from skupper_actors.chaos.pattern import (
    DOWN,
    STREAM,
    UP,
    HeaderError,
    connection_of,
    content_key,
)
from skupper_actors.chaos.proxy_modes import AmqpPayloadCorrupter, BitFlipper


def test_content_is_addressable_and_differs_per_stream_and_direction() -> None:
    pattern = Pattern(11)
    whole = b"".join(pattern.chunks(5, UP, 200_000, chunk=7777))
    assert len(whole) == 200_000
    assert pattern.read(5, UP, 123_456, 1000) == whole[123_456:124_456]
    assert pattern.read(5, DOWN, 0, 1000) != whole[:1000]
    assert pattern.read(6, UP, 0, 1000) != whole[:1000]
    assert Pattern(12).read(5, UP, 0, 1000) != whole[:1000]


@settings(max_examples=50, deadline=None)
@given(
    size=st.integers(0, 300_000),
    cuts=st.lists(st.integers(1, 70_000), max_size=20),
    flip=st.one_of(st.none(), st.integers(0, 299_999)),
)
def test_the_verifier_finds_the_first_wrong_byte_however_the_bytes_arrive(
    size: int, cuts: list[int], flip: int | None
) -> None:
    pattern = Pattern(3)
    data = bytearray(pattern.read(9, DOWN, 0, size))
    if flip is not None and flip < size:
        data[flip] ^= 0x40
    verifier = Verifier(pattern, 9, DOWN, size)
    position = 0
    for cut in [*cuts, size]:
        verifier.feed(bytes(data[position : position + cut]))
        position += cut
        if position >= size:
            break
    verifier.feed(bytes(data[position:]))
    if flip is not None and flip < size:
        assert verifier.first_bad == flip and not verifier.complete
        assert verifier.verified == flip
    else:
        assert verifier.complete and verifier.verified == size


def test_bytes_past_the_end_count_as_corruption() -> None:
    pattern = Pattern(1)
    verifier = Verifier(pattern, 1, UP, 10)
    assert verifier.feed(pattern.read(1, UP, 0, 10))
    assert not verifier.feed(b"x")
    assert verifier.first_bad == 10


def test_exchange_header_round_trip_and_checksum() -> None:
    header = ExchangeHeader(
        kind=STREAM, stream_id=content_key(77, 3), pool_seed=5, up=1 << 33, down=9
    )
    raw = header.encode()
    assert ExchangeHeader.decode(raw) == header
    assert connection_of(header.stream_id) == 77
    for position in range(len(raw)):
        damaged = bytearray(raw)
        damaged[position] ^= 0x01
        with pytest.raises(HeaderError):
            ExchangeHeader.decode(bytes(damaged))
    with pytest.raises(HeaderError):
        ExchangeHeader.decode(raw[:-1])


def test_bit_flipper_is_seeded_and_flips_about_every_n_bytes() -> None:
    data = bytes(1 << 20)
    flipped, count = BitFlipper(4096, random.Random(1)).apply(data)
    again, count_again = BitFlipper(4096, random.Random(1)).apply(data)
    assert (flipped, count) == (again, count_again)
    assert 200 < count < 320  # ~256 expected
    assert sum(bin(b).count("1") for b in flipped) == count  # one bit each


def _frame(size: int, fill: int) -> bytes:
    return struct.pack("!IBBH", size, 2, 0, 0) + bytes([fill]) * (size - 8)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(8, 5000), min_size=1, max_size=30),
    cuts=st.lists(st.integers(1, 3000), max_size=40),
)
def test_corrupter_touches_only_the_last_byte_of_large_frames(
    sizes: list[int], cuts: list[int]
) -> None:
    stream = b"AMQP\x00\x01\x00\x00" + b"".join(_frame(s, 0xAA) for s in sizes)
    corrupter = AmqpPayloadCorrupter(min_frame=1024)
    out, total, position = [], 0, 0
    for cut in [*cuts, len(stream)]:
        piece, count = corrupter.apply(stream[position : position + cut])
        out.append(piece)
        total += count
        position += cut
    result = b"".join(out)
    assert len(result) == len(stream)
    expected = {8 + sum(sizes[: i + 1]) - 1 for i, size in enumerate(sizes) if size >= 1024}
    differing = {i for i, (a, b) in enumerate(zip(result, stream, strict=True)) if a != b}
    assert differing == expected and total == len(expected)
