"""Throughput through iperf3 (Debian package ``iperf3``) for the TCP benchmark."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import loadgen
from benchnodes import Processes, listening, wait_until


class Iperf3:
    """A persistent ``iperf3 -s``; restarted if a test leaves it stuck."""

    def __init__(self, port: int, processes: Processes, log: Path) -> None:
        self.port = port
        self.processes = processes
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = subprocess.run(
            ["iperf3", "--version"], capture_output=True, text=True, check=False
        ).stdout.split("\n", 1)[0].strip()
        self.start()

    def start(self) -> None:
        self.proc = self.processes.start(
            ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(self.port)],
            self.log,
            stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: listening(self.port), 10, "iperf3 -s to listen")

    def restart(self) -> None:
        if self.proc is not None:
            self.processes.stop(self.proc)
        self.start()

    def run(self, port: int, seconds: int, streams: int) -> loadgen.Throughput:
        argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds),
                "-l", "256K", "-J"]
        if streams > 1:
            argv += ["-P", str(streams)]
        for _ in range(20):
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, timeout=seconds * 4 + 30
                )
                report = json.loads(done.stdout or "{}")
            except (subprocess.TimeoutExpired, ValueError) as error:
                self.restart()
                raise loadgen.BenchError(f"iperf3: {error}") from None
            # the server still ends the previous test (its streams close through the nodes)
            if "busy" not in str(report.get("error", "")):
                break
            time.sleep(0.25)
        if "error" in report or "end" not in report:
            self.restart()
            raise loadgen.BenchError(f"iperf3: {report.get('error', done.stderr.strip())}")
        received = report["end"]["sum_received"]
        return loadgen.Throughput(
            streams=streams,
            bytes=int(received["bytes"]),
            seconds=float(received["seconds"]),
            gbit_per_s=float(received["bits_per_second"]) / 1e9,
            tool="iperf3",
        )
