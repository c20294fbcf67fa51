"""``python -m resilq.hls STEP ...``: the same commands as ``resilq hls`` (used by hls/Makefile)."""

import sys

from .cli import main

sys.exit(main())
