"""Print the parse-speed table (mdnsq vs python-zeroconf compiled vs dnspython) and save it.

    .venv/bin/python bench/parse_report.py [seconds]

The parsers take turns in one loop, so a busy machine slows all of them alike; the figure kept
for each is its best time per packet. Results also go to bench/out/parse_report.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_parse import measure_interleaved, ratio_lines


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    best = measure_interleaved(seconds)
    print("\n".join(ratio_lines(best)))
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "parse_report.json").write_text(json.dumps(best, indent=2) + "\n")


if __name__ == "__main__":
    main()
