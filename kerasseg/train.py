"""Compatibility: the names of ``kerasseg.train`` (kerasseg 0.x) now live in ``kerasseg.training``.

``kerasseg.train.PolyDecay`` is ``kerasseg.training.PolyDecay`` (the same registered class), so
code and files written against the old module keep working.
"""

from kerasseg.training import *  # noqa: F401,F403
from kerasseg.training import __all__  # noqa: F401
from kerasseg.training import dataset_meta as _dataset_meta  # noqa: F401  (the old private name)
