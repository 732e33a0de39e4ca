"""The dataset registry: names -> (description, loader, downloadable resources).

It also says which files a loaded split reads (`files_of`, `split_files`), so that training can
check them before it starts, and turns an error raised inside a loader's tf.data pipeline back
into the loader's own message (`pipeline_error_message`).
"""

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np


@dataclass(eq=False)  # compared by identity: the palette is an array
class DatasetInfo:
    """What a user needs to know about a dataset without reading it.

    `splits` maps each split name to the number of samples of the real (full, official) set;
    `None` as a size means the size depends on the files (e.g. the `folder` loader).
    `task` is "segmentation" (masks of class indices) or "classification" (one int per image).
    `channels` is the number of image channels `load` yields with default options.
    `thing_classes`: for panoptic sets, the classes counted instance by instance (the others
    are stuff).
    """

    name: str
    num_classes: Optional[int]
    class_names: Tuple[str, ...]
    palette: np.ndarray = field(repr=False)
    ignore_index: int = 255
    splits: Dict[str, Optional[int]] = field(default_factory=dict)
    task: str = "segmentation"
    channels: int = 3
    thing_classes: Tuple[int, ...] = ()
    layout: str = field(default="", repr=False)
    homepage: str = field(default="", repr=False)
    description: str = field(default="", repr=False)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Resource:
    """One downloadable archive. `md5`/`sha256` are left None when not known for certain:
    the download then reports the digest it computed instead of checking a guessed one."""

    url: str
    filename: str
    md5: Optional[str] = None
    sha256: Optional[str] = None
    extract: bool = True
    # Folder under data_dir that the archive is extracted into ("" = data_dir itself).
    subdir: str = ""
    # Optional fix-up run after extraction, given the data_dir (e.g. move a nested folder up).
    post_extract: Optional[Callable[[str], None]] = None


@dataclass
class _Entry:
    name: str
    loader: Callable
    info: Union[DatasetInfo, Callable[..., DatasetInfo]]
    resources: Sequence[Resource] = ()
    manual_download: Optional[str] = None  # message for sets behind a registration
    needs_data_dir: bool = True


_REGISTRY: Dict[str, _Entry] = {}


def register_dataset(
    name,
    loader=None,
    *,
    info,
    resources=(),
    manual_download=None,
    needs_data_dir=True,
    overwrite=False,
):
    """Register a dataset under `name`.

    `loader(data_dir, split, **options) -> tf.data.Dataset`; `info` is a `DatasetInfo` or a
    callable `(**options) -> DatasetInfo` for sets whose description depends on options. Use it
    directly or as a decorator on the loader::

        @register_dataset("mine", info=DatasetInfo("mine", 3, ("a", "b", "c"), palette))
        def load_mine(data_dir, split, **options): ...
    """
    name = name.lower()

    def _register(fn):
        if name in _REGISTRY and not overwrite:
            raise ValueError(
                f"dataset {name!r} is already registered; pass overwrite=True to replace it"
            )
        _REGISTRY[name] = _Entry(name, fn, info, tuple(resources), manual_download, needs_data_dir)
        return fn

    if loader is not None:
        return _register(loader)
    return _register


def list_datasets():
    """Names of the registered datasets, sorted."""
    return sorted(_REGISTRY)


def entry(name):
    """The registry entry of a dataset (its loader, info, resources, ``needs_data_dir``); a
    ValueError names the registered datasets for an unknown name."""
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown dataset {name!r}; registered datasets: {', '.join(list_datasets())}"
        )
    return _REGISTRY[key]


def needs_data_dir(name):
    """Whether dataset ``name`` reads files (so needs ``data_dir``); generated sets do not."""
    return bool(entry(name).needs_data_dir)


def info(name, **options):
    """`DatasetInfo` of a registered dataset (options such as `variant=` or, for `folder`,
    `data_dir=`/`num_classes=`/`class_names=` select what it describes)."""
    found = entry(name)
    if callable(found.info) and not isinstance(found.info, DatasetInfo):
        if "data_dir" in options and options["data_dir"] is not None:
            options["data_dir"] = os.path.expanduser(str(options["data_dir"]))
        return found.info(**options)
    if options:
        raise TypeError(f"info({name!r}) takes no options, got {sorted(options)}")
    return found.info


