"""The README's main job. Until the router mesh lands this runs the kernel benchmark."""

from __future__ import annotations

import pathlib
import runpy
import sys

if __name__ == "__main__":
    bench = pathlib.Path(__file__).with_name("bench") / "kernel_bench.py"
    sys.argv = [str(bench), *sys.argv[1:]]
    runpy.run_path(str(bench), run_name="__main__")
