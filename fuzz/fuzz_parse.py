"""atheris (libFuzzer) target: mdnsq.parse_message and the parse -> encode -> parse round trip.

Run through fuzz/run.py (seeds, a summary and an exit status), or directly with libFuzzer flags:
    python fuzz/fuzz_parse.py -max_len=9000 -runs=100000 CORPUS_DIR SEED_DIR
The properties are in fuzz/properties.py; mdnsq.parser and mdnsq.names are instrumented.
If MDNSQ_FUZZ_STATS names a file, the slowest input so far (CPU seconds, so a busy machine does
not inflate it; and its size) is written there, and its bytes next to it (+ ".bin"), each time a
new slowest one is found, because libFuzzer ends the process without Python's atexit handlers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Coverage feedback from the codec only: the writer and record classes run on every parsed input
# and instrumenting them would halve the speed without steering the fuzzer anywhere new.
with atheris.instrument_imports(include=["mdnsq.parser", "mdnsq.names"]):
    import mdnsq.names
    import mdnsq.parser  # noqa: F401

from fuzz.properties import MALFORMED, PARSED, check

_STATS = os.environ.get("MDNSQ_FUZZ_STATS")
_counts = {MALFORMED: 0, PARSED: 0, "too_big": 0}
_slowest = [0.0, 0]
_WARMUP = 200  # the first inputs pay for imports and caches; do not report them as slow


def test_one_input(data: bytes) -> None:
    start = time.process_time()
    outcome = check(data)
    elapsed = time.process_time() - start
    _counts[outcome] += 1
    if _STATS and elapsed > _slowest[0] and sum(_counts.values()) > _WARMUP:
        _slowest[:] = [elapsed, len(data)]
        Path(_STATS).write_text(
            json.dumps({"slowest_seconds": elapsed, "slowest_size": len(data), **_counts})
        )
        Path(_STATS + ".bin").write_bytes(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
