"""Print what one wake-up of a browse and a watch costs with N instances known and nothing
changed (adr/005 §2): each task method, best of 5, for N = 10, 100, 500 and 2,000.

    .venv/bin/python bench/task_cost.py

No network: the instances' records are filed straight into a RecordCache.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdnsq.cache import RecordCache
from mdnsq.records import Message
from mdnsq.tasks import BrowseTask, WatchTask
from tests.fakes import service_records

STYPE = "_http._tcp.local"


def best_ms(call: Callable[[], object], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def row(count: int) -> dict[str, float]:
    """The cost of each call of one wake-up with ``count`` instances known, in ms."""
    cache = RecordCache(100_000)
    for i in range(count):
        address = f"192.0.2.{i % 250 + 1}"
        records = service_records(f"inst{i}", STYPE, f"h{i}.local", 80, address)
        cache.add_received([(Message(answers=records), 1)], 1000.0)
    watch, browse = WatchTask(STYPE), BrowseTask(STYPE)
    watch.update(cache, 1000.0)
    browse.update(cache, 1000.0)
    now = 1000.1
    return {
        "watch update": best_ms(lambda: watch.update(cache, now)),
        "refreshes": best_ms(lambda: watch.refreshes(cache, now)),
        "wake_at": best_ms(lambda: watch.wake_at(cache, now)),
        "needs": best_ms(lambda: list(watch.needs(cache, now))),
        "browse update": best_ms(lambda: browse.update(cache, now)),
    }


def main() -> None:
    for count in (10, 100, 500, 2000):
        figures = ", ".join(f"{k} {v:.2f} ms" for k, v in row(count).items())
        print(f"{count:5d} instances: {figures}")


if __name__ == "__main__":
    main()
