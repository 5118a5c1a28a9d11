"""The shared cache under hostile input: bounded work per record, whatever the records say.

Work is counted as Python lines executed inside mdnsq (deterministic, see test_robust_parse.py),
never timed. The bound: applying a packet of cache-flush records costs at most FLUSH_FACTOR
times applying the same packet without the flush bit.
"""

from __future__ import annotations

from mdnsq import Message, PTRRecord, Record, RecordCache, encode_message, parse_message
from tests.test_robust_parse import count_work

FLUSH_FACTOR = 5
IFINDEX = 2

# Found here: _flush scanned the whole (name, type, class) bucket for every cache-flush record,
# also after an earlier record of the same packet had flushed it (records x bucket size: 105 ms
# against 0.8 ms for 500 records into a 3,000-entry bucket). Fixed in e4b1aa0 (one scan per
# rrset per packet).
#
# Found here too: eviction walked the entries from the oldest for every record it evicted, past
# every entry under a name a call waits for. Once the cache was full of records under the name
# being resolved (anyone can send them: the name is in our queries), each further packet of 400
# records cost 135 ms. Fixed by evicting a sixteenth of the bound in one pass (cache._evict).


# Not a DNS-SD type: the cache-flush bit of a service type's PTR record flushes nothing.
VICTIM = "victim.local"


def one_name_records(start: int, count: int, flush: bool) -> tuple[Record, ...]:
    """``count`` PTR records of one name, distinct targets, as the parser returns them. PTR,
    because the cache holds at most MAX_RRSET records of one name of any other type; a peer
    can still send thousands of PTR records of one name, with the cache-flush bit or without."""
    records = tuple(
        PTRRecord(name=VICTIM, ttl=4500, target=f"i{start + i}.{VICTIM}", cache_flush=flush)
        for i in range(count)
    )
    return parse_message(encode_message(Message(flags=0x8400, answers=records))).answers


def filled_cache() -> RecordCache:
    cache = RecordCache(4096)
    for k in range(5):
        cache.add_all(one_name_records(k * 200, 200, False), IFINDEX, 100.0)
    assert len(cache) == 1000
    return cache


def test_a_packet_of_cache_flush_records_costs_about_a_plain_one() -> None:
    plain = count_work(
        lambda: filled_cache().add_all(one_name_records(100_000, 300, False), IFINDEX, 105.0)
    )
    flush = count_work(
        lambda: filled_cache().add_all(one_name_records(100_000, 300, True), IFINDEX, 105.0)
    )
    baseline = count_work(filled_cache)
    print(f"plain {plain - baseline} lines, flush {flush - baseline} lines")
    assert flush - baseline <= FLUSH_FACTOR * (plain - baseline)


def test_cache_flush_still_flushes_every_older_record() -> None:
    cache = filled_cache()
    cache.add_all(one_name_records(100_000, 1, True), IFINDEX, 105.0)
    assert cache.flushed == 1000
    cache.expire(107.0)
    assert len(cache) == 1


def test_a_cache_full_of_wanted_records_costs_no_more_to_add_to() -> None:
    """A packet of 400 more records under the name being resolved, into a cache already full
    of them, costs about what it costs when nobody waits for that name."""
    work = {}
    for wanted in (False, True):
        cache = RecordCache(4096)
        if wanted:
            cache.want(VICTIM)
        for k in range(22):  # 4,400 records: full, and evicting
            cache.add_all(one_name_records(k * 200, 200, False), IFINDEX, 100.0 + k)
        work[wanted] = count_work(
            lambda cache=cache: cache.add_all(one_name_records(100_000, 400, False), IFINDEX, 130.0)
        )
    print(f"not wanted {work[False]} lines, wanted {work[True]} lines")
    assert work[True] <= 2 * work[False]


def test_one_flush_record_a_packet_into_a_big_bucket_costs_about_a_plain_one() -> None:
    """A bucket of 4,000 records under one name, then 50 packets of one record each, 10 ms
    apart. With the cache-flush bit each walked the whole bucket: 450 us a packet against 1.6
    (300x). Walks are now at most one per FLUSH_GAP for an rrset."""

    def packets(flush: bool) -> None:
        cache = RecordCache(4096)
        for k in range(20):
            cache.add_all(one_name_records(k * 200, 200, False), IFINDEX, 100.0)
        for k in range(50):
            cache.add_all(one_name_records(200_000 + k, 1, flush), IFINDEX, 102.0 + k * 0.01)

    plain, flush = count_work(lambda: packets(False)), count_work(lambda: packets(True))
    print(f"plain {plain} lines, flush {flush} lines")
    assert flush <= 1.5 * plain
