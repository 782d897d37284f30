"""`skupper`: the command line of a bare-metal site, in the shape of Skupper v2's CLI.

The commands only write resource files into the namespace's `input/resources` folder and
read back what the node reports (status files, the management socket); the node
(`skupper-node run -n <namespace>`) does the work. Entry point: `skupper_actors.cli.main:main`.
"""

from __future__ import annotations
