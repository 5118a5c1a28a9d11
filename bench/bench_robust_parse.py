"""Time of parse_message on hostile 9000-byte packets, as a ratio to an honest one.

The honest baseline (fuzz/adversarial.honest_ptrs: same size, same record count, every name one
pointer away) is timed in the same process, so the ratio means something on a busy machine.
tests/test_robust_parse.py asserts the deterministic form (lines executed); here the ratio is
measured and reported, and only a gross regression (RATIO_LIMIT) fails the run.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from fuzz import adversarial
from mdnsq import parse_message

RATIO_LIMIT = 10.0


def best_of(packet: bytes, repeats: int = 5, number: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            parse_message(packet)
        best = min(best, (time.perf_counter() - start) / number)
    return best


@pytest.mark.parametrize("name", sorted(set(adversarial.BUILDERS) - {"honest_ptrs"}))
def test_hostile_packet_parse_time(benchmark: Any, name: str) -> None:
    packet = adversarial.BUILDERS[name]()
    benchmark(parse_message, packet)
    honest = best_of(adversarial.honest_ptrs())
    hostile = best_of(packet)
    ratio = hostile / honest
    print(f"{name}: {hostile * 1e3:.2f} ms, honest {honest * 1e3:.2f} ms, ratio {ratio:.1f}")
    assert ratio < RATIO_LIMIT
