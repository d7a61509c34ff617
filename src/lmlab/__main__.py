"""`python -m lmlab ...` (and `torchrun -m lmlab train ...`) runs the command-line tool."""

import sys

from lmlab.cli import main

sys.exit(main())
