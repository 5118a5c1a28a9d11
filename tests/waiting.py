"""Bounded polls, for state no event reports: a thread blocked inside poll(), calls registered
inside a Querier. Never a sleep that stands for synchronisation: the predicate is the thing
waited for, the step only keeps the poll from burning a CPU."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll_until(predicate: Callable[[], bool], limit: float, step: float = 0.002) -> bool:
    """Poll ``predicate`` until it holds or ``limit`` seconds pass; whether it holds."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() >= end:
            return False
        time.sleep(step)
    return True


def wait_for(predicate: Callable[[], bool], limit: float = 10.0, what: str = "") -> None:
    """poll_until, failing the test if the condition is not reached in time."""
    assert poll_until(predicate, limit), what or "condition not reached"
