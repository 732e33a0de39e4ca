"""The dataset registry: names -> (description, loader, downloadable resources)."""
import dataclasses
import os
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
    """

    name: str
    num_classes: Optional[int]
    class_names: Tuple[str, ...]
    palette: np.ndarray = field(repr=False)
    ignore_index: int = 255
    splits: Dict[str, Optional[int]] = field(default_factory=dict)
    task: str = "segmentation"
    channels: int = 3
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


def register_dataset(name, loader=None, *, info, resources=(), manual_download=None,
                     needs_data_dir=True, overwrite=False):
    """Register a dataset under `name`.

    `loader(data_dir, split, **options) -> tf.data.Dataset`; `info` is a `DatasetInfo` or a callable
    `(**options) -> DatasetInfo` for sets whose description depends on options. Use it directly or as
    a decorator on the loader::

        @register_dataset("mine", info=DatasetInfo("mine", 3, ("a", "b", "c"), palette))
        def load_mine(data_dir, split, **options): ...
    """
    name = name.lower()

    def _register(fn):
        if name in _REGISTRY and not overwrite:
            raise ValueError(f"dataset {name!r} is already registered; pass overwrite=True to replace it")
        _REGISTRY[name] = _Entry(name, fn, info, tuple(resources), manual_download, needs_data_dir)
        return fn

    if loader is not None:
        return _register(loader)
    return _register


def list_datasets():
    """Names of the registered datasets, sorted."""
    return sorted(_REGISTRY)


def _entry(name):
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; registered datasets: {', '.join(list_datasets())}")
    return _REGISTRY[key]


def info(name, **options):
    """`DatasetInfo` of a registered dataset (options such as `variant=` or, for `folder`,
    `data_dir=`/`num_classes=`/`class_names=` select what it describes)."""
    entry = _entry(name)
    if callable(entry.info) and not isinstance(entry.info, DatasetInfo):
        if "data_dir" in options and options["data_dir"] is not None:
            options["data_dir"] = os.path.expanduser(str(options["data_dir"]))
        return entry.info(**options)
    if options:
        raise TypeError(f"info({name!r}) takes no options, got {sorted(options)}")
    return entry.info


def load(name, data_dir=None, split="train", **options):
    """A `tf.data.Dataset` of `(image uint8 [H,W,C], mask int32 [H,W])` pairs at native size.

    Masks hold class indices in `[0, num_classes)` or the ignore index (255), already mapped the
    way the dataset's benchmark evaluates. `data_dir` is the folder that holds the official
    archive's top folder. Loader-specific options are documented in each dataset module.
    """
    entry = _entry(name)
    if data_dir is None and entry.needs_data_dir:
        raise ValueError(f"dataset {entry.name!r} reads files: pass data_dir= (the folder holding its "
                         f"official archive's top folder); see kerasseg.datasets.info({entry.name!r}).layout")
    if data_dir is not None:
        data_dir = os.path.expanduser(str(data_dir))
    return entry.loader(data_dir, split, **options)


def download(name, data_dir, url=None, md5=None, sha256=None, extract=True, force=False, verbose=True):
    """Download (resumably), verify and extract the public archives of `name` into `data_dir`.

    `url` overrides the archive address: a string for a one-archive dataset, or a dict
    `{archive filename: url}`. `md5`/`sha256` likewise override the expected digest. Returns the
    list of archive paths. Sets behind a registration (Cityscapes) raise a `RuntimeError` saying
    where to get the files and where to put them.
    """
    from kerasseg.datasets import _download

    entry = _entry(name)
    if entry.manual_download:
        raise RuntimeError(entry.manual_download.format(data_dir=os.path.expanduser(str(data_dir))))
    if not entry.resources:
        raise ValueError(f"dataset {entry.name!r} has nothing to download")
    resources = _override(entry, url, md5, sha256)
    return _download.fetch_all(resources, os.path.expanduser(str(data_dir)), extract=extract,
                               force=force, verbose=verbose)


def _override(entry, url, md5, sha256):
    resources = list(entry.resources)
    names = [r.filename for r in resources]

    def per_file(value, what):
        if value is None:
            return {}
        if isinstance(value, dict):
            unknown = set(value) - set(names)
            if unknown:
                raise ValueError(f"{what} override for unknown archive(s) {sorted(unknown)}; "
                                 f"archives of {entry.name!r}: {names}")
            return value
        if len(resources) != 1:
            raise ValueError(f"dataset {entry.name!r} has several archives {names}: "
                             f"pass {what} as a dict {{filename: value}}")
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
