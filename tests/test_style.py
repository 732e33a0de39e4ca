"""The code stays within the house style: ruff (configured in pyproject.toml, 100 columns) finds
nothing, and no module grows past the size the layout allows."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_MODULE_LINES = 400


def _ruff():
    try:
        import ruff  # noqa: F401
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.fail("ruff is not installed; it is part of the dev extra: pip install '.[dev]'")
        return ["ruff"]
    return [sys.executable, "-m", "ruff"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_is_clean(command):
    done = subprocess.run(
        [
            *_ruff(),
            *command,
            "kerasseg",
            "tests",
            "benchmarks",
            "examples",
            "kerasseg_cli.py",
            "setup.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_module_over_the_size_limit():
    too_long = []
    for folder, _, files in os.walk(os.path.join(ROOT, "kerasseg")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    lines = sum(1 for _ in f)
                if lines > MAX_MODULE_LINES:
                    too_long.append(f"{os.path.relpath(path, ROOT)}: {lines} lines")
    assert not too_long, too_long
