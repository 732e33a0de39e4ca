"""Export never deletes a user's files: refusing existing paths, staging beside the target,
atomic writes."""

import contextlib
import os
import shutil
import tempfile

__all__ = ["refuse_existing", "staging_dir", "write_file"]


def refuse_existing(path, overwrite, what):
    """FileExistsError unless ``path`` is absent, an empty folder, or ``overwrite`` is set."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        if not os.listdir(path) or overwrite:
            return
        raise FileExistsError(
            f"Refusing to export {what} into {path!r}: the folder exists and is not empty. "
            "Choose a new path or pass overwrite=True (only the exported files are replaced)."
        )
    if what == "a SavedModel":
        raise FileExistsError(
            f"Refusing to export a SavedModel to {path!r}: it is a file, and a "
            "SavedModel is a folder. Choose another path."
        )
    if os.path.isdir(path):
        raise FileExistsError(f"Refusing to write {what} to {path!r}: it is a folder.")
    if not overwrite:
        raise FileExistsError(
            f"Refusing to overwrite {path!r} with {what}: the file exists. "
            "Choose a new path or pass overwrite=True."
        )


@contextlib.contextmanager
def staging_dir(path):
    """A scratch folder beside ``path`` (same file system, so moving out of it is a rename)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".kerasseg-export-", dir=parent)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_file(path, data, overwrite, what):
    """Write bytes to ``path`` atomically (temp file + rename): a failed export leaves no stub."""
    path = os.fspath(path)
    refuse_existing(path, overwrite, what)
    with staging_dir(path) as staging:
        temp = os.path.join(staging, "model")
        with open(temp, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    return path
