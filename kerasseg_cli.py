"""The ``kerasseg`` console script's entry point (``python -m kerasseg_cli`` runs it too).

It imports the ``kerasseg`` package lightly, without TensorFlow, so that ``kerasseg --help`` and
``kerasseg models`` answer in well under a second; commands that need TensorFlow import it (and
every kerasseg layer, loss and metric) when they start. ``import kerasseg`` anywhere else keeps
importing everything, which is what ``keras.models.load_model`` needs. See ``kerasseg.cli``.
"""

import os
import sys

LAZY_FLAG = "KERASSEG_LAZY_IMPORT"


def main(argv=None):
    previous = os.environ.get(LAZY_FLAG)
    os.environ[LAZY_FLAG] = "1"  # read once, by kerasseg/__init__.py, while it is imported
    try:
        from kerasseg import cli
    finally:
        if previous is None:
            del os.environ[LAZY_FLAG]  # child processes import kerasseg in full again
        else:
            os.environ[LAZY_FLAG] = previous
    return cli.console(argv)


if __name__ == "__main__":
    sys.exit(main())
