"""kerasseg's tests, a package so that shared helpers import by package path
(``from tests.harness import run_segmenter_test``) under ``python -m pytest`` and plain
``pytest`` alike (pytest puts the repository root, the folder above this package, on the path).
"""
