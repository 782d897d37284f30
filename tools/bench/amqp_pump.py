"""AMQP wrapper micro-benchmark: two AmqpConnections pumped in memory, no sockets.

    python tools/bench/amqp_pump.py [--mib N] [--write-kib K] [--frame-kib F]
        [--flush-frames B] [--output view|bytes] [--messages M] [--repeat R]
        [--tune-malloc] [--json]

Streams N MiB (default 1024) as one streaming delivery in K KiB writes (default 256),
draining the sender whenever the stream's backlog passes B frames (default 2; 0 means
after every write, as a latency-minded link actor would); then sends M small complete
messages with dict bodies. Reports throughput, CPU per MiB split by where the time
goes (sender: write_stream, output; receiver: receive_data, events) and messages per
second; with --repeat, the run with the least CPU. One process plays both ends, so a
relay hop costs about half of the CPU per MiB shown. On a shared machine, trust CPU
per MiB over wall-clock throughput.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

from skupper_actors.protocol.amqp import (
    AmqpConnection,
    AmqpEvent,
    AmqpMessage,
    LinkOpened,
    MessageHeader,
    MessageReceived,
    StreamData,
    StreamEnded,
)

MIB = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamResult:
    mib: int
    write_kib: int
    frame_kib: int
    flush_frames: float
    output: str
    seconds: float
    mb_per_s: float
    gbit_per_s: float
    cpu_us_per_mib: float
    write_stream_us_per_mib: float
    sender_output_us_per_mib: float
    receive_data_us_per_mib: float
    events_us_per_mib: float
    stream_data_per_mib: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageResult:
    messages: int
    seconds: float
    messages_per_s: int
    cpu_us_per_message: float


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds (as MALLOC_MMAP_THRESHOLD_ etc. would).

    The data path allocates and frees ~256 KiB objects at a high rate; glibc's
    defaults may hand that memory back to the kernel and fault it in again. Whether
    raising the thresholds helps depends on the flush pattern: measure both.
    """
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(
        libc.mallopt(m_mmap_threshold, 16 * MIB) and libc.mallopt(m_trim_threshold, 64 * MIB)
    )


def connected_pair(frame: int) -> tuple[AmqpConnection, AmqpConnection]:
    client = AmqpConnection("bench-client", server=False, max_frame_size=frame)
    server = AmqpConnection("bench-server", server=True, max_frame_size=frame)
    client.open()
    server.open()
    pump(client, server)
    return client, server


def pump(client: AmqpConnection, server: AmqpConnection) -> list[AmqpEvent]:
    """Move bytes both ways until quiet; return the server's events."""
    events: list[AmqpEvent] = []
    busy = True
    while busy:
        busy = False
        client.events()
        events += server.events()
        for source, sink in ((client, server), (server, client)):
            data = source.data_to_send()
            if data:  # never b"": that would tell the sink the socket hit EOF
                busy = True
                sink.receive_data(data)
    return events


def attach(client: AmqpConnection, server: AmqpConnection, streaming: bool, credit: int) -> int:
    sender = client.open_sender("bench", "bench/address", streaming=streaming)
    (opened,) = [e for e in pump(client, server) if isinstance(e, LinkOpened)]
    server.flow(opened.link_id, credit)
    pump(client, server)
    return sender


def bench_stream(
    mib: int, write_kib: int, frame_kib: int, flush_frames: float, output: str
) -> StreamResult:
    frame = frame_kib * 1024
    client, server = connected_pair(frame)
    sender = attach(client, server, streaming=True, credit=1)
    chunk = os.urandom(write_kib * 1024)
    writes = mib * MIB // len(chunk)
    limit = int(flush_frames * frame)
    view = output == "view"
    clock = time.perf_counter
    write_t = output_t = input_t = events_t = 0.0
    received = data_events = 0
    ended = False

    def drain() -> None:
        nonlocal output_t, input_t, events_t, received, data_events, ended
        while True:
            t0 = clock()
            if view:
                data: bytes | memoryview = client.peek_output()
                if data:
                    client.pop_output(len(data))  # the view is a copy: still valid
            else:
                data = client.data_to_send()
            t1 = clock()
            output_t += t1 - t0
            if not data:
                return
            server.receive_data(data)
            t2 = clock()
            events = server.events()
            t3 = clock()
            input_t += t2 - t1
            events_t += t3 - t2
            for event in events:
                if type(event) is StreamData:
                    received += len(event.data)
                    data_events += 1
                elif type(event) is StreamEnded:
                    ended = True
            back = server.data_to_send()  # session window updates
            if back:
                client.receive_data(back)
                client.events()

    wall0, cpu0 = clock(), time.process_time()
    delivery = client.start_stream(sender, MessageHeader(to="bench/address"))
    for _ in range(writes):
        t0 = clock()
        client.write_stream(delivery, chunk)
        write_t += clock() - t0
        if client.stream_backlog(delivery) > limit:
            drain()
    client.end_stream(delivery)
    drain()
    seconds = clock() - wall0
    cpu = time.process_time() - cpu0
    total = writes * len(chunk)
    if received != total or not ended:
        raise SystemExit(f"lost data: sent {total}, received {received}, ended={ended}")
    per_mib = 1e6 / (total / MIB)
    return StreamResult(
        mib=total // MIB,
        write_kib=write_kib,
        frame_kib=frame_kib,
        flush_frames=flush_frames,
        output=output,
        seconds=round(seconds, 3),
        mb_per_s=round(total / seconds / 1e6, 1),
        gbit_per_s=round(total * 8 / seconds / 1e9, 2),
        cpu_us_per_mib=round(cpu * per_mib, 1),
        write_stream_us_per_mib=round(write_t * per_mib, 1),
        sender_output_us_per_mib=round(output_t * per_mib, 1),
        receive_data_us_per_mib=round(input_t * per_mib, 1),
        events_us_per_mib=round(events_t * per_mib, 1),
        stream_data_per_mib=round(data_events / (total / MIB), 2),
    )


