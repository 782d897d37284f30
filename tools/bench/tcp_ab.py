#!/usr/bin/env python3
"""A/B of two node builds on a noisy machine: the same figures as tcp_bench.py, interleaved.

    python tools/bench/tcp_ab.py --b-tree /path/to/old/checkout [--a-tree PATH]
        [--paths 2plain,2tls] [--rounds 10] [--measure single,echo,conn]
    python tools/bench/tcp_ab.py --b-cmd CMD [--a-cmd CMD] ...

A build given as a tree runs as ``env PYTHONPATH=TREE python -P -m
skupper_actors.node_cli``: ``-P``, because ``python -m`` puts the working directory
(this checkout) first on ``sys.path``, ahead of PYTHONPATH, and both builds would be
this tree. A ``--b-cmd`` that sets PYTHONPATH and runs ``-m`` without ``-P`` is refused
for that reason.

Both builds run at once (one topology each); every round measures each figure on A and
then on B (B first on odd rounds), so that a neighbour's burst falls on both alike.
``tcp_bench.py`` run twice in a row compares one minute with the next; on a shared
machine those differ by more than the 5% an A/B must resolve. Printed per figure: the
medians, the ratio of the medians, the median of the per-round ratios (the steadier
figure) and every sample.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tcp_bench

FIGURES = (
    "single_gbit_node_cpu_s_per_gb",
    "echo_node_cpu_us",
    "conn_node_cpu_us",
    "single_gbit",
    "echo_p50_us",
    "conn_per_s",
)


def bench(paths: list[str], node_cmd: str, amqp_endpoint: bool = False) -> tcp_bench.Bench:
    args = argparse.Namespace(
        quick=True, paths=paths, node_cmd=node_cmd, work_dir=None, throughput_tool="builtin",
        profile=None, json=None, amqp_endpoint=amqp_endpoint,
    )
    made = tcp_bench.Bench(args)
    made.start()
    return made


def observe(build: tcp_bench.Bench) -> None:
    """A skupper-observer reading every node of the build (it stops with the build):
    over AMQP, one per path attached to site a, when the build's sites serve AMQP;
    else one reading every node's management socket."""
    base = [sys.executable, "-m", "skupper_actors.observer.main"]
    if build.amqp_ports:
        for path, port in build.amqp_ports.items():
            argv = [*base, "--listen", f"127.0.0.1:{build.ports.take()}",
                    "--router-url", f"amqp://127.0.0.1:{port}"]
            build.processes.start(argv, build.work / f"observer-{path}.log",
                                  stdout=subprocess.DEVNULL)
        return
    dirs = [str(n.runtime_dir) for t in build.topologies.values() for n in t.nodes]
    argv = [*base, "--listen", f"127.0.0.1:{build.ports.take()}"]
    for folder in dirs:
        argv += ["--management", folder]
    build.processes.start(argv, build.work / "observer.log", stdout=subprocess.DEVNULL)


def tree_command(tree: str) -> str:
    """The node command that runs the checkout at ``tree`` (not the working directory's)."""
    return shlex.join(
        ["env", f"PYTHONPATH={Path(tree).resolve()}", sys.executable, "-P", "-m",
         "skupper_actors.node_cli"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a-cmd", default="", help="build A's node command (default: this tree)")
    parser.add_argument(
        "--b-cmd", default=None, help="build B's node command ('' for this tree)"
    )
    parser.add_argument("--a-tree", default="", help="build A: another checkout's tree")
    parser.add_argument("--b-tree", default="", help="build B: another checkout's tree")
    parser.add_argument("--paths", default="2plain,2tls")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--measure", default="single,echo,conn",
        help="which measurements each round makes (single stream, echo, connections): "
        "fewer make more rounds fit in the same minutes",
    )
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--a-observer", action="store_true",
                        help="attach a skupper-observer to build A's nodes (the cost of records)")
    parser.add_argument("--observer-over-amqp", action="store_true",
                        help="with --a-observer: site a of each path serves AMQP (in both "
                        "builds alike) and the observer attaches there")
    args = parser.parse_args(argv)
    for which in ("a", "b"):
        tree = getattr(args, f"{which}_tree")
        if tree:
            if not (Path(tree) / "skupper_actors" / "node_cli.py").is_file():
                parser.error(f"--{which}-tree {tree}: not a skupper-actors checkout")
            setattr(args, f"{which}_cmd", tree_command(tree))
        command = getattr(args, f"{which}_cmd") or ""
        if "PYTHONPATH=" in command and " -m " in f" {command} " and " -P " not in f" {command} ":
            parser.error(
                f"--{which}-cmd sets PYTHONPATH but runs 'python -m' without -P: the working "
                "directory comes first on sys.path, so it would run this tree (use --"
                f"{which}-tree)"
            )
    if args.b_cmd is None:
        parser.error("build B is needed: --b-tree or --b-cmd")
    paths = args.paths.split(",")
    measures = args.measure.split(",")
    unknown = set(measures) - {"single", "echo", "conn"}
    if unknown:
        parser.error(f"--measure: one or more of single, echo, conn (not {sorted(unknown)})")
    builds: dict[str, tcp_bench.Bench] = {}
    try:
        builds["A"] = bench(paths, args.a_cmd, args.observer_over_amqp)
        builds["B"] = bench(paths, args.b_cmd, args.observer_over_amqp)
        if args.a_observer:
            observe(builds["A"])
        for round_no in range(args.rounds):
            order = ["A", "B"] if round_no % 2 == 0 else ["B", "A"]
            print(f"round {round_no + 1} of {args.rounds}", file=sys.stderr, flush=True)
            for path in paths:
                for name in order:
                    b = builds[name]
                    if "single" in measures:
                        b.measure_throughput(path, "single_gbit", 1)
                    if "echo" in measures:
                        b.measure_echo(path)
                    if "conn" in measures:
                        b.measure_connections(path)
    finally:
        for b in builds.values():
            b.stop()
    print(f"A: {args.a_cmd or 'this tree'}\nB: {args.b_cmd}\n{args.rounds} rounds, interleaved")
    result: dict[str, dict[str, dict[str, list[float]]]] = {}
    for path in paths:
        result[path] = {}
        for figure in FIGURES:
            a = builds["A"].samples[path].get(figure, [])
            b = builds["B"].samples[path].get(figure, [])
            if not a or not b:
                continue
            result[path][figure] = {"A": a, "B": b}
            paired = statistics.median(x / y for x, y in zip(a, b, strict=False))
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{path:6s} {figure:30s} A {ma:9.3f}  B {mb:9.3f}  A/B {ma / mb:5.3f}"
                  f"  paired {paired:5.3f}")
            print(f"{'':37s} A {[round(x, 2) for x in a]}\n{'':37s} B {[round(x, 2) for x in b]}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"a": args.a_cmd, "b": args.b_cmd, "rounds": args.rounds, "samples": result},
            indent=1,
        ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
