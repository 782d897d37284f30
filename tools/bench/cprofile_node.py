"""Run ``skupper-node`` with cProfile switched on and off by signals (for unit_costs.py).

    env PYTHONPATH=TREE CPROFILE_DIR=DIR python -P tools/bench/cprofile_node.py run -c ...

SIGUSR1 starts profiling; SIGUSR2 stops it and writes ``DIR/<pid>.prof`` (pstats).
Everything else is the node as ``python -m skupper_actors.node_cli`` runs it. A bench
tool only: profiling slows the node severalfold, so read its counts, not its times.
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
from pathlib import Path
from types import FrameType

_profile = cProfile.Profile()
_folder = Path(os.environ.get("CPROFILE_DIR", "."))


def _start(signum: int, frame: FrameType | None) -> None:
    _profile.enable()


def _stop(signum: int, frame: FrameType | None) -> None:
    _profile.disable()
    _folder.mkdir(parents=True, exist_ok=True)
    _profile.dump_stats(_folder / f"{os.getpid()}.prof")


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
    sys.argv = ["skupper-node", *sys.argv[1:]]
    runpy.run_module("skupper_actors.node_cli", run_name="__main__", alter_sys=True)
