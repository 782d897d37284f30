"""Copies on AMD Zen 3+: when ``skupper-node run`` re-executes itself with glibc's tunable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from skupper_actors.memtuning import MARK, NO_REP_MOVSB, slow_rep_movsb, tuned_environment

pytestmark = pytest.mark.timeout(10)

ZEN = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 erms fsrm\n"
OLD_AMD = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 erms\n"
INTEL = "vendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 erms fsrm\n"


def test_amd_with_fsrm_is_the_case_to_tune() -> None:
    assert slow_rep_movsb(ZEN)
    assert not slow_rep_movsb(OLD_AMD)  # no FSRM: glibc keeps rep movsb for big copies only
    assert not slow_rep_movsb(INTEL)
    assert not slow_rep_movsb("")


def test_the_tunable_is_added_to_what_the_user_set() -> None:
    env = tuned_environment({"PATH": "/bin"}, ZEN, "x86_64", "glibc")
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": NO_REP_MOVSB, MARK: "1"}
    env = tuned_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, ZEN, "x86_64", "glibc")
    assert env is not None
    assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{NO_REP_MOVSB}"


@pytest.mark.parametrize(
    ("environ", "cpuinfo", "machine", "libc"),
    [
        ({}, INTEL, "x86_64", "glibc"),  # another CPU
        ({}, ZEN, "aarch64", "glibc"),  # another architecture
        ({}, ZEN, "x86_64", ""),  # musl or unknown C library
        ({"GLIBC_TUNABLES": "glibc.cpu.x86_rep_movsb_threshold=2048"}, ZEN, "x86_64", "glibc"),
        ({MARK: "1"}, ZEN, "x86_64", "glibc"),  # already re-executed: never loop
    ],
)
def test_nothing_to_change(environ: dict[str, str], cpuinfo: str, machine: str, libc: str) -> None:
    assert tuned_environment(environ, cpuinfo, machine, libc) is None


def test_node_cli_imports_little_before_it_may_reexecute() -> None:
    # the first interpreter is thrown away on the CPUs that need the re-exec
    code = (
        "import sys, skupper_actors.node_cli; "
        "print(sorted(m for m in ('gevent', 'structlog', 'proton', 'cryptography') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
