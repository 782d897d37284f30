"""py-spy recordings of node processes for the TCP benchmark, and their summaries.

A recording is py-spy's ``raw`` format (one collapsed stack and its sample count per
line, idle samples left out), so ``busy`` is the share of wall time the process ran
Python code. The summary lists the functions with the most samples at the top of the
stack (self) and anywhere in it (total).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 250
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(
    pids: dict[str, int], seconds: int, prefix: Path
) -> list[tuple[Path, subprocess.Popen[bytes]]]:
    """Start one py-spy per process; wait on the returned processes, then ``summarize``."""
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    started = []
    for site, pid in pids.items():
        out = prefix.parent / f"{prefix.name}-{site}.txt"
        proc = subprocess.Popen(
            [tool, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(RATE),
             "--format", "raw", "--nonblocking", "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started.append((out, proc))
    return started


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("skupper_actors/", "site-packages/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


# Where a sample's time goes, by the innermost frame of the stack that names a phase of a
# TCP connection's life (a stack can hold several: the link reader's greenlet runs the
# attach handler, which flushes output; the flush is where that time went). Matched on
# "function (file)" as ``_short`` writes it; the first rule that matches a frame wins.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("link output: proton encode, TLS, send", (
        "LinkSession.flush ", "LinkSession._push ", "LinkSession._flush_soon_now ",
        "TlsWire.write_some ", "TlsWire.drain ", "PlainWire.write_some ", "PlainWire.drain ")),
    ("vanflow records", ("VanflowActor.", "Emitter.", "tell_vanflow ")),
    ("attach received", ("EngineEvents._on_link_remote_open ", "LinkTable.accept ")),
    ("detach received", ("EngineEvents._on_link_remote_close ",)),
    ("transfer received", ("EngineEvents._on_delivery ", "Reader.stream ")),
    ("flow received", ("EngineEvents._on_link_flow ",)),
    ("stream opened (attach sent)", (
        "LinkSession.open_stream ", "Forwarder.open_stream ", "AmqpConnection.start_stream ")),
    ("stream ended (detach sent)", (
        "LinkSession.stream_ended ", "SocketSink.end ", "LinkSession.detach")),
    ("acknowledgements", ("DataPlane.send_ack ", "Forwarder.router_message ")),
    ("client socket: read, write", (
        "TcpConnectionActor._on_readable ", "TcpConnectionActor._on_first_readable ",
        "TcpConnectionActor._send_now ", "TcpConnectionActor._write_loop ",
        "TcpConnectionActor._socket_ended ")),
    ("egress connect", (
        "EgressConnection._set_up ", "EgressConnection._connected ", "EgressConnection._begin ",
        "EgressConnection._connect_done ", "PendingConnect.")),
    ("ingress set-up", (
        "IngressConnection._set_up ", "IngressConnection._next_attempt ",
        "IngressConnection._start_attempt ", "IngressConnection._settle ",
        "IngressConnection._attempt_over ", "IngressConnection._begin ")),
    ("actor stop", (
        "Actor._kernel_exit ", "TcpConnectionActor.on_stop ", "TcpConnectionActor._finish ")),
    ("actor start", (
        "TcpConnectorActor._start_egress ", "_start_connection ", "TcpConnectorActor._accept ",
        "Supervisor.", "Actor._launch ", "TcpConnectionActor.on_start ",
        "TcpConnectionActor.__init__ ")),
    ("accept", ("accept_forever ", "CallbackAcceptor.", "TcpListenerActor._take ")),
    ("link input: recv, TLS, proton decode", (
        "LinkActor._receive ", "TlsWire.read ", "PlainWire.read ")),
    ("actor messages", ("Actor._kernel_", "Mailbox.")),
)
OTHER = "event loop, other"


def phase_of(frames: list[str]) -> str:
    """The phase of one sample: the innermost frame a rule names."""
    for frame in reversed(frames):
        for phase, markers in PHASES:
            if frame.startswith(markers):
                return phase
    return OTHER


def phases(raw: Path) -> tuple[int, Counter[str]]:
    """Samples of one recording, and their count per phase."""
    counts: Counter[str] = Counter()
    samples = 0
    for frames, count in _stacks(raw):
        samples += count
        counts[phase_of(frames)] += count
    return samples, counts


def phase_table(raw: Path, cpu_us_per_unit: float | None = None) -> str:
    """Shares per phase, and µs per unit of work when the process's CPU per unit is known."""
    samples, counts = phases(raw)
    if samples == 0:
        return f"{raw.name}: no samples"
    head = f"{raw.name}: phases ({samples} samples"
    head += f", {cpu_us_per_unit:.0f} CPU µs per unit)" if cpu_us_per_unit else ")"
    lines = [head]
    for phase, n in counts.most_common():
        share = n / samples
        us = f"  {share * cpu_us_per_unit:7.1f} µs" if cpu_us_per_unit else ""
        lines.append(f"    {share:6.1%}{us}  {phase}")
    return "\n".join(lines)


def _stacks(raw: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in raw.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        frames = [_short(f) for f in match["stack"].split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if frames:
            out.append((frames, int(match["count"])))
    return out


def summarize(raw: Path, seconds: float, top: int = 12) -> str:
    """Top functions of one recording, as text."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    samples = 0
    for frames, count in _stacks(raw):
        samples += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            total_counts[frame] += count
    if samples == 0:
        return f"{raw.name}: no samples"
    busy = samples / (RATE * seconds)
    lines = [f"{raw.name}: {samples} samples, busy ~{busy:.0%} of wall time"]
    lines.append("  self:")
    lines += [f"    {n / samples:6.1%}  {name}" for name, n in self_counts.most_common(top)]
    lines.append("  total (in the stack):")
    skip = ("<module>", "run (", "_run_code", "_run_module_as_main", "main (")
    interesting = [(k, v) for k, v in total_counts.most_common() if not k.startswith(skip)]
    lines += [f"    {n / samples:6.1%}  {name}" for name, n in interesting[:top]]
    return "\n".join(lines)
