"""`python -m bench [--quick] [--only GROUPS] [--out DIR]`: the whole benchmark suite."""

from __future__ import annotations

import sys

from bench.suite.cli import main

if __name__ == "__main__":
    sys.exit(main())
