"""`python -m bench.cli ...`: the same as the `trnbench` console script."""

import sys

from bench.cli import main

sys.exit(main())
