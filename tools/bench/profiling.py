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


def summarize(raw: Path, seconds: float, top: int = 12) -> str:
    """Top functions of one recording, as text."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        count = int(match["count"])
        frames = [_short(f) for f in match["stack"].split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
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
