# A lock that can say whether this thread holds it, for code that must let go of it after an
# interruption at any point. CPython runs a signal's handler (Ctrl-C's KeyboardInterrupt) as a
# call returns: between `lock.acquire()` returning and the `try` after it, or between a lock's
# acquire and a Python-level note of its owner. Either way the lock stayed held by nobody, and
# everything that wanted it next waited forever, whatever its deadline. The pool and the
# Querier take their locks inside the try. In the finally the Querier asks `_is_owned()`; the
# pool releases first thing and ignores the RuntimeError an RLock raises when this thread does
# not hold it (a check before the release would be one more point for an interrupt to land).
from __future__ import annotations

import _thread
from typing import TYPE_CHECKING

__all__ = ["OwnedLock"]


class OwnedLock(_thread.RLock):  # type: ignore[misc]  # final in typeshed, not at run time
    """Never taken twice by one thread: an RLock only because it notes its owner in C, as it
    is acquired, and its ``with`` is C too."""

    __slots__ = ()

    if TYPE_CHECKING:

        def _is_owned(self) -> bool: ...
