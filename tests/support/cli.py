"""Running the installed command lines as users run them."""

from __future__ import annotations

import sys
from pathlib import Path

#: The folder holding this environment's ``dicompose``, ``bosh``, ``normalize-scan`` scripts.
BIN = Path(sys.executable).parent
