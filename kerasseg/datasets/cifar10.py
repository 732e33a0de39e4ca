"""CIFAR-10 (`cifar10`): image-level labels, for backbone pre-training and pipeline checks.

Layout under data_dir (how cifar-10-python.tar.gz extracts):

    cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch, batches.meta

Yields (uint8 [32,32,3], int32 scalar class). `kerasseg.data.prepare` accepts such scalar labels:
it augments the image and passes the label through.
"""

import os
import pickle

import numpy as np
import tensorflow as tf

from kerasseg.datasets import _io
from kerasseg.datasets._registry import DatasetInfo, Resource, register_dataset

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
LAYOUT = "  <data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch}"

INFO = DatasetInfo(
    name="cifar10",
    num_classes=10,
    class_names=CLASS_NAMES,
    palette=_io.voc_colormap(10),
    ignore_index=255,
    splits={"train": 50000, "test": 10000},
    task="classification",
    layout=LAYOUT,
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    description="CIFAR-10 image classification.",
)

RESOURCES = [
    Resource(
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        filename="cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
    )
]

_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def read_batch(path):
    """(uint8 [N,32,32,3], int32 [N]) from one pickled CIFAR-10 batch file."""
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], np.uint8)
        labels = np.asarray(batch[b"labels"], np.int32)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"cifar10: batch file {path!r} not found. Expected layout:\n{LAYOUT}"
        ) from None
    except Exception as e:
        raise ValueError(f"cannot read CIFAR-10 batch {path!r}: {e}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"cifar10: {path!r} does not hold N x 3072 images with N labels")
    bad = labels[(labels < 0) | (labels > 9)]
    if bad.size:
        raise ValueError(
            f"label value {int(bad[0])} in {path!r} is outside CIFAR-10's classes 0..9"
        )
    # Stored channel-planar (R plane, G plane, B plane) per image.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


@register_dataset("cifar10", info=INFO, resources=RESOURCES)
def load_cifar10(data_dir, split="train"):
    """Splits train (50,000) / test (10,000)."""
    _io.check_split("cifar10", split, _BATCHES)
    root = _io.require_dir(os.path.join(data_dir, "cifar-10-batches-py"), "cifar10", LAYOUT)
    parts = [read_batch(os.path.join(root, name)) for name in _BATCHES[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return tf.data.Dataset.from_tensor_slices((images, labels))
