"""Run the parse_message fuzzer and report what it did: inputs tried, coverage, crashes.

    python fuzz/run.py --seconds 50          # the short run `make test` does
    python fuzz/run.py --runs 1000000        # `make fuzz`

Seeds: every message in the shared corpus (../shared/corpus, or $MDNSQ_CORPUS, or tests/data
when neither exists), each fragment both bare and behind a header that counts it (a fragment
alone is not a message, so only the wrapped form reaches the record parser), the
hand-built hostile packets of fuzz/adversarial.py, and the inputs of fuzz/regressions that
once broke the parser. New inputs go to a working corpus (a
temporary folder unless --corpus is given). Crash, timeout and out-of-memory inputs go to
--artifacts (default fuzz/artifacts/); the exit status is 1 when there is any.
The last line of output is a JSON summary (also written to --report when given).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REGRESSIONS = HERE / "regressions"  # inputs that once broke the parser (README.md there)
sys.path.insert(0, str(ROOT))

from fuzz.adversarial import BUILDERS  # noqa: E402

MAX_LEN = int(os.environ.get("MDNSQ_FUZZ_MAX_LEN", "1500"))
_PROGRESS = re.compile(r"^#(\d+)\s+(\w+)\s+(.*)$")
_FIELD = re.compile(r"(cov|ft|corp|exec/s|rss): (\d+)")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")


def corpus_root() -> Path:
    for candidate in (os.environ.get("MDNSQ_CORPUS"), ROOT.parent / "shared" / "corpus"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return ROOT / "tests" / "data"


def write_seeds(target: Path) -> dict[str, int]:
    """Fill ``target`` with seed files; returns how many of each kind."""
    counts = {"messages": 0, "fragments": 0, "adversarial": 0, "regressions": 0}
    root = corpus_root()
    for i, path in enumerate(sorted(root.rglob("*.bin"))):
        data = path.read_bytes()[:MAX_LEN]
        if "fragments" in path.parts:
            # queries/ hold one question, records/ one resource record.
            is_question = "queries" in path.parts
            head = struct.pack(
                "!6H", 0, 0 if is_question else 0x8400, int(is_question), int(not is_question), 0, 0
            )
            (target / f"frag-{i}-bare").write_bytes(data)
            (target / f"frag-{i}-msg").write_bytes(head + data)
            counts["fragments"] += 1
        else:
            (target / f"msg-{i}").write_bytes(data)
            counts["messages"] += 1
    for name, build in BUILDERS.items():
        (target / f"adv-{name}").write_bytes(build())
        counts["adversarial"] += 1
    for path in regression_files():
        (target / f"reg-{path.name}").write_bytes(path.read_bytes()[:MAX_LEN])
        counts["regressions"] += 1
    return counts


def regression_files() -> list[Path]:
    """The saved inputs of fuzz/regressions (every file but its README)."""
    if not REGRESSIONS.is_dir():
        return []
    return sorted(p for p in REGRESSIONS.iterdir() if p.is_file() and p.suffix != ".md")


def replay(data: bytes) -> float:
    """CPU milliseconds of the property check on ``data`` without instrumentation (best of 5)."""
    from fuzz.properties import check

    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        check(data)
        best = min(best, time.process_time() - start)
    return round(best * 1000, 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    artifacts = Path(args.artifacts).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    with tempfile.TemporaryDirectory(prefix="mdnsq-fuzz-") as tmp:
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        seed_counts = write_seeds(seeds)
        corpus = Path(args.corpus) if args.corpus else Path(tmp) / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        stats_file = Path(tmp) / "slowest.json"
        argv = [
            sys.executable,
            str(HERE / "fuzz_parse.py"),
            f"-max_len={MAX_LEN}",
            f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.rss_limit_mb}",
            f"-dict={HERE / 'dns.dict'}",
            f"-artifact_prefix={artifacts}/",
            f"-seed={args.seed}",
            "-print_final_stats=1",
        ]
        if args.runs is not None:
            argv.append(f"-runs={args.runs}")
        if args.seconds is not None:
            argv.append(f"-max_total_time={args.seconds}")
        argv += [str(corpus), str(seeds)]
        env = dict(os.environ, MDNSQ_FUZZ_STATS=str(stats_file))
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, cwd=ROOT
        )
        assert proc.stdout is not None
        last: dict[str, int] = {}
        stats: dict[str, int] = {}
        tail: collections.deque[str] = collections.deque(maxlen=60)
        for line in proc.stdout:
            tail.append(line.rstrip())
            if args.verbose:
                print(line, end="", flush=True)
            match = _PROGRESS.match(line)
            if match:
                last = {"inputs": int(match.group(1))}
                last.update({k: int(v) for k, v in _FIELD.findall(match.group(3))})
                continue
            match = _STAT.match(line)
            if match:
                stats[match.group(1)] = int(match.group(2))
        returncode = proc.wait()
        elapsed = time.monotonic() - started
        slowest = json.loads(stats_file.read_text()) if stats_file.exists() else {}
        slowest_bin = Path(str(stats_file) + ".bin")
        replay_ms = None
        if slowest_bin.exists():
            replay_ms = replay(slowest_bin.read_bytes())
            shutil.copyfile(slowest_bin, artifacts / "slowest-input.bin")
        corpus_size = sum(1 for _ in corpus.iterdir())
    found = sorted(
        str(p)
        for p in set(artifacts.iterdir()) - before
        if p.name.startswith(("crash-", "timeout-", "oom-", "leak-"))
    )
    summary: dict[str, Any] = {
        "inputs_tried": stats.get("number_of_executed_units", last.get("inputs", 0)),
        "coverage_edges": last.get("cov"),
        "features": last.get("ft"),
        "corpus_files": corpus_size,
        "seeds": seed_counts,
        "seconds": round(elapsed, 1),
        "exec_per_s": stats.get("average_exec_per_sec", last.get("exec/s")),
        "peak_rss_mb": stats.get("peak_rss_mb", last.get("rss")),
        "slowest_input_ms": round(slowest.get("slowest_seconds", 0.0) * 1000, 3),
        "slowest_input_size": slowest.get("slowest_size"),
        "slowest_input_replay_ms": replay_ms,
        "crashes": found,
        "exit_status": returncode,
    }
    if returncode != 0 or found:
        summary["log_tail"] = list(tail)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, help="stop after this many seconds")
    parser.add_argument("--runs", type=int, help="stop after this many inputs")
    parser.add_argument("--corpus", help="working corpus folder (kept); default: a temporary one")
    parser.add_argument("--artifacts", default=str(HERE / "artifacts"), help="crash inputs go here")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer -seed (0: random)")
    parser.add_argument("--report", help="also write the JSON summary here")
    parser.add_argument("-v", "--verbose", action="store_true", help="show libFuzzer's output")
    args = parser.parse_args()
    if args.seconds is None and args.runs is None:
        parser.error("give --seconds or --runs")
    summary = run(args)
    for key in (
        "inputs_tried",
        "coverage_edges",
        "features",
        "corpus_files",
        "seconds",
        "exec_per_s",
    ):
        print(f"{key}: {summary[key]}")
    print(
        f"slowest input: {summary['slowest_input_ms']} ms CPU instrumented, "
        f"{summary['slowest_input_replay_ms']} ms replayed ({summary['slowest_input_size']} bytes)"
    )
    print(f"crashes: {len(summary['crashes'])}")
    for line in summary.get("log_tail", []):
        print("  | " + line)
    text = json.dumps(summary)
    if args.report:
        Path(args.report).write_text(text + "\n")
    print(text)
    return 1 if summary["crashes"] or summary["exit_status"] != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