def bench_messages(count: int, frame_kib: int) -> MessageResult:
    client, server = connected_pair(frame_kib * 1024)
    batch = 1000
    sender = attach(client, server, streaming=False, credit=batch)
    message = AmqpMessage(
        to="router/control",
        subject="MAU",
        application_properties={"opcode": "MAU"},
        body={"id": "router-a", "mobile_seq": 7, "add": ["svc/a", "svc/b"], "del": []},
    )
    received = 0
    start, cpu0 = time.perf_counter(), time.process_time()
    while received < count:
        for _ in range(min(batch, count - received)):
            client.send_message(sender, message)
        got = [e for e in pump(client, server) if isinstance(e, MessageReceived)]
        received += len(got)
        server.flow(got[0].link_id, len(got))
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    return MessageResult(
        messages=received,
        seconds=round(seconds, 3),
        messages_per_s=round(received / seconds),
        cpu_us_per_message=round(cpu / received * 1e6, 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="MiB to stream (default 1024)")
    parser.add_argument("--write-kib", type=int, default=256, help="write size (default 256)")
    parser.add_argument("--frame-kib", type=int, default=1024, help="max frame (default 1024)")
    parser.add_argument(
        "--flush-frames",
        type=float,
        default=2.0,
        help="drain the sender when its backlog passes this many frames (default 2)",
    )
    parser.add_argument(
        "--output",
        choices=["view", "bytes"],
        default="view",
        help="drain with peek_output/pop_output (default) or data_to_send",
    )
    parser.add_argument("--messages", type=int, default=100_000, help="small messages to send")
    parser.add_argument("--repeat", type=int, default=1, help="runs; report the least CPU")
    parser.add_argument("--tune-malloc", action="store_true", help="see tune_malloc()")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.tune_malloc and not tune_malloc():
        print("mallopt is not available here; running untuned", file=sys.stderr)
    streams = [
        bench_stream(args.mib, args.write_kib, args.frame_kib, args.flush_frames, args.output)
        for _ in range(args.repeat)
    ]
    stream = min(streams, key=lambda result: result.cpu_us_per_mib)
    messages = min(
        (bench_messages(args.messages, args.frame_kib) for _ in range(args.repeat)),
        key=lambda result: result.cpu_us_per_message,
    )
    if args.json:
        print(json.dumps({"stream": asdict(stream), "messages": asdict(messages)}))
        return 0
    print(
        f"stream   {stream.mib} MiB, {stream.write_kib} KiB writes, {stream.frame_kib} KiB"
        f" frames, drain past {stream.flush_frames} frames, {stream.output} output:"
        f" {stream.mb_per_s} MB/s ({stream.gbit_per_s} Gbit/s)"
    )
    print(
        f"         CPU {stream.cpu_us_per_mib} us/MiB for both ends; wall us/MiB:"
        f" write_stream {stream.write_stream_us_per_mib},"
        f" output {stream.sender_output_us_per_mib},"
        f" receive_data {stream.receive_data_us_per_mib},"
        f" events {stream.events_us_per_mib}; {stream.stream_data_per_mib} StreamData/MiB"
    )
    print(
        f"messages {messages.messages} small dict-body messages: {messages.messages_per_s}/s,"
        f" CPU {messages.cpu_us_per_message} us each (encode, both engines, decode)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
