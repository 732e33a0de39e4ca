"""Process settings for the test suite, read by TensorFlow when it loads (so before any test
module imports it)."""

import os

# As the kerasseg command does (kerasseg/cli/startup.py): where oneDNN is turned off, pool CPU
# memory instead of taking every large tensor fresh from malloc. The results are the same; the
# suite with TF_ENABLE_ONEDNN_OPTS=0 runs about 10% faster (test_bn_momentum + test_xla: 162 s
# -> 146 s on a 2-core AMD EPYC).
if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false"):
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


# Under `pytest -n N` the workers share the cores, and TensorFlow's default pools (in every
# worker, an inter-op and an intra-op pool of one thread per core) oversubscribe them: two copies
# of a small U-Net test sharing one core took 132 s with two threads in each pool, 86 s with one
# (either pool at two: 127-129 s). So each worker gets its share of the cores, unless chosen.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for _pool in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(_pool, str(max(1, (_cores or 1) // _WORKERS)))

# The heaviest files first (`--durations` on the 2-core machine: each of these takes 60-180 s).
# With `-n 2 --dist loadfile` a worker takes whole files in collection order, so a heavy file
# collected last (test_train, test_xla) kept one worker busy for minutes while the other idled.
HEAVY_FIRST = (
    "test_panoptic_models.py",
    "test_onednn.py",
    "test_readme.py",
    "test_mask_rcnn.py",
    "test_train.py",
    "test_examples_recipes.py",
    "test_export_instances.py",
    "test_cli_instances.py",
    "test_bn_momentum.py",
    "test_backbones.py",
    "test_weak_cli.py",
    "test_first_hour.py",
    "test_xla.py",
    "test_cli_errors.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole
