"""Kernel benchmark: tell throughput and ask round trip against a bare gevent queue,
and the cost of starting and stopping many dynamic children.

    python tools/bench/kernel_bench.py [--messages N] [--children N] [--json]

Each kernel figure is printed next to the same work done with a bare
``gevent.queue.Queue`` in the same run, with the ratio.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import gevent
import gevent.event
import gevent.queue
import structlog

from skupper_actors.kernel import Actor, ChildSpec, Restart, Supervisor, spawn


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    n: int


class Counter(Actor):
    mailbox_size = 1 << 30

    def __init__(self, expected: int, done: gevent.event.Event) -> None:
        super().__init__()
        self.expected = expected
        self.done = done
        self.count = 0

    def on_receive(self, message: object) -> object:
        self.count += 1
        if self.count == self.expected:
            self.done.set()
        return message


class Idle(Actor):
    lifecycle_log_level = "debug"

    def on_receive(self, message: object) -> object:
        return message


def best_of(runs: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(runs))


def bare_tell(n: int) -> float:
    queue: gevent.queue.Queue[object] = gevent.queue.Queue()
    done = gevent.event.Event()

    # The same work as the kernel's consumer: one handler call per message.
    handler = Counter(n, done)

    def consume() -> None:
        receive = handler.on_receive
        get = queue.get
        while not done.is_set():
            receive(get())

    consumer = gevent.spawn(consume)
    gevent.sleep(0)
    message = Ping(n=1)
    start = time.perf_counter()
    put = queue.put_nowait
    for _ in range(n):
        put(message)
    done.wait()
    elapsed = time.perf_counter() - start
    consumer.join()
    return elapsed


def kernel_tell(n: int) -> float:
    done = gevent.event.Event()
    ref = spawn(Counter(n, done))
    message = Ping(n=1)
    start = time.perf_counter()
    tell = ref.tell
    for _ in range(n):
        tell(message)
    done.wait()
    elapsed = time.perf_counter() - start
    ref.stop()
    return elapsed


def bare_ask(n: int) -> list[float]:
    queue: gevent.queue.Queue[tuple[object, gevent.event.AsyncResult[object]]] = (
        gevent.queue.Queue()
    )

    def serve() -> None:
        while True:
            message, result = queue.get()
            if message is None:
                return
            result.set(message)

    server = gevent.spawn(serve)
    samples = []
    message = Ping(n=1)
    for _ in range(n):
        start = time.perf_counter()
        result: gevent.event.AsyncResult[object] = gevent.event.AsyncResult()
        queue.put((message, result))
        result.get(timeout=5)
        samples.append(time.perf_counter() - start)
    queue.put((None, gevent.event.AsyncResult()))
    server.join()
    return samples


def kernel_ask(n: int) -> list[float]:
    ref = spawn(Counter(-1, gevent.event.Event()))
    samples = []
    message = Ping(n=1)
    for _ in range(n):
        start = time.perf_counter()
        ref.ask(message, 5)
        samples.append(time.perf_counter() - start)
    ref.stop()
    return samples


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def children(n: int) -> dict[str, float]:
    sup = spawn(Supervisor(intensity=10, period=1.0), name="bench")
    gc.collect()
    rss_before = rss_kib()
    start = time.perf_counter()
    for i in range(n):
        sup.start_child(ChildSpec(id=f"c{i}", start=Idle, restart=Restart.TEMPORARY))
    started = time.perf_counter()
    rss_peak = rss_kib()
    for i in range(n):
        sup.terminate_child(f"c{i}")
    stopped = time.perf_counter()
    sup.stop()
    return {
        "start_s": started - start,
        "stop_s": stopped - started,
        "total_s": stopped - start,
        "rss_per_child_bytes": (rss_peak - rss_before) * 1024 / n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--asks", type=int, default=20_000)
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )

    n = args.messages
    bare = best_of(args.runs, lambda: bare_tell(n))
    kern = best_of(args.runs, lambda: kernel_tell(n))
    bare_rtt = statistics.median(bare_ask(args.asks)) * 1e6
    kern_rtt = statistics.median(kernel_ask(args.asks)) * 1e6
    kids = children(args.children)
    figures = {
        "tell_bare_msgs_per_s": n / bare,
        "tell_kernel_msgs_per_s": n / kern,
        "tell_ratio": bare / kern,
        "ask_bare_p50_us": bare_rtt,
        "ask_kernel_p50_us": kern_rtt,
        "ask_ratio": kern_rtt / bare_rtt,
        "children": args.children,
        **{f"children_{k}": v for k, v in kids.items()},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"kernel benchmark (python {sys.version.split()[0]}, gevent {gevent.__version__})")
    print(f"{'figure':<34}{'bare queue':>14}{'kernel':>14}{'ratio':>10}")
    print(f"{'tell throughput (msg/s)':<34}{n / bare:>14,.0f}{n / kern:>14,.0f}{bare / kern:>9.0%}")
    print(
        f"{'ask round trip p50 (us)':<34}{bare_rtt:>14.1f}{kern_rtt:>14.1f}"
        f"{kern_rtt / bare_rtt:>9.2f}x"
    )
    print(
        f"{args.children:,} dynamic children: start {kids['start_s']:.2f} s, "
        f"stop {kids['stop_s']:.2f} s, total {kids['total_s']:.2f} s, "
        f"~{kids['rss_per_child_bytes'] / 1024:.1f} KiB RSS per child"
    )
    ok = bare / kern >= 0.5 and kids["total_s"] < 2.0
    print("targets (tell >= 50% of bare queue, 10k children < 2 s):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
