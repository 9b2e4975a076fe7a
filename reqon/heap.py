"""When reqon lets Python's cyclic garbage collector run, in one place.

The collector runs every 700 new container objects and walks the young ones; now and then
it walks everything. What reqon allocates in bulk is never cyclic garbage: the modules,
AST and clients of start-up live as long as the run, and a parse builds a tree without a
cycle. Walking them frees nothing and was measured (bench/README.md): 14 ms of a 0.29 s
one-GET run during start-up, 14–16 % of a 6,000-line parse, and a full collection of
20–30 ms in the middle of a 0.5 s run.
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def no_collection() -> Iterator[None]:
    """No automatic collection inside; afterwards, whatever was the case before.

    A `long_lived` block inside turns collection on for its own extent (the run), so
    start-up wrapped in this costs no collections and the run still collects."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@contextlib.contextmanager
def long_lived() -> Iterator[None]:
    """Everything alive now is frozen (skipped by every collection) and collection is on,
    for the extent of the block: for a run, whose own garbage is then collected without
    walking the start-up heap. Unfrozen at the end, so that a process running several
    missions (the tests) collects that heap normally afterwards."""
    gc.freeze()
    gc.enable()
    try:
        yield
    finally:
        gc.unfreeze()
