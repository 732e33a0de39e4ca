"""``kerasseg datasets``: the registered datasets, their class counts and whether they read
files."""

from kerasseg.cli.common import needs_data_dir, say

HELP = "list the registered datasets"


def add_arguments(parser):
    """No options of its own."""


def run(args):
    from kerasseg import datasets

    rows = []
    for name in datasets.list_datasets():
        try:
            info = datasets.info(name)
            classes = str(info.num_classes) if info.num_classes else "?"
        except Exception:  # noqa: BLE001 - e.g. `folder` describes itself from its files
            classes = "?"
        rows.append(
            (name, classes, "--data-dir" if needs_data_dir(name) else "generated (no files)")
        )
    width = max(len("dataset"), *(len(name) for name, _, _ in rows))
    say(f"{'dataset':<{width}} {'classes':>7}  data")
    for name, classes, where in rows:
        say(f"{name:<{width}} {classes:>7}  {where}")
    return 0
