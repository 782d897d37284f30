"""Counting live greenlets (for leak checks); a module of its own so any test can import it."""

from __future__ import annotations

import gc

import gevent


def live_greenlets() -> list[gevent.Greenlet]:
    gc.collect()
    return [g for g in gc.get_objects() if isinstance(g, gevent.Greenlet) and not g.dead]
