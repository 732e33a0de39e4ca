"""Dataset registry: `load`, `info`, `download`, `list_datasets`, `register_dataset`.

    ds = kerasseg.datasets.load("voc2012", data_dir="~/data", split="train")
    info = kerasseg.datasets.info("voc2012")

`load` yields `(image uint8 [H,W,C], mask int32 [H,W])` at each image's own size, masks already
mapped to the class indices the dataset's benchmark evaluates (ignored pixels are 255). Each
dataset lives in its own module, which documents its on-disk layout and options.
"""

# Importing a dataset module registers it.
from kerasseg.datasets import (  # noqa: E402,F401
    ade20k,
    camvid,
    cifar10,
    cityscapes,
    coco_instances,
    coco_panoptic,
    coco_stuff,
    folder,
    rgbd,
    shapes,
    shapes_instances,
    shapes_panoptic,
    voc,
)
from kerasseg.datasets._io import IMAGE_EXTENSIONS  # noqa: F401 - what the loaders read
from kerasseg.datasets._registry import (  # noqa: F401
    DataError,
    DatasetInfo,
    Resource,
    SplitFiles,
    download,
    entry,
    files_of,
    info,
    list_datasets,
    load,
    needs_data_dir,
    pipeline_error_message,
    register_dataset,
    split_files,
)

__all__ = [
    "DataError",
    "DatasetInfo",
    "IMAGE_EXTENSIONS",
    "Resource",
    "SplitFiles",
    "download",
    "entry",
    "files_of",
    "info",
    "list_datasets",
    "load",
    "needs_data_dir",
    "pipeline_error_message",
    "register_dataset",
    "split_files",
]
