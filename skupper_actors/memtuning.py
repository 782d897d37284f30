"""Memory copies on AMD Zen 3 and later: keep glibc from using ``rep movsb`` for them.

Those CPUs announce FSRM (fast short ``rep movsb``), so glibc copies every block above a
few KiB with ``rep movsb``, which on them runs up to 20 times slower when the destination
is not 16-byte aligned. Proton writes each transfer frame's payload after a 29-byte
header, so every byte a node forwards went through that slow path: on this project's
2-vCPU AMD EPYC machine the copy into the frame buffer took 27% of an ingress node's CPU
time, and 5% with glibc's vector loop instead (ADR 0008).

glibc reads its tunables once, when the process starts, so ``skupper-node run`` re-executes
itself (same process id, same arguments) with ``GLIBC_TUNABLES`` raising
``glibc.cpu.x86_rep_movsb_threshold`` above any copy it makes. Nothing happens on other
CPUs, other C libraries, or when ``GLIBC_TUNABLES`` already sets that tunable: set it to
glibc's own value (e.g. ``glibc.cpu.x86_rep_movsb_threshold=2048``) to keep glibc's choice.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

TUNABLE = "glibc.cpu.x86_rep_movsb_threshold"
NO_REP_MOVSB = f"{TUNABLE}={(1 << 32) - 1}"  # above any copy: the vector loop always
MARK = "SKUPPER_NODE_MEMCPY_TUNED"  # set in the re-executed process: never loop


def slow_rep_movsb(cpuinfo: str) -> bool:
    """An AMD CPU that announces FSRM (Zen 3 and later), from /proc/cpuinfo's text."""
    vendor = flags = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key == "flags" and not flags:
            flags = value
        if vendor and flags:
            break
    return vendor in ("AuthenticAMD", "HygonGenuine") and "fsrm" in flags.split()


def tuned_environment(
    environ: Mapping[str, str], cpuinfo: str, machine: str, libc: str
) -> dict[str, str] | None:
    """The environment to re-execute with, or None when there is nothing to change."""
    if MARK in environ or machine not in ("x86_64", "AMD64") or libc != "glibc":
        return None
    current = environ.get("GLIBC_TUNABLES", "")
    if TUNABLE in current or not slow_rep_movsb(cpuinfo):
        return None
    tuned = dict(environ)
    tuned["GLIBC_TUNABLES"] = f"{current}:{NO_REP_MOVSB}" if current else NO_REP_MOVSB
    tuned[MARK] = "1"
    return tuned


def reexec_with_fast_copies() -> None:
    """Replace this process by itself with the tunable set, when it helps; else return."""
    if not sys.platform.startswith("linux"):
        return
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            cpuinfo = file.read()
    except OSError:
        return
    environ = tuned_environment(os.environ, cpuinfo, platform.machine(), platform.libc_ver()[0])
    if environ is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, environ)
    except OSError:
        return  # cannot re-execute (odd interpreter path): run untuned rather than not at all
