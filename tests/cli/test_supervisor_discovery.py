"""Which supervisord configuration `system install` picks, in the order the docs give."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.cli.supervisorconf import find_config, running_configs

pytestmark = pytest.mark.timeout(30)


def config(path: Path, include: str = "conf.d/*.conf") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[include]\nfiles = {include}\n")
    return path


def test_the_users_own_comes_before_a_running_one_and_the_systems(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home")}
    running = config(tmp_path / "run" / "supervisord.conf")
    system = config(tmp_path / "etc" / "supervisord.conf")
    found = find_config(None, env, running=[running], system_configs=[str(system)], is_root=True)
    assert found.path == running and found.found_by == "the running supervisord"
    mine = config(tmp_path / "home" / ".config" / "supervisor" / "supervisord.conf")
    found = find_config(None, env, running=[running], system_configs=[str(system)], is_root=True)
    assert found.path == mine and found.found_by == "your configuration"
    assert found.include_folder() == mine.parent / "conf.d"


def test_the_systems_only_as_root(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    system = config(tmp_path / "etc" / "supervisor" / "supervisord.conf", "/x/conf.d/*.conf")
    found = find_config(None, env, running=[], system_configs=[str(system)], is_root=True)
    assert found.path == system and found.include_folder() == Path("/x/conf.d")
    with pytest.raises(CliError) as caught:
        find_config(None, env, running=[], system_configs=[str(system)], is_root=False)
    assert caught.value.code == ExitCode.NOT_FOUND
    assert caught.value.message == (
        "no supervisord configuration found (no supervisord of yours runs, no "
        "~/.config/supervisor/supervisord.conf, and only root uses the system's): pass "
        "--supervisorctl-config FILE, or use --systemd"
    )


def test_two_running_supervisords_must_be_told_apart(tmp_path: Path) -> None:
    one, two = config(tmp_path / "a.conf"), config(tmp_path / "b.conf")
    with pytest.raises(CliError) as caught:
        find_config(None, {"HOME": str(tmp_path)}, running=[one, two], is_root=False)
    assert caught.value.code == ExitCode.SYSTEM
    assert "--supervisorctl-config" in caught.value.message


def test_running_configs_reads_the_configuration_a_supervisord_process_was_given(
    tmp_path: Path,
) -> None:
    # a process named supervisord with -c: the scan reads /proc, nothing is parsed here
    fake = tmp_path / "supervisord"
    fake.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    fake.chmod(0o755)
    conf = config(tmp_path / "mine.conf")
    process = subprocess.Popen([str(fake), "-c", "mine.conf"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while conf not in running_configs():
            assert time.monotonic() < deadline, "the scan did not find the process"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    assert conf not in running_configs()
