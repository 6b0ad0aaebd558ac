"""Reproduce a paper table or figure: launch its runs, then build reports/<item>/ (see docs/reproduce.md)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podexp.analysis.reproduce import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
