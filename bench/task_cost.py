"""Print what one wake-up of a browse and a watch costs with N instances known and nothing
changed (adr/005 §2): each task method, best of 5, for N = 10, 100, 500 and 2,000; then a whole
wake-up after one new PTR record of the type, up to 4,000 instances.

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
from mdnsq.instances import BrowseTask, WatchTask
from mdnsq.names import name_key
from mdnsq.records import Message
from tests.fakes import ptr, service_records

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


def new_ptr_row(count: int, bare: bool = False) -> dict[str, float]:
    """A whole wake-up (update, needs, refreshes, wake_at) after one new PTR record of the
    type, told the keys that changed as the Querier tells it, in ms: best of 5 wake-ups.
    ``bare``: the instances are a peer's PTR records with nothing behind them."""
    figures = {}
    for cls in (WatchTask, BrowseTask):
        cache = RecordCache(100_000, report_changes=True)
        cache.want(STYPE)
        for i in range(count):
            address = f"192.0.2.{i % 250 + 1}"
            records = service_records(f"inst{i}", STYPE, f"h{i}.local", 80, address)
            if bare:
                records = records[:1]
            cache.add_received([(Message(answers=records), 1)], 1000.0)
        cache.take_changed_keys()
        task = cls(STYPE)
        task.update(cache, 1000.0)
        best = float("inf")
        for k in range(5):
            now = 1000.1 + k / 100
            cache.add_received([(Message(answers=(ptr(STYPE, f"new{k}.{STYPE}"),)), 1)], now)
            task.changed({name_key(STYPE)}, cache.take_changed_keys())
            start = time.perf_counter()
            task.update(cache, now)
            list(task.needs(cache, now))
            task.refreshes(cache, now)
            task.wake_at(cache, now)
            best = min(best, time.perf_counter() - start)
        figures[f"{cls.__name__[:-4].lower()} wake-up"] = best * 1e3
    return figures


def main() -> None:
    for count in (10, 100, 500, 2000):
        figures = ", ".join(f"{k} {v:.2f} ms" for k, v in row(count).items())
        print(f"{count:5d} instances: {figures}")
    print("One new PTR record of the type:")
    for count in (10, 100, 500, 2000, 4000):
        figures = ", ".join(f"{k} {v:.2f} ms" for k, v in new_ptr_row(count).items())
        print(f"{count:5d} instances: {figures}")
    figures = ", ".join(f"{k} {v:.2f} ms" for k, v in new_ptr_row(4000, bare=True).items())
    print(f" 4000 bare PTR records: {figures}")


if __name__ == "__main__":
    main()
