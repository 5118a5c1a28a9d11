"""Print what an hour's watch sends when the cache lists N instances nobody answers for (PTR
records of hosts that vanished, or a PTR flood), N = 17, 100 and 1,000 (adr/005 §15): browse
and watch give the 16 resolving slots in turns, and this is what the turns cost on the wire.

    .venv/bin/python bench/unanswered_instances.py

No network, no sleeping: the fake network and clock of tests/fakes.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mdnsq.querier
from mdnsq import Querier
from tests.fakes import FakeNet, ptr, response

STYPE = "_http._tcp.local"


def main() -> None:
    mdnsq.querier.FIRST_DELAY = (0.0, 0.0)
    for count in (17, 100, 1000):
        net = FakeNet()
        transport = net.transport()
        q = Querier(transports=[transport], clock=net.clock, wait=net.wait)
        for first in range(0, count, 50):
            names = [f"Gone{i}.{STYPE}" for i in range(first, min(count, first + 50))]
            transport.inject(response(*[ptr(STYPE, name) for name in names]))
        q.process(0)
        for _ in q.watch(STYPE, timeout=3600):
            pass
        messages = transport.sent_messages()
        questions = sum(len(m.questions) for m in messages)
        sent = f"{len(messages)} packets, {questions} questions"
        print(f"{count:5d} unanswered instances, 1 h watch: {sent}")
        q.close()
        transport.close()


if __name__ == "__main__":
    main()
