"""Copies on AMD Zen 3+: when ``skupper-node run`` re-executes itself with glibc's tunable."""

from __future__ import annotations

import pytest

from skupper_actors import logconfig, node_cli
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


def test_node_cli_offers_the_log_levels_logconfig_knows() -> None:
    # node_cli keeps its own copy so that its import stays light (before the re-exec)
    assert tuple(sorted(logconfig.LEVELS)) == node_cli.LOG_LEVELS
