"""The package's layers: every import inside kerasseg points down the layout of DESIGN.md, and
none reaches into another package's private (underscore) modules or names."""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kerasseg")
# Bottom first. version is a leaf; train is the compatibility alias of training.
ORDER = [
    "version",
    "ops",
    "layers",
    "backbones",
    "necks",
    "models",
    "losses",
    "metrics",
    "weak",
    "datasets",
    "data",
    "training",
    "train",
    "inference",
    "export",
    "visualize",
    "cli",
]


def _modules():
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts != ["__init__"]:
                    yield path, parts[0]


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "kerasseg":
                yield from ((f"kerasseg.{a.name}", None) for a in node.names)
            elif node.module.startswith("kerasseg."):
                yield from ((node.module, a.name) for a in node.names)
        elif isinstance(node, ast.Import):
            yield from ((a.name, None) for a in node.names if a.name.startswith("kerasseg."))


MODULES = sorted(_modules())


@pytest.mark.parametrize("path, package", MODULES, ids=[p for p, _ in MODULES])
def test_imports_point_down_and_not_into_private_parts(path, package):
    assert package in ORDER, f"{package} is not in the layout"
    rank = ORDER.index(package)
    wrong = []
    for module, name in _imports(path):
        parts = module.split(".")
        target = parts[1]
        if target == package:
            continue  # inside one package: its own business
        if target not in ORDER or ORDER.index(target) > rank:
            wrong.append(f"{module} (up: {package} -> {target})")
        private = [p for p in parts[2:] if p.startswith("_")]
        name = name or ""
        if private or (name.startswith("_") and not name.startswith("__")):
            wrong.append(f"{module}.{name} (private)")
    assert not wrong, wrong
