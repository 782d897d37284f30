"""``skupper-chaos``: run a chaos scenario on real nodes; report whether the invariants held.

    skupper-chaos run scenario.yaml --seed 7 --duration 60s --out DIR
    skupper-chaos plan scenario.yaml --seed 7        # print the fault schedule only

Exit status: 0 every invariant held, 1 an invariant failed, 2 the scenario or the
command line is wrong, 3 the harness could not set the run up, 130 interrupted.
"""

from __future__ import annotations

import argparse
import enum
import signal
import sys
from pathlib import Path
from typing import TextIO

import gevent

from skupper_actors.logconfig import configure_logging

from ._schema import load_scenario
from .runner import HarnessError, Progress, run_scenario
from .scenario import ScenarioError
from .schedule import plan_schedule
from .units import format_bytes, parse_duration


class ExitStatus(enum.IntEnum):
    OK = 0
    INVARIANT_FAILED = 1
    BAD_SCENARIO = 2
    HARNESS_ERROR = 3
    INTERRUPTED = 130


class ProgressDisplay:
    """One status line redrawn in place on a terminal; plain lines every 10 s otherwise."""

    def __init__(self, stream: TextIO, *, interactive: bool | None = None) -> None:
        self.stream = stream
        self.interactive = stream.isatty() if interactive is None else interactive
        self._last_plain = -10.0

    def __call__(self, progress: Progress) -> None:
        status = (
            f"[{progress.phase}] {progress.at:6.1f}/{progress.duration:g}s  "
            f"faults {progress.faults_done}/{progress.faults_total}  "
            f"nodes up {progress.nodes_up}/{progress.nodes}  "
            f"intact {progress.intact}  errors {progress.errors}  "
            f"open {progress.open_connections}  verified {format_bytes(progress.bytes_verified)}"
        )
        if progress.active_faults:
            status += "  active: " + ", ".join(progress.active_faults)
        if self.interactive:
            self.stream.write("\r\x1b[K")
            for message in progress.messages:
                self.stream.write(message + "\n")
            self.stream.write(status[:200])
        else:
            for message in progress.messages:
                self.stream.write(message + "\n")
            if progress.at - self._last_plain >= 10 or progress.phase != "running":
                self._last_plain = progress.at
                self.stream.write(status + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


def _interrupt_main_on(*signals: int) -> None:
    """Turn these signals into KeyboardInterrupt in the main greenlet, so that the run's
    clean-up (stopping every node it started) happens even under ``kill`` or in the
    background, where a shell leaves SIGINT ignored."""
    main = gevent.getcurrent()
    hub = gevent.get_hub()

    def interrupt() -> None:
        hub.loop.run_callback(main.throw, KeyboardInterrupt())

    for signum in signals:
        gevent.signal_handler(signum, interrupt)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as error:
        print(f"skupper-chaos: {error}", file=stderr)
        return ExitStatus.BAD_SCENARIO
    seed = scenario.seed if args.seed is None else args.seed
    out = args.out or Path("chaos-runs") / f"{scenario.name}-seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "harness.log", "a", encoding="utf-8") as harness_log:
        configure_logging(args.log_level, json=True, stream=harness_log)
        display = ProgressDisplay(stdout)
        _interrupt_main_on(signal.SIGTERM, signal.SIGINT)
        try:
            report = run_scenario(
                scenario,
                out=out,
                seed=seed,
                duration=args.duration,
                progress=display,
                source=args.scenario,
            )
        except ScenarioError as error:
            display.close()
            print(f"skupper-chaos: {error}", file=stderr)
            return ExitStatus.BAD_SCENARIO
        except HarnessError as error:
            display.close()
            print(f"skupper-chaos: {error}", file=stderr)
            return ExitStatus.HARNESS_ERROR
        except KeyboardInterrupt:
            display.close()
            print("skupper-chaos: interrupted; nodes stopped, no report", file=stderr)
            return ExitStatus.INTERRUPTED
        display.close()
    stdout.write(report.summary_path.read_text())
    stdout.write(f"report: {out}\n")
    return ExitStatus.OK if report.passed else ExitStatus.INVARIANT_FAILED


def plan(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> ExitStatus:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as error:
        print(f"skupper-chaos: {error}", file=stderr)
        return ExitStatus.BAD_SCENARIO
    seed = scenario.seed if args.seed is None else args.seed
    duration = scenario.duration if args.duration is None else args.duration
    try:
        for event in plan_schedule(scenario, seed=seed, duration=duration):
            stdout.write(f"+{event.at:8.3f}s  {event.describe()}  [{event.origin}]\n")
    except BrokenPipeError:  # `| head`
        pass
    return ExitStatus.OK


def main(
    argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = argparse.ArgumentParser(
        prog="skupper-chaos", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, function, text in (
        ("run", run, "start the topology, inject the faults, check the invariants"),
        ("plan", plan, "print the fault schedule a seed gives, without running anything"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("scenario", help="scenario file (YAML)")
        command.add_argument("--seed", type=int, help="seed (default: the scenario's)")
        command.add_argument(
            "--duration", type=_duration, help="traffic time, e.g. 60s or 30m (default: scenario's)"
        )
        command.set_defaults(func=function)
        if name == "run":
            command.add_argument("--out", type=Path, help="report folder (default: chaos-runs/…)")
            command.add_argument(
                "--log-level", choices=("debug", "info", "warning", "error"), default="info"
            )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) and int(ExitStatus.BAD_SCENARIO)
    return int(args.func(args, out, err))


if __name__ == "__main__":
    raise SystemExit(main())
