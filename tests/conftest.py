"""Process settings for the test suite, read by TensorFlow when it loads (so before any test
module imports it)."""

import os

# As the kerasseg command does (kerasseg/cli/startup.py): where oneDNN is turned off, pool CPU
# memory instead of taking every large tensor fresh from malloc. The results are the same; the
# suite with TF_ENABLE_ONEDNN_OPTS=0 runs about 10% faster (test_bn_momentum + test_xla: 162 s
# -> 146 s on a 2-core AMD EPYC).
if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false"):
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


# The heaviest files first (`--durations` on the 2-core machine: each of these takes 60-180 s).
# With `-n 2 --dist loadfile` a worker takes whole files in collection order, so a heavy file
# collected last (test_train, test_xla) kept one worker busy for minutes while the other idled.
HEAVY_FIRST = (
    "test_onednn.py",
    "test_examples_recipes.py",
    "test_train.py",
    "test_mask_rcnn.py",
    "test_bn_momentum.py",
    "test_export_instances.py",
    "test_xla.py",
    "test_cli_errors.py",
    "test_cli_instances.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole
