"""`python -m mdnsq ...` is the same tool as the `mdnsq` console script."""

from __future__ import annotations

import sys

from mdnsq.cli import console

if __name__ == "__main__":
    sys.exit(console())
