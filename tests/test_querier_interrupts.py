"""Ctrl-C in a script whose threads share a Querier (seventeenth session's review).

A KeyboardInterrupt lands as a call returns, at any function entry or loop jump: in a call's
clean-up it left the Querier's lock held by the interrupted thread (every other thread's call
then waited forever, whatever its deadline, and close() returned without letting it go), and
in process() it could leave the receiver mark set and raise RuntimeError. One interrupt at a
time, at random points (tests/test_transport_review13.py's timer), on a fake transport.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from mdnsq import MdnsqError, Querier
from mdnsq.locks import OwnedLock
from tests.fakes import FakeTransport, a, response
from tests.test_transport_review13 import interrupts  # noqa: F401 (a fixture)

# The interrupts fixture takes over ITIMER_REAL/SIGALRM, the alarm pytest-timeout's default (signal)
# method relies on: a hang here went uncaught. The thread method does not use it.
pytestmark = pytest.mark.timeout(method="thread")


def _answers_after(q: Querier) -> list[Any]:
    """What another thread's calls get once the interrupts are over (3 s at most)."""
    outcome: list[Any] = []

    def call() -> None:
        outcome.append(q.query("w.local", "A", timeout=0.2))
        outcome.append(q.resolve_host("nobody.local", timeout=0.05))

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(3)
    return outcome


@pytest.mark.parametrize("call", ["query", "miss", "process"])
def test_interrupts_in_one_thread_never_leave_the_others_blocked(
    interrupts: list[bool],  # noqa: F811 (the fixture imported above)
    call: str,
) -> None:
    """Before: the lock stayed held after an interrupt in `_drive`'s clean-up (7 of 40 runs
    of a script with 4 workers and one Ctrl-C), or process() raised RuntimeError."""
    with FakeTransport() as transport:
        q = Querier(transports=[transport])
        transport.inject(response(a("w.local", "192.0.2.7", ttl=4500)))
        q.process(0)
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                try:
                    q.query("w.local", "A", timeout=0.2)
                    q.query("nobody.local", "A", timeout=0.002)
                except MdnsqError:
                    return

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(2)]
        for thread in workers:
            thread.start()
        caught = 0
        for _ in range(400):
            try:
                interrupts[0] = True
                if call == "query":
                    q.query("w.local", "A", timeout=0.01)
                elif call == "miss":
                    q.query("nobody.local", "A", timeout=0.001)
                else:
                    q.process(0.001)
                interrupts[0] = False
            except KeyboardInterrupt:
                interrupts[0] = False
                caught += 1
            assert not q._lock._is_owned(), f"the lock held after {caught} interrupts"
        stop.set()
        for thread in workers:
            thread.join(3)
        assert caught > 20
        assert q._leader == 0 and not q._tasks
        assert _answers_after(q) == [[a("w.local", "192.0.2.7", ttl=4500)], []]
        q.close()


class _SaysNoThenInterrupts(OwnedLock):
    """A lock whose `_is_owned()` is interrupted once, right after answering no: where the
    receiver's clean-up asks before taking the lock back."""

    armed = False

    def _is_owned(self) -> bool:
        owned: bool = super()._is_owned()
        if not owned and self.armed:
            type(self).armed = False
            raise KeyboardInterrupt
        return owned


def test_process_interrupted_as_its_receive_ends_leaves_nobody_marked_as_receiving() -> None:
    """Before: process() raised RuntimeError (releasing a lock it had not taken back) and
    left itself marked as the receiver, so every later call waited as a follower for news
    that never came: an answer queued in the socket was not read."""
    with FakeTransport() as transport:
        q = Querier(transports=[transport])
        q._lock = _SaysNoThenInterrupts()
        q._cond = threading.Condition(q._lock)
        _SaysNoThenInterrupts.armed = True
        with pytest.raises(KeyboardInterrupt):
            q.process(0)
        assert q._leader == 0 and not q._lock._is_owned()
        transport.inject(response(a("late.local", "192.0.2.9")))
        assert q.query("late.local", "A", timeout=1) == [a("late.local", "192.0.2.9")]
        q.close()
