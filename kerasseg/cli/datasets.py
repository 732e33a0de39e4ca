"""``kerasseg datasets``: the registered datasets, their class counts and whether they read
files."""

from kerasseg.cli.common import needs_data_dir, say

HELP = "list the registered datasets"


def add_arguments(parser):
    """No options of its own."""


def run(args):
    from kerasseg import datasets

    say(f"{'dataset':<14} {'classes':>7}  data")
    for name in datasets.list_datasets():
        try:
            info = datasets.info(name)
            classes = str(info.num_classes) if info.num_classes else "?"
        except Exception:  # noqa: BLE001 - e.g. `folder` describes itself from its files
            classes = "?"
        where = "--data-dir" if needs_data_dir(name) else "generated (no files)"
        say(f"{name:<14} {classes:>7}  {where}")
    return 0
