"""Entry point of a resilq deployment package (copied as ``PACKAGE/__main__.py``): ``python3 PACKAGE <command>``.

Runs the package's own copy of resilq (``PACKAGE/lib``), which checks the interpreter's Python, numpy
and pynq versions against the board image the package was built for before anything else.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))

from resilq.deploy.cli import board_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(board_main(HERE, sys.argv[1:]))
