"""``python -m kerasseg.cli``: the console script."""

import sys

from kerasseg.cli import console

sys.exit(console())
