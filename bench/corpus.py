"""The corpus of real English sentences as a file, one a line: `embed/corpus.py` says where they come from.

python bench/corpus.py --count 5000 --output corpus.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embed.corpus import main

if __name__ == "__main__":
    sys.exit(main())
