"""Reproduce a paper table or figure: launch its runs, then build reports/<item>/ (see docs/reproduce.md).
The same as ``python -m podexp.reproduce``."""

import sys

from podexp.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