def load(name, data_dir=None, split="train", **options):
    """A `tf.data.Dataset` of `(image uint8 [H,W,C], mask int32 [H,W])` pairs at native size.

    Masks hold class indices in `[0, num_classes)` or the ignore index (255), already mapped the
    way the dataset's benchmark evaluates. `data_dir` is the folder that holds the official
    archive's top folder. Loader-specific options are documented in each dataset module.
    """
    found = entry(name)
    if data_dir is None and found.needs_data_dir:
        raise ValueError(
            f"dataset {found.name!r} reads files: pass data_dir= (the folder holding "
            f"its official archive's top folder); see "
            f"kerasseg.datasets.info({found.name!r}).layout"
        )
    if data_dir is not None:
        data_dir = os.path.expanduser(str(data_dir))
    return found.loader(data_dir, split, **options)


def download(
    name, data_dir, url=None, md5=None, sha256=None, extract=True, force=False, verbose=True
):
    """Download (resumably), verify and extract the public archives of `name` into `data_dir`.

    `url` overrides the archive address: a string for a one-archive dataset, or a dict
    `{archive filename: url}`. `md5`/`sha256` likewise override the expected digest. Returns the
    list of archive paths. Sets behind a registration (Cityscapes) raise a `RuntimeError` saying
    where to get the files and where to put them.
    """
    from kerasseg.datasets import _download

    found = entry(name)
    if found.manual_download:
        raise RuntimeError(found.manual_download.format(data_dir=os.path.expanduser(str(data_dir))))
    if not found.resources:
        raise ValueError(f"dataset {found.name!r} has nothing to download")
    resources = _override(found, url, md5, sha256)
    return _download.fetch_all(
        resources, os.path.expanduser(str(data_dir)), extract=extract, force=force, verbose=verbose
    )


def _override(entry, url, md5, sha256):
    resources = list(entry.resources)
    names = [r.filename for r in resources]

    def per_file(value, what):
        if value is None:
            return {}
        if isinstance(value, dict):
            unknown = set(value) - set(names)
            if unknown:
                raise ValueError(
                    f"{what} override for unknown archive(s) {sorted(unknown)}; "
                    f"archives of {entry.name!r}: {names}"
                )
            return value
        if len(resources) != 1:
            raise ValueError(
                f"dataset {entry.name!r} has several archives {names}: "
                f"pass {what} as a dict {{filename: value}}"
            )
        return {names[0]: value}

    urls, md5s, shas = per_file(url, "url"), per_file(md5, "md5"), per_file(sha256, "sha256")
    out = []
    for r in resources:
        changes = {}
        if r.filename in urls:
            changes["url"] = urls[r.filename]
            # A different archive invalidates the digests recorded for the official one.
            changes["md5"] = None
            changes["sha256"] = None
        if r.filename in md5s:
            changes["md5"] = md5s[r.filename]
        if r.filename in shas:
            changes["sha256"] = shas[r.filename]
        out.append(dataclasses.replace(r, **changes))
    return out


# ----------------------------------------------------------------------------- a split's files


class DataError(ValueError):
    """A problem with a dataset's files (a colour or JPEG mask, a corrupt image, a label value
    the dataset does not define, ...): the message names the file and says what is wrong."""


@dataclass
class SplitFiles:
    """The files a loaded split reads, for checks before training.

    `items` holds one tuple of paths per sample, the image first and the label file last (other
    files, e.g. a depth map, in between). `decode(*item)` runs the loader's own decoder on one
    tuple and returns `(image, label)` as the pipeline would; a problem raises `DataError`
    with the loader's message. `decode` is None when the loader's decoder is not reachable.
    """

    items: Sequence[Tuple[str, ...]]
    decode: Optional[Callable] = None


