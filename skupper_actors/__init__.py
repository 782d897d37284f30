"""skupper-actors: a virtual application network for bare-metal hosts, on gevent actors."""

__version__ = "0.1.0"
