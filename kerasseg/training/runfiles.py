"""A run folder's files: checkpoints saved atomically, history.csv, best.json, run.json, the
backup a resumed run starts from, and the check that refuses to overwrite a finished run."""

import csv
import json
import os
import sys

__all__ = [
    "RUN_FILES",
    "log",
    "atomic_save",
    "backup_epoch",
    "trim_history",
    "read_history",
    "check_output",
    "is_stale_start",
    "clear_run_files",
    "write_run_json",
    "run_data_dir",
    "load_run_info",
]

RUN_FILES = ("last.keras", "best.keras", "history.csv")
# A run has finished an epoch once one of these exists; history.csv alone (CSVLogger opens it
# before the first batch) is what a run that failed at its start leaves behind.
CHECKPOINT_FILES = ("last.keras", "best.keras")


def log(message):
    """One ``kerasseg: ...`` line on stderr."""
    print(f"kerasseg: {message}", file=sys.stderr, flush=True)


def atomic_save(model, path):
    """Save next to ``path`` and rename: a run killed while saving never leaves a torn file."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".partial-{name}")
    model.save(partial)
    os.replace(partial, path)


def backup_epoch(output):
    """The number of epochs a resumable run in ``output`` has completed (None: nothing to
    resume)."""
    path = os.path.join(output, "backup", "training_metadata.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return int(json.load(f)["epoch"])
    except (OSError, ValueError, KeyError):
        return None


def trim_history(path, keep_epochs):
    """Drop rows of epochs a resumed run is about to redo (a run killed between writing its
    history row and its backup would otherwise log that epoch twice)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [r for r in body if r and r[0].isdigit() and int(r[0]) < keep_epochs]
    if len(kept) != len(body):
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows([header] + kept)


def _number(text):
    """A history.csv cell as a float; Keras writes "NA" for an epoch without validation."""
    return float("nan") if text in ("", "NA", None) else float(text)


def read_history(path):
    """history.csv as {column: [values]} (floats; 'epoch' as ints)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for row in rows:
        for key, value in row.items():
            out.setdefault(key, []).append(int(value) if key == "epoch" else _number(value))
    return out


def check_output(output, overwrite):
    """Refuse an ``output`` that is a file, or a folder holding a finished run (unless
    ``overwrite``); a folder holding an unfinished run (a backup) is fine: it is resumed, and
    so is one left by a run that stopped before its first epoch ended (no checkpoint yet)."""
    if os.path.exists(output) and not os.path.isdir(output):
        raise FileExistsError(f"output {output!r} exists and is not a folder.")
    if backup_epoch(output) is not None or overwrite:
        return
    found = [n for n in CHECKPOINT_FILES if os.path.exists(os.path.join(output, n))]
    if found:
        raise FileExistsError(
            f"output folder {output!r} already holds a finished run ({', '.join(found)}); "
            f"choose another output folder or pass overwrite=True (--overwrite) to replace it."
        )


def is_stale_start(folder):
    """Whether ``folder`` holds only what a run that stopped within its first epoch leaves:
    history.csv without any checkpoint or backup (its rows, if any, belong to no saved epoch)."""
    return (
        os.path.exists(os.path.join(folder, "history.csv"))
        and backup_epoch(folder) is None
        and not any(os.path.exists(os.path.join(folder, n)) for n in CHECKPOINT_FILES)
    )


def clear_run_files(folder):
    """Remove a finished run's checkpoints, history and best.json (``overwrite=True``)."""
    for name in RUN_FILES + ("best.json",):
        if os.path.exists(os.path.join(folder, name)):
            os.remove(os.path.join(folder, name))


def run_data_dir(data_dir):
    """The data folder as run.json records it (absolute, so ``evaluate`` finds it from
    anywhere), or None for generated sets."""
    return None if data_dir is None else os.path.abspath(os.path.expanduser(os.fspath(data_dir)))


def write_run_json(path, record):
    with open(path, "w") as f:
        json.dump(record, f, indent=2)


def load_run_info(checkpoint):
    """run.json next to a checkpoint (a record of the run: dataset, options), or {} when absent.

    A model's class names, palette and input multiple are read from the model itself
    (``kerasseg.models.segmenter.describe``); run.json is for people and for older files.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(os.fspath(checkpoint))), "run.json")
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