def files_of(ds):
    """`SplitFiles` of a dataset returned by `load`, or None when its files cannot be listed
    (generated sets, in-memory arrays, pipelines of another shape).

    A loader may say it itself by setting `ds.kerasseg_files` (the path tuples, image first and
    label last) and optionally `ds.kerasseg_decode` (its decoder) on the dataset it returns.
    Otherwise the usual file pipeline is recognised: `Dataset.from_tensor_slices(path columns)`,
    optionally shuffled, mapped by the decoder (what `_io.paths_dataset` builds).
    """
    items = getattr(ds, "kerasseg_files", None)
    if items is not None:
        return SplitFiles(
            [tuple(os.fspath(p) for p in item) for item in items],
            getattr(ds, "kerasseg_decode", None),
        )
    try:
        return _files_from_pipeline(ds)
    except Exception:  # noqa: BLE001 - an unfamiliar pipeline: its files are not known
        return None


def split_files(name, data_dir=None, split="train", **options):
    """`files_of(load(name, data_dir, split, **options))`: the files of one split, or None."""
    return files_of(load(name, data_dir=data_dir, split=split, **options))


def _files_from_pipeline(ds):
    import tensorflow as tf

    mapper = getattr(ds, "_map_func", None)
    source = getattr(ds, "_input_dataset", None)
    # Between the map and the file columns only a shuffle may sit (shuffle_files=True).
    while source is not None and type(source).__name__ == "_ShuffleDataset":
        source = getattr(source, "_input_dataset", None)
    columns = getattr(source, "_tensors", None)
    if mapper is None or not columns or type(source).__name__ != "_TensorSliceDataset":
        return None
    if any(c.dtype != tf.string or c.shape.rank != 1 for c in columns):
        return None
    paths = [[p.decode("utf-8") for p in c.numpy()] for c in columns]
    items = list(zip(*paths))
    function = getattr(mapper, "function", None)
    signature = getattr(function, "structured_input_signature", None)
    outputs = getattr(mapper, "output_structure", None)
    if (
        function is None
        or signature is None
        or len(signature[0]) != len(columns)
        or not isinstance(outputs, tuple)
        or len(outputs) != 2
    ):
        return SplitFiles(items, None)

    def decode(*item):
        message = None
        try:
            image, label = function(*[tf.constant(p) for p in item])
            return image.numpy(), label.numpy()
        except tf.errors.OpError as error:
            message = pipeline_error_message(error) or " ".join(str(error.message).split())
        raise DataError(message)

    return SplitFiles(items, decode)


# ----------------------------------------------------------------------------- pipeline errors

# The last "SomeError: text" line of the Python traceback a py_function/numpy_function error
# carries (TensorFlow appends that traceback to its own message).
_PY_ERROR = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception|error|Exit))(?:\(\))?: (.*\S)\s*$")
_ASSERT = re.compile(r"assertion failed: \[(.*?)\](?: \[(.*?)\])?", re.S)
# Inside the iterator's message the exception is on the same line as TensorFlow's preamble.
_INLINE = re.compile(
    r"transformation with iterator: [^\n]*?: (?:[\w.]+\.)?(\w*(?:Error|Exception))"
    r": ([^\n]*\S)"
)
# Exception types whose message is the whole story (the loaders' own errors).
_PLAIN = ("ValueError", "FileNotFoundError", "DataError", "OSError", "IOError", "KeyError")


def pipeline_error_message(error):
    """The message of the Python error behind a TensorFlow error raised from a tf.data pipeline
    (a loader's decoder run through `tf.numpy_function`) or of a failed graph assert (e.g. a loss
    finding a label it does not know); None when `error` is neither.

    ValueError, FileNotFoundError and the like give their message as is; other types are
    prefixed with their name (`error: message`).
    """
    text = str(getattr(error, "message", None) or error)
    if "PyFunc" in text or "pyfunc" in text.lower() or "user-defined function" in text:
        head = text.split("Traceback (most recent call last):")
        found = None
        if len(head) > 1:
            # The traceback's last "Type: message" line is the original exception.
            for line in head[1].splitlines():
                match = _PY_ERROR.match(line)
                if match and not line.startswith((" ", "\t")):
                    found = match.groups()
        if found is None:
            match = _INLINE.search(text)
            found = match.groups() if match else None
        if found is not None:
            kind, message = found
            return message if kind in _PLAIN else f"{kind}: {message}"
    match = _ASSERT.search(text)
    if match:
        message, value = match.groups()
        message = " ".join(message.split())
        return f"{message} {value}" if value else message
    return None
