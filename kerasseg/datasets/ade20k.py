"""ADE20K SceneParsing benchmark (`ade20k`), 150 classes.

Layout under data_dir (how ADEChallengeData2016.zip extracts):

    ADEChallengeData2016/images/{training,validation}/ADE_*.jpg
    ADEChallengeData2016/annotations/{training,validation}/ADE_*.png

Annotation value 0 ("other") becomes the ignore index 255 and 1..150 become 0..149 (the benchmark's
reduce_zero_label). Splits: "train"/"training", "val"/"validation".
"""

import os

from kerasseg.datasets import _io
from kerasseg.datasets._registry import DatasetInfo, Resource, register_dataset

CLASS_NAMES = (
    "wall",
    "building",
    "sky",
    "floor",
    "tree",
    "ceiling",
    "road",
    "bed",
    "windowpane",
    "grass",
    "cabinet",
    "sidewalk",
    "person",
    "earth",
    "door",
    "table",
    "mountain",
    "plant",
    "curtain",
    "chair",
    "car",
    "water",
    "painting",
    "sofa",
    "shelf",
    "house",
    "sea",
    "mirror",
    "rug",
    "field",
    "armchair",
    "seat",
    "fence",
    "desk",
    "rock",
    "wardrobe",
    "lamp",
    "bathtub",
    "railing",
    "cushion",
    "base",
    "box",
    "column",
    "signboard",
    "chest of drawers",
    "counter",
    "sand",
    "sink",
    "skyscraper",
    "fireplace",
    "refrigerator",
    "grandstand",
    "path",
    "stairs",
    "runway",
    "case",
    "pool table",
    "pillow",
    "screen door",
    "stairway",
    "river",
    "bridge",
    "bookcase",
    "blind",
    "coffee table",
    "toilet",
    "flower",
    "book",
    "hill",
    "bench",
    "countertop",
    "stove",
    "palm",
    "kitchen island",
    "computer",
    "swivel chair",
    "boat",
    "bar",
    "arcade machine",
    "hovel",
    "bus",
    "towel",
    "light",
    "truck",
    "tower",
    "chandelier",
    "awning",
    "streetlight",
    "booth",
    "television receiver",
    "airplane",
    "dirt track",
    "apparel",
    "pole",
    "land",
    "bannister",
    "escalator",
    "ottoman",
    "bottle",
    "buffet",
    "poster",
    "stage",
    "van",
    "ship",
    "fountain",
    "conveyer belt",
    "canopy",
    "washer",
    "plaything",
    "swimming pool",
    "stool",
    "barrel",
    "basket",
    "waterfall",
    "tent",
    "bag",
    "minibike",
    "cradle",
    "oven",
    "ball",
    "food",
    "step",
    "tank",
    "trade name",
    "microwave",
    "pot",
    "animal",
    "bicycle",
    "lake",
    "dishwasher",
    "screen",
    "blanket",
    "sculpture",
    "hood",
    "sconce",
    "vase",
    "traffic light",
    "tray",
    "ashcan",
    "fan",
    "pier",
    "crt screen",
    "plate",
    "monitor",
    "bulletin board",
    "shower",
    "radiator",
    "glass",
    "clock",
    "flag",
)
assert len(CLASS_NAMES) == 150

LAYOUT = (
    "  <data_dir>/ADEChallengeData2016/images/{training,validation}/*.jpg\n"
    "  <data_dir>/ADEChallengeData2016/annotations/{training,validation}/*.png"
)

INFO = DatasetInfo(
    name="ade20k",
    num_classes=150,
    class_names=CLASS_NAMES,
    palette=_io.voc_colormap(151)[1:],  # colour of value v+1, so "other" keeps black
    ignore_index=255,
    splits={"train": 20210, "val": 2000},
    layout=LAYOUT,
    homepage="http://sceneparsing.csail.mit.edu/",
    description="ADE20K SceneParsing (MIT): 150 classes, 0 = other is ignored.",
)

RESOURCES = [
    Resource(
        url="http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
        filename="ADEChallengeData2016.zip",
    )
]

_SPLIT_DIRS = {
    "train": "training",
    "training": "training",
    "val": "validation",
    "validation": "validation",
}
_LUT = _io.make_lut({0: 255, **{v: v - 1 for v in range(1, 151)}})


@register_dataset("ade20k", info=INFO, resources=RESOURCES)
def load_ade20k(data_dir, split="train", shuffle_files=False, seed=None):
    """Splits train (training) / val (validation)."""
    _io.check_split("ade20k", split, _SPLIT_DIRS)
    root = _io.require_dir(os.path.join(data_dir, "ADEChallengeData2016"), "ade20k", LAYOUT)
    sub = _SPLIT_DIRS[split]
    image_dir = _io.require_dir(os.path.join(root, "images", sub), "ade20k", LAYOUT)
    label_dir = _io.require_dir(os.path.join(root, "annotations", sub), "ade20k", LAYOUT)
    items = _io.pair_by_stem(
        _io.list_images(image_dir), _io.list_images(label_dir, (".png",)), "ade20k", label_dir
    )
    decode = _io.decode_pair_fn(_LUT, "ADE20K values 0..150")
    return _io.paths_dataset(items, decode, shuffle_files=shuffle_files, seed=seed)
