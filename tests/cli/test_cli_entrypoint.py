"""The real entry point in a subprocess: help for every command, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skupper_actors.cli.errors import ExitCode
from skupper_actors.cli.main import cli as command_group

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def skupper(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SKUPPER_ACTORS_HOME": str(home), "HOME": str(home)}
    env.pop("SKUPPER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "skupper_actors.cli.main", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False,
    )


def all_commands() -> list[list[str]]:
    found: list[list[str]] = []
    for name, group in sorted(command_group.commands.items()):
        found.append([name])
        for sub in sorted(getattr(group, "commands", {})):
            found.append([name, sub])
    return found


def test_every_command_has_help(tmp_path: Path) -> None:
    """In-process over every command (fast); each help names its command and options."""
    import io

    from skupper_actors.cli.context import CliEnv
    from skupper_actors.cli.main import main

    commands = all_commands()
    assert len(commands) >= 40
    for words in commands:
        out, err = io.StringIO(), io.StringIO()
        env = CliEnv(stdout=out, stderr=err, stdin=io.StringIO(), environ={"HOME": str(tmp_path)})
        assert main([*words, "--help"], env=env) == 0, words
        text = out.getvalue()
        assert text.startswith(f"Usage: skupper {' '.join(words)} "), text
        assert "--help" in text


def test_help_and_an_error_through_the_entry_point(tmp_path: Path) -> None:
    helped = skupper("--help", home=tmp_path)
    assert helped.returncode == 0
    assert "Exit codes:" in helped.stdout and "node is not running" in helped.stdout
    failed = skupper("-n", "west", "listener", "delete", "web", home=tmp_path)
    assert failed.returncode == ExitCode.NOT_FOUND
    assert failed.stderr == "skupper: error: Listener 'web' not found in namespace 'west'\n"
    usage = skupper("site", "create", home=tmp_path)
    assert usage.returncode == ExitCode.USAGE
    assert "Missing argument 'NAME'" in usage.stderr
    assert "Traceback" not in failed.stderr + usage.stderr
