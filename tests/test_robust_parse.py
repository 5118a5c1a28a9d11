"""The parser's work stays linear in the packet, with a constant an attacker cannot inflate.

Work is counted, not timed: the number of Python lines executed inside mdnsq while parsing
(sys.settrace), which is deterministic, so these tests cannot flake on a busy machine. Timings of
the same packets are in bench/bench_robust_parse.py.

The bound: a hostile 9000-byte packet may cost at most HOSTILE_FACTOR times the work of an
honest packet of the same size and record count (fuzz/adversarial.honest_ptrs). Each hop of a
compression pointer or label is a few lines, so a parser that walks a 125-pointer chain again for
every record that refers to it costs ~100 times more and fails here.
"""

from __future__ import annotations

import contextlib
import enum
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import mdnsq
from fuzz import adversarial
from mdnsq import MalformedPacket, parse_message
from mdnsq.parser import _clear_memos

MDNSQ_DIR = str(Path(mdnsq.__file__).resolve().parent)
# The enum machinery runs Python lines too: a record type made per record must show.
ENUM_FILE = enum.__file__
# 5 until the fourth session, when the worst of 20 shapes went from 4.6x to 2.1x (runs of labels
# remembered per packet, bare pointers followed without a level of their own; adr/004).
HOSTILE_FACTOR = 3

# Found here: the parser used to memoise a decoded name only under the offset where reading
# started, never under the pointer targets it passed, so every record pointing into a chain
# walked all of it again (50x, 74x and 8.5x the lines of the honest packet for pointer_chain,
# label_chain and max_labels; 26 ms, 59 ms and 3.7 ms for 9000 bytes against 0.6 ms). Fixed in
# 9a991de ("follow uncached pointers by recursion so every pointer target is cached").


# Found here too: names that need escaping (a label that is not UTF-8, or holds '.' or '\\')
# were decoded label by label and cached only under the offset where reading started, so every
# record pointing into the middle of such a name escaped the rest of it again
# (fuzz/adversarial.max_labels_escaped: 14.3x the lines of an honest packet, 16-18 ms for 9000
# bytes against 0.5 ms; found from the fuzzer's slowest input). Fixed by caching the name at
# every inner label of such a run: now 0.5x.

# Found in the second session, with enum's lines counted too (figures against the honest
# packet of the time, before its bare-pointer PTR targets became one lookup):
# - pointers_into_long_names: 8.5x. Only names that needed escaping were cached at every
#   label; a plain name of 127 labels pointed into at each label was walked to its end from
#   each (3.5 ms for 9000 bytes). Now a run entered twice through pointers is cached at every
#   label: 0.8x.
# - long_names_pointed_once_escaped: 3.9x (7.4 ms). Escaped runs were decoded label by label
#   and cached at every label up front, and every pointer to a long escaped name re-parsed its
#   escapes to check the 255-byte limit. Now a run of short labels is escaped in one pass and
#   the limit is checked with C-level passes: 1.8x (2.3 ms; the rest is str.translate).
# - tiny_records: an unknown record type cost an enum call per record (1.1 ms for 9000
#   bytes). Now seen types are looked up in the enum's own map, and a root owner name is not
#   decoded: 0.6 ms, as an honest packet.
# - pointers_into_long_names_backward(_escaped), found in review: 34x (9.5 ms; 18 ms escaped).
#   Caching a run from where the second pointer entered it does nothing for pointers that each
#   enter one label earlier: every one walked the run to its end. Now a walk through a pointer
#   stops at a label whose name is cached: 3.5x (1.1 ms; 6 ms escaped, the 255-byte check).
#   That alone made pointers_into_long_names_zigzag 12x (each pointer from the front ended at
#   a new cached label, so the "entered twice" marker never matched); a walk ended at a cached
#   label other than the run's last now caches at once: 1.9x.

# Found in the third session by `make fuzz` (its slowest input: 472 bytes, 21 ms to parse): a
# name whose pointer leads back into its own run of long labels. A pointer to a name not read
# yet was followed at once, and only a failure was cached, so each lap of the loop walked and
# decoded the run again until the hop limit (126 laps). looping_long_names(_escaped): 125 ms
# (230 ms) for 9000 bytes, several hundred times an honest packet. A name is now marked bad
# while it is being read, so the first lap back fails: 0.9 ms (2.3 ms).

# Fifteenth session, a `make fuzz` run with inputs up to 9000 bytes: its slowest input
# (escaped_suffixes_of_a_skipped_question) parses at 1.6x (1.7x before one-byte labels were
# read from a table), inside the bound with no exception: each new name costs its label and
# one string, the per-new-name floor of adr/004. Its cost was in the writer
# (tests/test_codec_review15.py).


def parse_work(data: bytes) -> int:
    """Lines executed inside the mdnsq package (and enum) while parsing ``data``, as if it were
    the first packet seen: the memos the parser shares between packets (wire lengths, NSEC
    bitmaps, record types) are cleared first, so a count does not depend on which tests ran
    before (warm, nsec_tiny_windows cost 0.04x an honest packet instead of 1.49x)."""

    def parse() -> None:
        with contextlib.suppress(MalformedPacket):
            parse_message(data)

    _clear_memos()
    return count_work(parse)


def count_work(call: Callable[[], object]) -> int:
    """Lines executed inside the mdnsq package and the enum module during ``call()``
    (deterministic, unlike time)."""
    count = 0

    def count_lines(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return count_lines

    def enter(frame: FrameType, event: str, arg: Any) -> Any:
        filename = frame.f_code.co_filename
        if filename.startswith(MDNSQ_DIR) or filename == ENUM_FILE:
            return count_lines
        return None

    previous = sys.gettrace()
    sys.settrace(enter)
    try:
        call()
    finally:
        sys.settrace(previous)
    return count


@pytest.fixture(scope="module")
def honest_work() -> int:
    work = parse_work(adversarial.honest_ptrs())
    assert work > 1000
    return work


@pytest.mark.parametrize("name", sorted(set(adversarial.BUILDERS) - {"honest_ptrs"}))
def test_hostile_9000_byte_packet_costs_at_most_a_few_honest_ones(
    name: str, honest_work: int
) -> None:
    packet = adversarial.BUILDERS[name]()
    assert len(packet) <= 9000
    work = parse_work(packet)
    print(f"{name}: {work} lines, {work / honest_work:.1f} x honest")
    assert work <= HOSTILE_FACTOR * honest_work


def test_work_grows_linearly_with_record_count() -> None:
    # The same record repeated: twice the records, about twice the work (not four times).
    record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x78\x00\x04\xc0\x00\x02\x01"
    head = adversarial.header(qd=1) + b"\x04host\x05local\x00\x00\x01\x00\x01"

    def packet(n: int) -> bytes:
        return head[:6] + n.to_bytes(2, "big") + head[8:] + record * n

    small, large = parse_work(packet(250)), parse_work(packet(500))
    assert large <= 2.2 * small


def test_pointer_loops_stop_after_a_bounded_number_of_hops() -> None:
    # A question whose name is a pointer to itself: rejected after a constant amount of work.
    # (Stepped over in place, it is skipped and counted: thirteenth session.)
    loop = adversarial.header(qd=1) + b"\xc0\x0c\x00\x01\x00\x01"
    assert parse_message(loop).skipped == 1
    # 126 hops of ~20 lines each today; the point is a constant, far below one honest packet.
    assert parse_work(loop) < 10_000
