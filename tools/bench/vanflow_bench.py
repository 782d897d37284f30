"""CPU cost of flow records per TCP connection, in process: the sans-IO emitter (with and
without a consumer, AMQP encoding included) and the observer's collector.

    python tools/bench/vanflow_bench.py [--connections 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from skupper_actors.observer.collector import Collector  # noqa: E402
from skupper_actors.protocol.vanflow import (  # noqa: E402
    BEACON_ADDRESS,
    Attr,
    Emitter,
    RecordType,
    encode,
    flows_address,
    records_address,
)


def emit(connections: int, consumer: bool) -> tuple[float, list[bytes]]:
    """CPU seconds for ``connections`` biflows (open, latency, close) at 500 per 200 ms tick."""
    emitter = Emitter("bench", now=0.0)
    if consumer:
        for address in (BEACON_ADDRESS, records_address("bench:0"), flows_address("bench:0")):
            emitter.set_consumer(address, True)
    started, now, out = time.process_time(), 0.0, []
    for n in range(connections):
        attrs = {Attr.PARENT: "bench:1", Attr.SOURCE_HOST: "127.0.0.1", Attr.SOURCE_PORT: str(n)}
        identity = emitter.add(RecordType.BIFLOW_TPORT, attrs, now=now)
        assert identity is not None
        emitter.update(identity, {Attr.LATENCY: 500})
        emitter.end(identity, now=now, attrs={Attr.OCTETS: 1000, Attr.OCTETS_REVERSE: 2000})
        if n % 100 == 99:
            now += 0.2
            out += emitter.tick(now)
    out += emitter.tick(now + 10)
    data = [encode(message) for message in out]
    return time.process_time() - started, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20_000)
    count = parser.parse_args().connections
    idle, _ = emit(count, consumer=False)
    busy, data = emit(count, consumer=True)
    collector = Collector(now=0.0, max_ended_flows=count)
    started = time.process_time()
    for message in data:
        collector.receive_bytes(message, now=100.0, source="bench:0")
    collected = time.process_time() - started
    print(f"emitter, no consumer:   {idle / count * 1e6:6.1f} µs CPU per connection")
    print(f"emitter, a consumer:    {busy / count * 1e6:6.1f} µs CPU per connection "
          f"({len(data)} messages)")
    print(f"collector:              {collected / count * 1e6:6.1f} µs CPU per connection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
